"""Run a suite: data → teachers → initializers → seed-parallel training → results store.

Work is split into cells: scenario instance × initializer × learning rate × seed chunk.
Each finished cell is committed to the results database before the next starts.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

import initializers
from bench import seeding
from bench.config import RunConfig, scenario_label, validate
from bench.datasets import ScenarioData, load_scenario
from bench.engine import train, tune_allocator
from bench.metrics import (DIAGNOSTIC_BATCH_SIZE, curve_metrics, unit_gradient_status,
                           teacher_preservation)
from bench.models import MLPSpec, Params, select_seeds
from bench.predictions import predict_probabilities, predictions_path, save_predictions
from bench.robustness import final_diagnostics, initial_diagnostics
from bench.store import CellKey, CellResult, RunStore, append_environment, environment_record
from initializers.registry import InitContext
from initializers.standard import torch_default

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedCell:
    """A cell with the data it needs: scenario name, D2 size and seeds."""

    key: CellKey
    scenario: str
    d2_train_size: int
    seeds: tuple[int, ...]


def chunks(num_seeds: int, chunk_size: int) -> list[tuple[int, ...]]:
    """Split seeds 0..num_seeds-1 into consecutive chunks of at most chunk_size."""
    return [tuple(range(start, min(start + chunk_size, num_seeds)))
            for start in range(0, num_seeds, chunk_size)]


def plan(config: RunConfig) -> list[PlannedCell]:
    """Return every cell of the run in execution order."""
    cells = []
    for scenario in config.scenarios:
        for size in config.sizes_for(scenario):
            label = scenario_label(scenario, size)
            for name in config.initializers:
                for lr in config.learning_rates:
                    for index, seeds in enumerate(chunks(config.num_seeds, config.chunk_size)):
                        key = CellKey(label, name, float(lr), index)
                        cells.append(PlannedCell(key, scenario, size, seeds))
    return cells


def check_device(device: str) -> None:
    """Raise a clear error when a CUDA device is requested but not available."""
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"device={device!r} is invalid: use 'cpu', 'cuda' or 'cuda:N'.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} is not available: this PyTorch build "
                         f"({torch.__version__}) sees no CUDA device. Use --device cpu.")


# ---------------------------------------------------------------------------------------
# Teachers
# ---------------------------------------------------------------------------------------


def train_teachers(config: RunConfig, scenario: str, data: ScenarioData,
                   progress: tqdm | None = None) -> tuple[Params, dict[str, list[float]]]:
    """Train one teacher per seed on D1, in chunks; return stacked weights and metrics."""
    spec = MLPSpec(data.spec.teacher_sizes)
    d1 = data.d1.to(config.device)
    parts, metrics = [], {"teacher/test_accuracy": [], "teacher/val_accuracy": [],
                          "teacher/diverged": []}

    for seeds in chunks(config.num_seeds, config.chunk_size):
        # PyTorch's default init, from a generator purpose of its own (not the student's).
        params = _teacher_init(config, scenario, spec, seeds)
        order = seeding.generators(config.suite_seed, scenario, seeds, "teacher-order")
        result = train(spec, params, d1, config.teacher, order, compile_step=config.compile_step,
                       progress=progress.update if progress else None)

        parts.append({k: v.cpu() for k, v in result.params.items()})
        metrics["teacher/test_accuracy"] += result.curves["test/accuracy"][:, -1].tolist()
        metrics["teacher/val_accuracy"] += result.curves["val/accuracy"][:, -1].tolist()
        metrics["teacher/diverged"] += result.diverged.double().tolist()

    stacked = {name: torch.cat([p[name] for p in parts]) for name in parts[0]}
    return stacked, metrics


def _teacher_init(config: RunConfig, scenario: str, spec: MLPSpec, seeds) -> Params:
    gens = seeding.generators(config.suite_seed, scenario, seeds, "teacher-init")
    return {k: v.to(config.device) for k, v in torch_default(spec, gens).items()}


# ---------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------


def _context(config, scenario, data, student, teacher, teacher_params, seeds, d1_train):
    return InitContext(
        student=student, teacher=teacher, teacher_params=teacher_params,
        d1_classes=data.spec.d1_classes, d1_train=d1_train,
        d2_train=data.d2.train.to(config.device), seed_indices=tuple(seeds),
        suite_seed=config.suite_seed, scenario=scenario, device=config.device,
        options=dict(config.init_options),
    )


def run_cell(config: RunConfig, cell: PlannedCell, data: ScenarioData, teachers: Params,
             progress: tqdm | None = None, *, run_dir: Path | None = None,
             init_cache: dict | None = None) -> CellResult:
    """Initialize, diagnose and train one chunk of seeds; return everything to store.

    With `run_dir`, the seeds' test-set probabilities are written under it before returning
    (when `config.robustness.save_predictions` is set), so they exist once the cell commits.
    With `init_cache`, an initializer's result is computed once per scenario instance and
    chunk and reused for every learning rate: no initializer reads the D2 learning rate.
    """
    start = time.perf_counter()
    student, teacher = MLPSpec(data.spec.student_sizes), MLPSpec(data.spec.teacher_sizes)
    teacher_params = {k: v.to(config.device)
                      for k, v in select_seeds(teachers, list(cell.seeds)).items()}
    d1, d2 = data.d1.to(config.device), data.d2.to(config.device)

    # 1. Initialize.
    initializer = initializers.get(cell.key.initializer)
    ctx = _context(config, cell.scenario, data, student, teacher, teacher_params, cell.seeds,
                   d1.train)
    cache_key = (cell.key.scenario, cell.key.initializer, cell.key.chunk)
    if init_cache is not None and cache_key in init_cache:
        init = init_cache[cache_key]
    else:
        init = initializer(ctx)
        if init_cache is not None:
            # Cells come ordered initializer → rate → chunk, so only the current initializer's
            # chunks are ever needed again.
            if any(key[:2] != cache_key[:2] for key in init_cache):
                init_cache.clear()
            init_cache[cache_key] = init
    params = {k: v.to(config.device) for k, v in init.params.items()}

    # 2. Diagnose the initialized student.
    metrics = teacher_preservation(student, params, teacher, teacher_params,
                                   data.spec.d1_classes, d1.test)
    batch = type(d2.train)(d2.train.x[:DIAGNOSTIC_BATCH_SIZE], d2.train.y[:DIAGNOSTIC_BATCH_SIZE])
    metrics.update(unit_gradient_status(student, params, batch))
    generators = functools.partial(seeding.generators, config.suite_seed, cell.scenario,
                                   cell.seeds)
    if config.robustness.enabled:
        metrics["init/live_unit_fraction"] = 1.0 - metrics["init/inactive_unit_fraction"]
        metrics.update(initial_diagnostics(student, params, batch, config.robustness,
                                           generators))

    # 3. Train on D2.
    recipe = dataclasses.replace(config.student, learning_rate=cell.key.learning_rate)
    order = seeding.generators(config.suite_seed, cell.scenario, cell.seeds, "d2-order")
    result = train(student, params, d2, recipe, order, training_loss=init.training_loss,
                   compile_step=config.compile_step,
                   progress=progress.update if progress else None)

    # 4. Summarize.
    metrics.update(curve_metrics(result, recipe.num_steps))
    if config.robustness.enabled:
        metrics.update(final_diagnostics(student, result.params, d2, batch, config.robustness,
                                         generators, result.diverged))
    if config.robustness.save_predictions and run_dir is not None:
        probabilities, labels = predict_probabilities(student, result.params, d2.test.x)
        save_predictions(predictions_path(run_dir, cell.key), list(cell.seeds), probabilities,
                         labels, result.diverged)
    compute = dataclasses.asdict(_with_training_compute(init.compute, init.training_loss,
                                                        recipe.num_steps))
    for name, value in compute.items():
        metrics[f"compute/init_{name}"] = torch.full((len(cell.seeds),), float(value))
    return CellResult(
        key=cell.key, seeds=list(cell.seeds),
        metrics={name: value.double().cpu().tolist() for name, value in metrics.items()},
        eval_steps=result.eval_steps,
        curves={name: value.double().cpu().tolist() for name, value in result.curves.items()},
        compute=compute, info=init.info, seconds=time.perf_counter() - start,
    )


def _with_training_compute(compute, training_loss, num_steps: int):
    """Add a training-time term's extra forward passes (e.g. `ki`'s teacher) to `compute`."""
    if training_loss is None:
        return compute
    extra = training_loss.forward_passes_per_step * training_loss.active_steps(num_steps)
    return dataclasses.replace(compute, forward_passes=compute.forward_passes + extra)


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def run(config: RunConfig, run_dir: Path, *, resume: bool = False, show_progress: bool = True) -> RunStore:
    """Run every cell of `config` not yet finished in `run_dir`; return the store."""
    validate(config, sorted(initializers.available()))
    check_device(config.device)
    tune_allocator()

    store = RunStore(run_dir)
    store.create(config, resume=resume)
    append_environment(run_dir, environment_record(config.device))
    log.info("run directory %s, suite %s, %d seeds, initializers %s", run_dir, config.suite,
             config.num_seeds, ", ".join(config.initializers))

    cells = plan(config)
    finished = store.finished_cells()
    todo = [cell for cell in cells if cell.key not in finished]
    if finished:
        log.info("resuming: %d of %d cells already finished, %d to run", len(cells) - len(todo),
                 len(cells), len(todo))

    for scenario, size_cells in _by_scenario(todo):
        teachers = _teachers(config, store, scenario, show_progress)
        for size, group in size_cells:
            data = load_scenario(scenario, size)
            steps = config.student.num_steps * len(group)
            with tqdm(total=steps, desc=f"train {scenario_label(scenario, size)}", unit="step",
                      disable=not show_progress, leave=True) as bar:
                init_cache: dict = {}
                for cell in group:
                    bar.set_postfix_str(f"{cell.key.initializer} lr={cell.key.learning_rate:g}")
                    result = run_cell(config, cell, data, teachers, bar, run_dir=store.run_dir,
                                      init_cache=init_cache)
                    store.commit_cell(result)
                    log.info("finished cell %s in %.1f s", cell.key, result.seconds)
    return store


def _by_scenario(cells: list[PlannedCell]) -> Iterator[tuple[str, list]]:
    """Group cells by scenario, then by D2 size, keeping their order."""
    grouped: dict[str, dict[int, list[PlannedCell]]] = {}
    for cell in cells:
        grouped.setdefault(cell.scenario, {}).setdefault(cell.d2_train_size, []).append(cell)
    for scenario, sizes in grouped.items():
        yield scenario, list(sizes.items())


def _teachers(config: RunConfig, store: RunStore, scenario: str, show_progress: bool) -> Params:
    """Load the scenario's teachers from the run directory, or train and store them."""
    stored = store.load_teachers(scenario)
    if stored is not None:
        log.info("loaded %s teachers from %s", scenario, store.teacher_path(scenario))
        return stored

    data = load_scenario(scenario)
    total = config.teacher.num_steps * len(chunks(config.num_seeds, config.chunk_size))
    with tqdm(total=total, desc=f"teachers {scenario}", unit="step",
              disable=not show_progress) as bar:
        params, metrics = train_teachers(config, scenario, data, bar)
    store.save_teachers(scenario, params, metrics)
    accuracy = torch.tensor(metrics["teacher/test_accuracy"])
    log.info("trained %d %s teachers: D1 test accuracy %.3f ± %.3f", len(accuracy), scenario,
             accuracy.mean(), accuracy.std() if len(accuracy) > 1 else 0.0)
    return params
