"""Tests of reports.analysis: input validation, families, degenerate input and stats.json."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from reports.analysis import AnalysisWarning, analyze, is_higher_better, load_results_csv

FAST = {"n_resamples": 199, "n_aa_splits": 20}


def _table(num_seeds=8, scenarios=("s1",), initializers=("uniform", "xavier", "phi"), seed=0):
    """Tidy results with accuracy, loss, convergence and divergence metrics."""
    rng = np.random.default_rng(seed)
    rows = []
    for scenario in scenarios:
        for shift, initializer in enumerate(initializers):
            for s in range(num_seeds):
                reached = float(rng.random() < 0.75)
                rows += [
                    (
                        scenario,
                        initializer,
                        s,
                        "test/accuracy",
                        0.8 + 0.02 * shift + rng.normal(0, 0.01),
                    ),
                    (
                        scenario,
                        initializer,
                        s,
                        "test/loss",
                        0.5 - 0.05 * shift + rng.normal(0, 0.02),
                    ),
                    (
                        scenario,
                        initializer,
                        s,
                        "convergence/steps_to_threshold",
                        float(rng.integers(100, 900)) if reached else 1000.0,
                    ),
                    (scenario, initializer, s, "convergence/reached_threshold", reached),
                    (scenario, initializer, s, "status/diverged", float(s == 0 and shift == 2)),
                ]
    return pd.DataFrame(rows, columns=["scenario", "initializer", "seed", "metric", "value"])


def _comparison(analysis, metric, initializer, scenario="s1"):
    for comparison in analysis.comparisons:
        if (comparison.scenario, comparison.metric, comparison.initializer) == (
            scenario,
            metric,
            initializer,
        ):
            return comparison
    raise AssertionError(f"no comparison for {scenario}/{metric}/{initializer}")


def test_is_higher_better_rules():
    assert is_higher_better("test/accuracy")
    assert is_higher_better("test/accuracy_auc")
    assert is_higher_better("eval/label_agreement")
    assert not is_higher_better("train/loss@10%")
    assert not is_higher_better("convergence/steps_to_threshold")
    assert not is_higher_better("test/accuracy", {"test/accuracy": False})


def test_analyze_family_label():
    analysis = analyze(_table(), **FAST)

    test = _comparison(analysis, "test/accuracy", "xavier").tests[0]

    assert test.result.test == "wilcoxon"
    assert (
        test.family == "scenario=s1, metric=test/accuracy, test=wilcoxon, vs uniform: 2 comparisons"
    )


def test_analyze_holm_within_family():
    """Holm by hand over the family's two raw p-values: min(1, max-accumulated p * (2, 1))."""
    analysis = analyze(_table(), **FAST)
    tests = [_comparison(analysis, "test/loss", name).tests[1] for name in ("xavier", "phi")]
    raw = [test.result.p_value for test in tests]
    order = np.argsort(raw)
    expected = np.empty(2)
    expected[order[0]] = min(1.0, 2 * raw[order[0]])
    expected[order[1]] = min(1.0, max(expected[order[0]], raw[order[1]]))

    assert [test.p_adjusted for test in tests] == pytest.approx(expected)


def test_analyze_paired_t_matches_scipy():
    """The paired t-test inside analyze equals scipy.stats.ttest_rel on seed-aligned values."""
    table = _table()
    analysis = analyze(table, **FAST)
    loss = table[table["metric"] == "test/loss"].pivot(
        index="seed", columns="initializer", values="value"
    )

    result = _comparison(analysis, "test/loss", "phi").tests[1].result

    assert result.test == "paired-t"
    assert result.statistic == pytest.approx(
        scipy.stats.ttest_rel(loss["phi"], loss["uniform"]).statistic
    )


def test_analyze_unpaired_when_seeds_differ():
    table = _table()
    table.loc[table["initializer"] == "phi", "seed"] += 100

    comparison = _comparison(analyze(table, **FAST), "test/accuracy", "phi")

    assert comparison.paired is False
    assert [test.result.test for test in comparison.tests] == ["welch", "mann-whitney"]
    assert "hedges_g" in comparison.effect_sizes


def test_analyze_counts_dropped_nan():
    table = _table()
    rows = (
        (table["initializer"] == "xavier")
        & (table["metric"] == "test/accuracy")
        & (table["seed"] < 2)
    )
    table.loc[rows, "value"] = np.nan
    analysis = analyze(table, **FAST)

    summary = next(
        s for s in analysis.summaries if (s.metric, s.initializer) == ("test/accuracy", "xavier")
    )
    test = _comparison(analysis, "test/accuracy", "xavier").tests[0].result

    assert summary.n == 6
    assert summary.n_dropped == 2
    assert test.n == 6
    assert test.n_dropped == 2


def test_analyze_degenerate_json_has_no_nan():
    """Constant arm, all-NaN arm, no seed reaching the threshold: null plus a reason."""
    table = _table()
    phi_accuracy = (table["initializer"] == "phi") & (table["metric"] == "test/accuracy")
    table.loc[phi_accuracy, "value"] = 0.5
    table.loc[
        (table["initializer"] == "uniform") & (table["metric"] == "test/accuracy"), "value"
    ] = 0.5
    table.loc[(table["initializer"] == "xavier") & (table["metric"] == "test/loss"), "value"] = (
        np.nan
    )
    table.loc[table["metric"] == "convergence/reached_threshold", "value"] = 0.0

    content = analyze(table, **FAST).to_dict()
    text = json.dumps(content, allow_nan=False)
    phi = next(
        c
        for c in content["comparisons"]
        if (c["metric"], c["initializer"]) == ("test/accuracy", "phi")
    )

    assert content["notes"] == []
    assert "NaN" not in text
    assert phi["tests"][0]["not_testable"] == "all 8 paired differences are zero"
    assert phi["tests"][0]["p_adjusted"] is None
    assert phi["effect_sizes"]["d_z"]["not_testable"] is not None
    assert content["survival"]["results"][0]["logrank"]["phi"]["not_testable"] == (
        "no seed reached the threshold in either arm"
    )


def test_analyze_sections_present():
    content = analyze(_table(scenarios=("s1", "s2")), **FAST).to_dict()

    assert set(content["ranking"]["results"]) == {"test/accuracy", "test/loss"}
    assert content["ranking"]["results"]["test/accuracy"]["n_blocks"] == 2
    assert len(content["survival"]["results"]) == 2
    assert len(content["failure_rates"]["results"]) == 6
    assert {check["metric"] for check in content["aa_checks"]} == {"test/accuracy", "test/loss"}
    assert content["methods_text"].startswith("Each initializer was compared")


def test_analyze_failure_rate_counts():
    content = analyze(_table(), **FAST).to_dict()
    rates = {
        row["initializer"]: row
        for row in content["failure_rates"]["results"]
        if row["scenario"] == "s1"
    }

    assert rates["phi"]["n_diverged"] == 1
    assert rates["phi"]["n_seeds"] == 8
    assert rates["phi"]["rate"]["value"] == pytest.approx(1 / 8)
    assert rates["uniform"]["n_diverged"] == 0


def test_analyze_ranking_one_scenario_uses_seeds():
    """Check that with one scenario the Friedman blocks are its seeds, as stated in the output."""
    table = _table()
    analysis = analyze(table, **FAST)

    assert analysis.ranking_blocks == "seeds"
    assert analysis.to_dict()["ranking"]["blocks"] == "seeds"
    for result in analysis.ranking.values():
        assert result.n_blocks == table["seed"].nunique()


def test_analyze_equivalence_only_with_margin():
    analysis = analyze(_table(), equivalence_margins={"test/accuracy": 0.05}, **FAST)

    assert _comparison(analysis, "test/accuracy", "xavier").equivalence.result.test == "tost"
    assert _comparison(analysis, "test/loss", "xavier").equivalence is None


def test_analyze_other_reference():
    analysis = analyze(_table(), reference="phi", **FAST)

    assert {c.initializer for c in analysis.comparisons} == {"uniform", "xavier"}
    assert all(c.reference == "phi" for c in analysis.comparisons)


def test_analyze_direction_override():
    default = _comparison(analyze(_table(), **FAST), "test/loss", "phi")
    flipped = _comparison(
        analyze(_table(), higher_is_better={"test/loss": True}, **FAST), "test/loss", "phi"
    )

    assert default.effect_sizes["prob_improvement"].value == pytest.approx(
        1 - flipped.effect_sizes["prob_improvement"].value
    )


def test_analyze_warns_few_seeds():
    with pytest.warns(AnalysisWarning, match="fewer than 5 seeds in s1/phi \\(4\\)"):
        analysis = analyze(_table(num_seeds=4), **FAST)

    assert any("fewer than 5 seeds" in message for message in analysis.warnings)


def test_analyze_warns_unknown_override_metric():
    with pytest.warns(
        AnalysisWarning, match="'test/acuracy', which is not in `results`.*'test/accuracy'"
    ):
        analyze(_table(), higher_is_better={"test/acuracy": True}, **FAST)


def test_analyze_unknown_reference():
    with pytest.raises(
        ValueError, match="`reference` 'unifrom' is not an initializer.*Did you mean 'uniform'"
    ):
        analyze(_table(), reference="unifrom")


def test_analyze_missing_column():
    with pytest.raises(ValueError, match="missing the column 'seed'"):
        analyze(_table().drop(columns="seed"))


def test_analyze_non_numeric_value():
    table = _table()
    table["value"] = table["value"].astype(object)
    table.loc[3, "value"] = "n/a"

    with pytest.raises(ValueError, match="column 'value' must be numeric, got 'n/a'"):
        analyze(table)


def test_analyze_non_integer_seed():
    table = _table()
    table["seed"] = table["seed"].astype(float)
    table.loc[0, "seed"] = 1.5

    with pytest.raises(ValueError, match="column 'seed' must hold integers, got 1.5"):
        analyze(table)


def test_analyze_duplicate_rows():
    table = _table()
    table = pd.concat([table, table.iloc[[0]]])

    with pytest.raises(ValueError, match="2 rows that share a .* key.*one learning rate"):
        analyze(table)


def test_analyze_rejects_bad_correction():
    with pytest.raises(
        ValueError, match="`correction` must be one of \\['holm', 'fdr_bh'\\], got 'bh'"
    ):
        analyze(_table(), correction="bh")


def test_analyze_rejects_bad_margin():
    with pytest.raises(
        ValueError, match="`equivalence_margins\\['test/accuracy'\\]` must be a positive"
    ):
        analyze(_table(), equivalence_margins={"test/accuracy": 0.0})


def test_load_results_csv_ignores_extra_columns(tmp_path):
    """Check that unknown columns are dropped and learning_rate is kept for the report."""
    table = _table()
    table["learning_rate"] = 0.01
    table["comment"] = "x"
    path = tmp_path / "results.csv"
    table.to_csv(path, index=False)

    loaded = load_results_csv(path)

    assert list(loaded.columns) == ["scenario", "initializer", "seed", "metric", "value",
                                    "learning_rate"]
    assert (loaded["learning_rate"] == 0.01).all()
    assert len(loaded) == len(table)


def test_load_results_csv_missing_file(tmp_path):
    with pytest.raises(ValueError, match="results file .* was not found"):
        load_results_csv(tmp_path / "absent.csv")


def test_analyze_emits_no_other_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyze(_table(scenarios=("s1", "s2")), **FAST)
