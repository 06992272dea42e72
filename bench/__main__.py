"""Command line: `python -m bench run|report|list|perf|analyze`.

This module only parses arguments, configures logging and calls the library; every check
of a name or number happens before any training starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sqlite3
import sys
import time
from pathlib import Path

log = logging.getLogger("bench")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}: give a whole number, e.g. 16")
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value}: it must be at least 1")
    return value


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: give comma-separated numbers, e.g. 3e-4,1e-3")
    if not values or any(not (0 < v < math.inf) for v in values):
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: every value must be a positive finite number")
    return values


def _key_value(text: str) -> tuple[str, object]:
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"invalid option {text!r}: write KEY=VALUE, e.g. "
                                         f"phi_steps=400")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # A bare word such as `default` is a string.
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return key.strip(), parsed


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"invalid list {text!r}: give one or more names, "
                                         f"e.g. uniform,xavier (python -m bench list shows them)")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark of student initializers that transfer a small teacher's weights.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="train a suite and write its report")
    run.add_argument("--suite",
                     help="preset: smoke, quick, full or ablation (default: quick, or the "
                     "stored run's suite with --resume)")
    run.add_argument("--scenario", type=_names, help="comma-separated scenario names")
    run.add_argument("--init", type=_names, help="comma-separated initializer names")
    run.add_argument("--seeds", type=_positive_int, help="number of seeds (paired)")
    run.add_argument("--chunk-size", type=_positive_int, help="seeds trained together per cell")
    run.add_argument("--steps", type=_positive_int, help="D2 training steps per seed")
    run.add_argument("--teacher-steps", type=_positive_int, help="D1 training steps per teacher")
    run.add_argument("--learning-rates", type=_float_list,
                     help="comma-separated D2 learning-rate grid, e.g. 3e-4,1e-3")
    run.add_argument("--d2-train-size", type=_positive_int,
                     help="D2 training samples (before the 20%% validation hold-out)")
    run.add_argument("--reference", help="initializer the statistics compare against")
    run.add_argument("--init-option", action="append", type=_key_value, default=[],
                     metavar="KEY=VALUE",
                     help="initializer option, repeatable, e.g. phi_steps=400 or "
                     "unseen_classes=default (docs/initializers.md lists them)")
    run.add_argument("--device", help="cpu or cuda (default: cpu)")
    run.add_argument("--compile", dest="compile_step", action=argparse.BooleanOptionalAction,
                     help="run the training step under torch.compile (default: on for quick "
                     "and full; costs 15-30 s per distinct seed-chunk shape)")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<suite>-<time>)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out, skipping finished cells")
    run.add_argument("--dry-run", action="store_true", help="print the planned cells and exit")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    report = commands.add_parser("report", help="rebuild the report of a run directory")
    report.add_argument("run_dir", type=Path)
    report.add_argument("--reference", help="initializer to compare against")

    analyze = commands.add_parser(
        "analyze", help="statistics and report for any tidy results CSV",
        description="Columns: scenario, initializer, seed, metric, value (one row per "
        "scenario x initializer x seed x metric); other columns are ignored.")
    analyze.add_argument("results_csv", type=Path, metavar="RESULTS.csv")
    analyze.add_argument("--reference", default="uniform",
                         help="initializer every other one is compared with (default: uniform)")
    design = analyze.add_mutually_exclusive_group()
    design.add_argument("--paired", dest="paired", action="store_const", const=True,
                        help="seed i of every initializer is paired with seed i of the reference")
    design.add_argument("--unpaired", dest="paired", action="store_const", const=False,
                        help="treat the initializers' seeds as independent samples")
    analyze.add_argument("--out", type=Path,
                         help="output directory (default: <RESULTS.csv folder>/analysis)")

    commands.add_parser("list", help="list initializers, scenarios and suites")

    perf = commands.add_parser("perf", help="measure training-engine throughput")
    perf.add_argument("--seeds", type=_names, default=("8", "32", "128"),
                      help="comma-separated seed counts (default: 8,32,128)")
    perf.add_argument("--steps", type=_positive_int, default=30,
                      help="timed steps per measurement (default: 30)")
    perf.add_argument("--repeats", type=_positive_int, default=3,
                      help="alternating rounds over the engines (default: 3)")
    perf.add_argument("--no-processes", action="store_true",
                      help="skip the one-process-per-core baseline")
    perf.add_argument("--no-compile", action="store_true",
                      help="skip the torch.compile engine (saves 15-30 s of compilation per "
                           "seed count)")
    return parser


OPTION_SETTINGS = {"scenario": "scenarios", "init": "initializers", "seeds": "num_seeds",
                   "chunk_size": "chunk_size", "learning_rates": "learning_rates",
                   "reference": "reference", "compile_step": "compile_step"}
"""`bench run` options that replace one RunConfig setting as given (attribute → field)."""


def resolve_config(args):
    """Turn `bench run` arguments into a validated RunConfig."""
    import initializers
    from bench.config import suite_config, validate

    names = sorted(initializers.available())
    stored = _stored_config(args)
    if stored is not None and args.suite in (None, stored.suite):
        # --resume continues the stored run: options not given keep their stored values.
        config = stored
        changes = {} if args.device is None else {"device": args.device}
    else:
        config = suite_config(args.suite or "quick", names)
        changes = {"device": args.device or "cpu"}
    for option, setting in OPTION_SETTINGS.items():
        value = getattr(args, option)
        if value is not None:
            changes[setting] = value
    if args.init_option:
        changes["init_options"] = {**config.init_options, **dict(args.init_option)}
    if args.steps:
        eval_every = min(config.student.eval_every, args.steps)
        changes["student"] = dataclasses.replace(config.student, num_steps=args.steps,
                                                 eval_every=eval_every)
    if args.teacher_steps:
        eval_every = min(config.teacher.eval_every, args.teacher_steps)
        changes["teacher"] = dataclasses.replace(config.teacher, num_steps=args.teacher_steps,
                                                 eval_every=eval_every)
    config = dataclasses.replace(config, **changes)
    if args.d2_train_size:
        config = dataclasses.replace(
            config, d2_train_sizes={s: (args.d2_train_size,) for s in config.scenarios})
    if config.reference not in names:
        from bench.errors import unknown_name_error

        raise unknown_name_error("reference initializer", config.reference, names)
    if config.reference not in config.initializers:
        # The reference arm must be trained for the paired comparisons.
        config = dataclasses.replace(config, initializers=(config.reference, *config.initializers))
    validate(config, names)
    from bench.runner import check_device

    check_device(config.device)
    return config


def _stored_config(args):
    """Return the configuration stored in --out when resuming, else None."""
    if not getattr(args, "resume", False) or args.out is None:
        return None
    if not (args.out / "config.json").exists():
        return None
    from bench.store import RunStore

    return RunStore(args.out).load_config()


def command_run(args) -> int:
    from bench import runner
    from reports.build import build_report

    config = resolve_config(args)
    cells = runner.plan(config)
    if args.dry_run:
        print(f"suite {config.suite}: {len(cells)} cells, {config.num_seeds} seeds, "
              f"{config.student.num_steps} D2 steps each, device {config.device}")
        for cell in cells:
            print(f"  {cell.key}  seeds {cell.seeds[0]}-{cell.seeds[-1]}")
        return 0

    run_dir = args.out or Path("runs") / f"{config.suite}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out RUN_DIR: the run directory to continue.")
    _log_to_file(run_dir)
    runner.run(config, run_dir, resume=args.resume, show_progress=not args.no_progress)
    report_dir = build_report(run_dir)
    print(f"report: {report_dir / 'index.html'}")
    return 0


def command_report(args) -> int:
    from reports.build import build_report

    report_dir = build_report(args.run_dir, reference=args.reference)
    print(f"report: {report_dir / 'index.html'}")
    return 0


def command_analyze(args) -> int:
    from reports.analysis import load_results_csv
    from reports.build import build_report_from_csv

    tidy = load_results_csv(args.results_csv)
    out = args.out or args.results_csv.parent / "analysis"
    report_dir = build_report_from_csv(tidy, out, reference=args.reference, paired=args.paired)
    print(f"report: {report_dir / 'index.html'}\nstatistics: {report_dir / 'stats.json'}")
    return 0


def command_list(args) -> int:
    from tabulate import tabulate

    import initializers
    from bench.config import SUITES
    from bench.datasets import SCENARIOS

    rows = [(i.name, "yes" if i.needs_teacher else "no", i.compute, i.description)
            for i in initializers.available().values()]
    print("Initializers\n" + tabulate(rows, headers=["name", "teacher", "extra compute",
                                                     "description"]))
    rows = [(s.name, "-".join(map(str, s.teacher_sizes)), "-".join(map(str, s.student_sizes)),
             s.default_d2_train_size, s.description) for s in SCENARIOS.values()]
    print("\nScenarios\n" + tabulate(rows, headers=["name", "teacher", "student",
                                                  "D2 train size", "description"]))
    print("\nSuites: " + ", ".join(SUITES))
    return 0


def command_perf(args) -> int:
    from bench.perf import run_perf

    try:
        counts = [int(text) for text in args.seeds]
    except ValueError:
        raise ValueError(f"--seeds {','.join(args.seeds)} is invalid: give seed counts such as "
                         f"8,32,128.")
    if any(count < 1 for count in counts):
        raise ValueError(f"--seeds {','.join(args.seeds)} is invalid: every count must be >= 1.")
    print(run_perf(counts, num_steps=args.steps, repeats=args.repeats,
                   processes=not args.no_processes, compile_step=not args.no_compile))
    return 0


def _log_to_file(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


COMMANDS = {"run": command_run, "report": command_report, "analyze": command_analyze,
            "list": command_list, "perf": command_perf}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # Unwritable --out, a file where a directory should be, ...
        print(f"error: cannot use {error.filename or 'a path'}: {error.strerror or error}. "
              f"Choose a writable directory, e.g. --out runs/mine.", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as error:
        print(f"error: the results database is damaged ({error}). Start a new run with "
              f"another --out directory.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
