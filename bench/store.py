"""The run directory: configuration, environment record, SQLite results and teachers.

Layout of RUN_DIR:

    config.json        the resolved RunConfig
    environment.json   versions, device, command line, git commit, start time
    results.sqlite     one committed transaction per finished cell
    teachers/          trained teacher weights per scenario (torch.save)
    predictions/       test-set class probabilities per cell (.npz, see bench.predictions)
    run.log            the log of every invocation
    report/            written by `bench report`

Each finished cell is written in one transaction, so an interrupted run loses only the
cells in flight and `--resume` redoes nothing that finished.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.config import RunConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    scenario TEXT, initializer TEXT, learning_rate REAL, chunk INTEGER,
    seeds TEXT, seconds REAL, finished_at REAL, compute TEXT, info TEXT,
    PRIMARY KEY (scenario, initializer, learning_rate, chunk));
CREATE TABLE IF NOT EXISTS metrics (
    scenario TEXT, initializer TEXT, learning_rate REAL, seed INTEGER, metric TEXT, value REAL,
    PRIMARY KEY (scenario, initializer, learning_rate, seed, metric));
CREATE TABLE IF NOT EXISTS curves (
    scenario TEXT, initializer TEXT, learning_rate REAL, seed INTEGER, step INTEGER,
    metric TEXT, value REAL);
CREATE TABLE IF NOT EXISTS teachers (
    scenario TEXT, seed INTEGER, metric TEXT, value REAL,
    PRIMARY KEY (scenario, seed, metric));
"""


@dataclass(frozen=True)
class CellKey:
    """A unit of work: one scenario instance × initializer × learning rate × seed chunk."""

    scenario: str
    initializer: str
    learning_rate: float
    chunk: int

    def __str__(self) -> str:
        return f"{self.scenario} / {self.initializer} / lr={self.learning_rate:g} / chunk {self.chunk}"


@dataclass
class CellResult:
    """The stored record of a finished cell: per-seed metrics, curves, compute and choices."""

    key: CellKey
    seeds: list[int]
    metrics: dict[str, list[float]]
    """Metric name → one value per seed, in `seeds` order."""
    eval_steps: list[int]
    curves: dict[str, list[list[float]]]
    """Metric name → per seed, one value per evaluation step."""
    compute: dict
    info: dict
    seconds: float


class ConfigMismatchError(ValueError):
    """Resuming a run directory with a configuration that differs from the stored one."""


def _float_or_none(value: float) -> float | None:
    # SQLite stores NaN as NULL; keep that explicit so reading back gives NaN again.
    return None if value != value else float(value)


class RunStore:
    """Read and write one run directory."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.db_path = self.run_dir / "results.sqlite"

    # -- creation and resumption -------------------------------------------------------

    def create(self, config: RunConfig, resume: bool) -> None:
        """Prepare the directory: a new run, or a resumed one whose configuration matches."""
        config_path = self.run_dir / "config.json"
        if config_path.exists():
            if not resume:
                raise FileExistsError(
                    f"{self.run_dir} already contains a run. Pass --resume to continue it, or "
                    f"choose another --out directory."
                )
            stored = self.load_config()
            differences = config_differences(stored, config)
            if differences:
                raise ConfigMismatchError(
                    f"cannot resume {self.run_dir}: the configuration differs in "
                    f"{'; '.join(differences)}. Resume with the original settings, or start a "
                    f"new run with another --out directory."
                )
        elif resume:
            raise FileNotFoundError(
                f"cannot resume {self.run_dir}: it contains no run (config.json is missing). "
                f"Drop --resume to start a new run there."
            )

        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "teachers").mkdir(exist_ok=True)
        _write_atomic(config_path, json.dumps(config.to_dict(), indent=2))
        with self.connect() as db:
            db.executescript(SCHEMA)

    def load_config(self) -> RunConfig:
        path = self.run_dir / "config.json"
        if not path.exists():
            raise FileNotFoundError(
                f"{self.run_dir} is not a run directory: config.json is missing. Pass the "
                f"directory that `bench run --out` wrote."
            )
        try:
            return RunConfig.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise ValueError(f"{path} is damaged or from another version ({error}). Restore it, "
                             f"or start a new run in another --out directory.") from error

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=60)

    # -- cells -------------------------------------------------------------------------

    def finished_cells(self) -> set[CellKey]:
        with self.connect() as db:
            rows = db.execute("SELECT scenario, initializer, learning_rate, chunk FROM cells")
            return {CellKey(*row) for row in rows}

    def commit_cell(self, cell: CellResult) -> None:
        """Write every number of one finished cell in a single transaction."""
        key = cell.key
        prefix = (key.scenario, key.initializer, key.learning_rate)
        metric_rows = [
            (*prefix, seed, name, _float_or_none(values[i]))
            for name, values in cell.metrics.items() for i, seed in enumerate(cell.seeds)
        ]
        curve_rows = [
            (*prefix, seed, step, name, _float_or_none(per_seed[i][j]))
            for name, per_seed in cell.curves.items() for i, seed in enumerate(cell.seeds)
            for j, step in enumerate(cell.eval_steps)
        ]
        with self.connect() as db:  # The context manager commits once, or rolls back.
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?)", metric_rows)
            db.executemany("INSERT INTO curves VALUES (?,?,?,?,?,?,?)", curve_rows)
            db.execute(
                "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?)",
                (*prefix, key.chunk, json.dumps(cell.seeds), cell.seconds, time.time(),
                 json.dumps(cell.compute), json.dumps(cell.info, default=str)),
            )

    # -- teachers ----------------------------------------------------------------------

    def teacher_path(self, scenario: str) -> Path:
        return self.run_dir / "teachers" / f"{scenario}.pt"

    def save_teachers(self, scenario: str, params: dict, metrics: dict[str, list[float]]) -> None:
        """Store the teachers of every seed and their per-seed metrics."""
        rows = [(scenario, seed, name, _float_or_none(value))
                for name, values in metrics.items() for seed, value in enumerate(values)]
        with self.connect() as db:
            db.executemany("INSERT OR REPLACE INTO teachers VALUES (?,?,?,?)", rows)
        tmp = self.teacher_path(scenario).with_suffix(".tmp")
        torch.save(params, tmp)
        os.replace(tmp, self.teacher_path(scenario))

    def load_teachers(self, scenario: str) -> dict | None:
        path = self.teacher_path(scenario)
        if not path.exists():
            return None
        try:
            return torch.load(path, weights_only=True)
        except (RuntimeError, EOFError, OSError) as error:
            raise ValueError(f"{path} is damaged ({error}). Delete it to train the teachers "
                             f"again (the finished cells stay valid only with the same teachers, "
                             f"so a new run directory is safer).") from error


def config_differences(stored: RunConfig, requested: RunConfig) -> list[str]:
    """Return 'setting: stored → requested' for every setting that differs."""
    old, new = _flatten(stored.to_dict()), _flatten(requested.to_dict())
    return [f"{key}: {old.get(key)!r} in the stored run, {new.get(key)!r} now"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def environment_record(device: str) -> dict:
    """Return versions, device, command line and git commit of this invocation."""
    import numpy
    import scipy

    return {
        "command_line": sys.argv,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "device": device,
        "cuda_device": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "git_commit": _git_commit(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def append_environment(run_dir: Path, record: dict) -> None:
    """Append this invocation's record to environment.json (a list, one entry per start)."""
    path = Path(run_dir) / "environment.json"
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    _write_atomic(path, json.dumps(records, indent=2))
