"""`bench analyze`: statistics and report for a tidy CSV written by hand or by a run."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main

# Hollander & Wolfe depression data, as in R's wilcox.test help page: x = first visit,
# y = second visit. R: wilcox.test(x, y, paired = TRUE) gives V = 40, p-value = 0.03906.
X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def _write_csv(path, rows):
    lines = ["scenario,initializer,seed,metric,value"]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_analyze_hand_written_csv(tmp_path):
    """Check that a hand-written CSV gives R's Wilcoxon p-value in stats.json and a report."""
    rows = [("toy", "new", i, "test/loss", x) for i, x in enumerate(X)]
    rows += [("toy", "baseline", i, "test/loss", y) for i, y in enumerate(Y)]
    _write_csv(tmp_path / "results.csv", rows)

    assert main(["analyze", str(tmp_path / "results.csv"), "--reference", "baseline",
                 "--paired", "--out", str(tmp_path / "out")]) == 0

    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    comparison = next(c for c in stats["comparisons"] if c["initializer"] == "new")
    wilcoxon = next(t for t in comparison["tests"] if t["test"].lower().startswith("wilcoxon"))
    assert wilcoxon["statistic"] == pytest.approx(40)
    assert wilcoxon["p_value"] == pytest.approx(0.03906, abs=5e-5)
    html = (tmp_path / "out" / "index.html").read_text()
    assert "Headline results" in html
    assert "<svg" in html
    assert "NaN" not in (tmp_path / "out" / "summary.md").read_text()


def test_analyze_missing_column(tmp_path, capsys):
    """Check that a CSV without a required column names it."""
    (tmp_path / "bad.csv").write_text("scenario,initializer,metric,value\ntoy,a,m,1\n")
    assert main(["analyze", str(tmp_path / "bad.csv")]) == 2
    assert "seed" in capsys.readouterr().err


def test_analyze_missing_file(tmp_path, capsys):
    """Check that a missing file is reported with its path."""
    assert main(["analyze", str(tmp_path / "nothing.csv")]) == 2
    assert "nothing.csv" in capsys.readouterr().err


def test_analyze_unknown_reference(tmp_path, capsys):
    """Check that a reference absent from the CSV lists the initializers present."""
    rows = [("toy", name, i, "test/loss", float(i)) for name in ("a", "b") for i in range(5)]
    _write_csv(tmp_path / "results.csv", rows)
    assert main(["analyze", str(tmp_path / "results.csv"), "--reference", "uniform"]) == 2
    err = capsys.readouterr().err
    assert "'uniform'" in err
    assert "a, b" in err


@pytest.mark.parametrize("content", ["", "scenario,initializer,seed,metric,value\n\"open",
                                     "scenario,initializer,seed,metric,value\ns,a,1,m,1,2,3\n"])
def test_analyze_malformed_csv(tmp_path, capsys, content):
    """Check that an empty, badly quoted or ragged CSV is named with the expected layout."""
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err
    assert "scenario,initializer,seed,metric,value" in err


def test_analyze_huge_values_keep_statistics(tmp_path):
    """Check that values too large to draw still give stats.json and a report."""
    rows = [("toy", name, i, "test/loss", 1e308 * (1 if i % 2 else -1))
            for name in ("uniform", "b") for i in range(6)]
    _write_csv(tmp_path / "results.csv", rows)
    main(["analyze", str(tmp_path / "results.csv"), "--out", str(tmp_path / "out")])
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["comparisons"]
