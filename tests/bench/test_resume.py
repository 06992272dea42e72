"""Results store: a killed run resumes to the same numbers without redoing finished cells."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import runner
from bench.__main__ import build_parser, resolve_config
from bench.store import ConfigMismatchError, RunStore

ARGS = ["--suite", "smoke", "--scenario", "digits-subset", "--seeds", "4", "--chunk-size", "2",
        "--steps", "300", "--teacher-steps", "50", "--no-progress"]
ROOT = Path(__file__).resolve().parents[2]


def _config(extra=()):
    return resolve_config(build_parser().parse_args(["run", *ARGS, *extra]))


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            return connection.execute("SELECT count(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:  # The table does not exist yet.
        return 0


def _metrics(run_dir: Path) -> pd.DataFrame:
    with sqlite3.connect(run_dir / "results.sqlite") as connection:
        table = pd.read_sql_query("SELECT * FROM metrics", connection)
    table = table[~table.metric.str.startswith("compute/init_seconds")]
    return table.sort_values(["scenario", "initializer", "learning_rate", "seed", "metric"]) \
        .reset_index(drop=True)


def _cells(run_dir: Path) -> pd.DataFrame:
    with sqlite3.connect(run_dir / "results.sqlite") as connection:
        return pd.read_sql_query("SELECT * FROM cells", connection)


@pytest.mark.slow
def test_killed_run_resumes_to_same_numbers(tmp_path):
    """Check that kill -9 after the first cell, then --resume, equals an uninterrupted run."""
    reference_dir = tmp_path / "uninterrupted"
    runner.run(_config(), reference_dir, show_progress=False)
    total = len(_cells(reference_dir))

    killed_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "bench", "run", *ARGS, "--out", str(killed_dir)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _finished(killed_dir / "results.sqlite") < 1 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    before = _cells(killed_dir)
    assert 1 <= len(before) < total, f"killed after {len(before)} of {total} cells"

    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    after = _cells(killed_dir)
    assert len(after) == total
    earlier = after.merge(before, on=["scenario", "initializer", "learning_rate", "chunk"])
    assert (earlier.finished_at_x == earlier.finished_at_y).all(), "a finished cell was redone"

    pd.testing.assert_frame_equal(_metrics(killed_dir), _metrics(reference_dir))
    assert (killed_dir / "report" / "index.html").exists()


def test_resume_with_other_config_is_rejected(tmp_path):
    """Check that resuming with a different setting names that setting."""
    config = dataclasses.replace(_config(), initializers=("uniform",))
    RunStore(tmp_path).create(config, resume=False)
    changed = dataclasses.replace(config, num_seeds=8)
    with pytest.raises(ConfigMismatchError, match="num_seeds: 4 in the stored run, 8 now"):
        RunStore(tmp_path).create(changed, resume=True)


def test_new_run_in_existing_directory_is_rejected(tmp_path):
    """Check that starting over an existing run without --resume is refused."""
    config = _config()
    RunStore(tmp_path).create(config, resume=False)
    with pytest.raises(FileExistsError, match="Pass --resume"):
        RunStore(tmp_path).create(config, resume=False)


def test_resume_of_missing_run_is_rejected(tmp_path):
    """Check that --resume on an empty directory explains what is missing."""
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        RunStore(tmp_path / "nothing").create(_config(), resume=True)


def test_resume_takes_stored_settings(tmp_path):
    """Check that --resume --out DIR alone continues with the stored configuration."""
    config = _config()
    RunStore(tmp_path).create(config, resume=False)
    args = build_parser().parse_args(["run", "--out", str(tmp_path), "--resume"])
    assert resolve_config(args) == config
