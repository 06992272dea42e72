"""End to end through the CLI: a tiny run writes a complete, self-contained report."""

from __future__ import annotations

import re

import pandas as pd

from bench.__main__ import main

ARGS = ["run", "--suite", "smoke", "--scenario", "digits-subset", "--steps", "60",
        "--teacher-steps", "60", "--no-progress"]


def test_run_writes_report_and_analyze_reads_it(tmp_path, capsys):
    """Check the report files, their content and that `analyze` accepts the run's CSV."""
    run_dir = tmp_path / "run"
    assert main([*ARGS, "--out", str(run_dir)]) == 0
    report = run_dir / "report"
    for name in ("index.html", "summary.md", "tables.tex", "results.csv", "stats.json",
                 "README.md", "results_all_learning_rates.csv"):
        assert (report / name).exists(), name
    for name in ("config.json", "environment.json", "results.sqlite", "run.log"):
        assert (run_dir / name).exists(), name

    html = (report / "index.html").read_text()
    assert "Methods" in html
    assert "Headline results" in html
    assert "<svg" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "external request in report"
    assert "NaN" not in (report / "summary.md").read_text()

    tidy = pd.read_csv(report / "results.csv")
    assert list(tidy.columns) == ["scenario", "initializer", "learning_rate", "seed", "metric",
                                  "value"]
    assert set(tidy.initializer) == {"uniform", "xavier", "copy-exact"}
    assert not tidy.duplicated(["scenario", "initializer", "seed", "metric"]).any()
    assert {"test/accuracy", "convergence/steps_to_threshold",
            "init/dead_unit_fraction"} <= set(tidy.metric)

    assert main(["analyze", str(report / "results.csv"), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "stats.json").exists()
    assert main(["report", str(run_dir)]) == 0
    capsys.readouterr()
