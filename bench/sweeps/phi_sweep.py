"""Sweep φ's options on the validation splits of mnist1d-subset (never the test split).

    python -m bench.sweeps.phi_sweep --seeds 4 --out docs/phi-sweep.json [--stage 1|2|all]

Each configuration is φ with `PHI_DEFAULTS` changed in one or a few options. Per seed it
records, all on validation data:

- D1 val accuracy of the φ-initialized student (argmax over D1's classes): how much of the
  teacher's function φ keeps;
- D2 val accuracy after `--d2-steps` Adam steps on D2 (lr `--d2-lr`), and the mean D2 val
  accuracy over the evaluation points (a convergence measure, like the area under the curve);
- φ's wall-clock seconds for all seeds.

`copy-exact` (φ's start) and `pretrain` are measured alongside as references. Teachers are
trained exactly as `bench run` trains them (same generators, seeds 0..S-1) and cached in
`--teacher-cache`. The markdown table printed at the end is what docs/phi-defaults.md shows.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

import initializers
from bench import seeding
from bench.datasets import load_scenario
from bench.engine import Recipe, train
from bench.models import MLPSpec, apply_seeds
from bench.runner import train_teachers
from initializers.phi import PHI_DEFAULTS
from initializers.registry import InitContext

SCENARIO = "mnist1d-subset"

STAGES: dict[str, list[tuple[str, str, dict]]] = {
    # (label, initializer, options on top of the base options)
    "1": [
        ("copy-exact", "copy-exact", {}),
        ("pretrain", "pretrain", {}),
        ("base", "phi", {}),
        ("lr=1e-3", "phi", {"phi_lr": 1e-3}),
        ("lr=3e-5", "phi", {"phi_lr": 3e-5}),
        ("λ4=0", "phi", {"phi_lambdas": {"hessian": 0.0}}),
        ("λ4=1e-4", "phi", {"phi_lambdas": {"hessian": 1e-4}}),
        ("λ4=1e-2", "phi", {"phi_lambdas": {"hessian": 1e-2}}),
        ("λ2=0.1", "phi", {"phi_lambdas": {"l2": 0.1}}),
        ("λ2=10", "phi", {"phi_lambdas": {"l2": 10.0}}),
    ],
    "2": [
        ("λ3=0", "phi", {"phi_lambdas": {"robust": 0.0}}),
        ("δ=0.3", "phi", {"phi_delta": 0.3}),
        ("δ=0.03", "phi", {"phi_delta": 0.03}),
        ("m=1", "phi", {"phi_draws": 1}),
        ("m=4", "phi", {"phi_draws": 4}),
        ("p=2", "phi", {"phi_probes": 2}),
        ("h=128", "phi", {"phi_hessian_batch": 128}),
        ("K=100", "phi", {"phi_steps": 100}),
        ("K=400", "phi", {"phi_steps": 400}),
    ],
    # Stage 3: does a larger step size help once λ4 no longer dominates the objective?
    "3": [
        ("lr=3e-4", "phi", {"phi_lr": 3e-4}),
        ("lr=3e-4, λ4=1e-5", "phi", {"phi_lr": 3e-4, "phi_lambdas": {"hessian": 1e-5}}),
        ("lr=1e-3, λ4=1e-5", "phi", {"phi_lr": 1e-3, "phi_lambdas": {"hessian": 1e-5}}),
        ("lr=1e-3, λ4=0", "phi", {"phi_lr": 1e-3, "phi_lambdas": {"hessian": 0.0}}),
    ],
}


def merge_options(base: dict, change: dict) -> dict:
    """Return base options with `change` applied; a λ dict updates the base λs by name."""
    merged = dict(base)
    for key, value in change.items():
        if key == "phi_lambdas" and isinstance(value, dict):
            lambdas = merged.get("phi_lambdas", PHI_DEFAULTS["phi_lambdas"])
            names = ("ce", "l2", "robust", "hessian")
            current = dict(zip(names, lambdas)) if not isinstance(lambdas, dict) else dict(lambdas)
            current.update(value)
            merged[key] = tuple(current[name] for name in names)
        else:
            merged[key] = value
    return merged


def teachers(args, data) -> torch.Tensor:
    """Train (or load) the teachers exactly as `bench run` does, for seeds 0..S-1."""
    from bench.config import suite_config

    config = suite_config("quick", sorted(initializers.available()))
    teacher = Recipe("adam", config.teacher.learning_rate, num_steps=args.teacher_steps,
                     eval_every=args.teacher_steps)
    import dataclasses
    config = dataclasses.replace(config, num_seeds=args.seeds, teacher=teacher,
                                 chunk_size=args.seeds)
    cache = Path(args.teacher_cache) if args.teacher_cache else None
    key = f"{SCENARIO}-s{args.seeds}-t{args.teacher_steps}"
    if cache and cache.exists():
        stored = torch.load(cache)
        if stored.get("key") == key:
            return stored["params"]
    params, metrics = train_teachers(config, SCENARIO, data)
    logging.info("teachers: D1 val accuracy %s", metrics["teacher/val_accuracy"])
    if cache:
        torch.save({"key": key, "params": params}, cache)
    return params


@torch.no_grad()
def d1_val_accuracy(student: MLPSpec, params, data) -> torch.Tensor:
    classes = torch.tensor(data.spec.d1_classes)
    logits = apply_seeds(student, params, data.d1.val.x)[:, :, classes]
    return (logits.argmax(-1) == data.d1.val.y).double().mean(1)


def run(args) -> list[dict]:
    torch.set_num_threads(args.threads)
    data = load_scenario(SCENARIO)
    teacher_params = teachers(args, data)
    student, teacher = MLPSpec(data.spec.student_sizes), MLPSpec(data.spec.teacher_sizes)
    seeds = tuple(range(args.seeds))
    base = json.loads(args.base) if args.base else {}
    stages = list(STAGES) if args.stage == "all" else [args.stage]

    rows = []
    for stage in stages:
        for label, name, change in STAGES[stage]:
            options = merge_options(base, change)
            ctx = InitContext(student=student, teacher=teacher, teacher_params=teacher_params,
                              d1_classes=data.spec.d1_classes, d1_train=data.d1.train,
                              d2_train=data.d2.train, seed_indices=seeds, suite_seed=0,
                              scenario=SCENARIO, options=options)
            init = initializers.get(name)(ctx)
            recipe = Recipe("adam", args.d2_lr, num_steps=args.d2_steps,
                            eval_every=max(1, args.d2_steps // 5))
            order = seeding.generators(0, SCENARIO, seeds, "d2-order")
            result = train(student, init.params, data.d2, recipe, order)
            val = result.curves["val/accuracy"].double()
            row = {
                "stage": stage, "label": label, "initializer": name, "options": options,
                "d1_val_accuracy": d1_val_accuracy(student, init.params, data).tolist(),
                "d2_val_accuracy": val[:, -1].tolist(),
                "d2_val_accuracy_mean_curve": val[:, 1:].mean(1).tolist(),
                "init_seconds": init.compute.seconds,
                "trace": init.info.get("phi_trace"),
            }
            rows.append(row)
            logging.info("%-12s D1 val %.3f  D2 val %.3f ± %.3f  curve %.3f  (%.0f s)", label,
                         _mean(row["d1_val_accuracy"]), _mean(row["d2_val_accuracy"]),
                         _sd(row["d2_val_accuracy"]), _mean(row["d2_val_accuracy_mean_curve"]),
                         init.compute.seconds)
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
    return rows


def _mean(values) -> float:
    return float(torch.tensor(values).mean())


def _sd(values) -> float:
    return float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else 0.0


def table(rows: list[dict]) -> str:
    """Return the sweep as a markdown table: means ± SD over seeds, and the paired
    difference to `copy-exact` (mean ± standard error over seeds) when it was measured."""
    reference = next((r for r in rows if r["initializer"] == "copy-exact"), None)

    def paired(row, key) -> str:
        if reference is None or row is reference:
            return "–"
        d = torch.tensor(row[key], dtype=torch.float64) - torch.tensor(reference[key],
                                                                       dtype=torch.float64)
        se = float(d.std()) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        return f"{float(d.mean()):+.4f} ± {se:.4f}"

    lines = ["| stage | configuration | D1 val acc (init) | D2 val acc (final) | "
             "Δ final vs copy-exact | D2 val acc (curve mean) | Δ curve vs copy-exact |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(
            f"| {row['stage']} | {row['label']} | {_mean(row['d1_val_accuracy']):.3f} | "
            f"{_mean(row['d2_val_accuracy']):.3f} ± {_sd(row['d2_val_accuracy']):.3f} | "
            f"{paired(row, 'd2_val_accuracy')} | "
            f"{_mean(row['d2_val_accuracy_mean_curve']):.3f} ± "
            f"{_sd(row['d2_val_accuracy_mean_curve']):.3f} | "
            f"{paired(row, 'd2_val_accuracy_mean_curve')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--teacher-steps", type=int, default=1000)
    parser.add_argument("--d2-steps", type=int, default=500)
    parser.add_argument("--d2-lr", type=float, default=1e-3)
    parser.add_argument("--stage", default="all", choices=[*STAGES, "all"])
    parser.add_argument("--base", help="JSON dict of φ options every configuration starts from")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--teacher-cache", default="/tmp/phi-sweep-teachers.pt")
    parser.add_argument("--out", help="JSON file of every row (rewritten after each one)")
    parser.add_argument("--table", nargs="+",
                        help="print the table of existing --out JSON files and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.table:
        print(table([row for path in args.table for row in json.loads(Path(path).read_text())]))
        return
    start = time.perf_counter()
    rows = run(args)
    print(table(rows))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
