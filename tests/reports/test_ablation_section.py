"""The ablation section: paired effects against full φ, corrected p-values and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports import stats
from reports.sections import SECTION_MODULES, ReportContext
from reports.sections import ablation

ARMS = ("phi", "phi-no-ce", "phi-no-l2", "phi-no-robust", "phi-no-hessian", "phi-l4x10",
        "pretrain", "copy-exact", "uniform", "xavier")
SHIFT = {"pretrain": -0.05, "phi-no-l2": -0.01}


def tidy(num_seeds: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.03, num_seeds)  # shared by the arms: pairing matters
    rows = []
    for arm in ARMS:
        for seed in range(num_seeds):
            accuracy = 0.6 + seed_effect[seed] + SHIFT.get(arm, 0.0) + rng.normal(0, 0.002)
            for metric, value in (("test/accuracy", accuracy), ("test/loss", 2 - accuracy),
                                  ("robust/gaussian@0.25/accuracy", accuracy - 0.1),
                                  ("robust/fgsm@0.1/accuracy", accuracy - 0.3)):
                rows.append({"scenario": "mnist1d-subset", "initializer": arm,
                             "learning_rate": 1e-3, "seed": seed, "metric": metric,
                             "value": value})
    return pd.DataFrame(rows)


def context(table: pd.DataFrame) -> ReportContext:
    return ReportContext(run_dir=None, config=None, results=None, tidy=table, analysis=None,
                         reference="uniform")


def test_section_follows_the_criteria_and_precedes_the_ranking():
    # One section per criterion, then the ablation section, then the ranking.
    position = SECTION_MODULES.index("ablation")
    assert position > SECTION_MODULES.index("variance")
    assert position < SECTION_MODULES.index("ranking")


def test_arms_are_the_phi_family_and_the_controls_in_lambda_order():
    names = ablation.arms(tidy(), "mnist1d-subset", "uniform")
    assert names == ["phi-no-ce", "phi-no-l2", "phi-no-robust", "phi-no-hessian", "phi-l4x10",
                     "pretrain", "copy-exact", "uniform"]  # xavier is no control of φ


def test_effects_are_paired_differences_with_holm_corrected_wilcoxon():
    table = ablation.with_robust_mean(tidy())
    names = ablation.arms(table, "mnist1d-subset", "uniform")
    records = ablation.compare(table, "mnist1d-subset", names, 999, 0)
    accuracy = {r["arm"]: r for r in records if r["metric"] == "test/accuracy"}

    def values(arm):
        rows = table[(table.initializer == arm) & (table.metric == "test/accuracy")]
        return rows.sort_values("seed").value.to_numpy()

    d = values("pretrain") - values("phi")
    assert accuracy["pretrain"]["delta"].value == pytest.approx(d.mean())
    assert accuracy["pretrain"]["delta"].high < 0  # the CI excludes 0
    raw = [stats.paired_tests(values(arm), values("phi"))[0].p_value for arm in names]
    expected = stats.adjust(raw, "holm")
    assert [accuracy[arm]["wilcoxon_p_holm"] for arm in names] == pytest.approx(expected)
    assert accuracy["pretrain"]["wilcoxon_p_holm"] < 0.05
    assert accuracy["phi-no-ce"]["wilcoxon_p_holm"] > 0.05

    robust = {r["arm"]: r for r in records if r["metric"] == ablation.ROBUST_MEAN}
    assert robust["pretrain"]["delta"].value == pytest.approx(d.mean())
    assert any(r["criterion"] == "variance" for r in records)


def test_render_shows_every_arm_a_figure_and_no_bare_nan():
    section = ablation.render(context(tidy()))
    assert section is not None and section.anchor == "ablation"
    for arm in ("phi-no-ce", "phi-no-hessian", "pretrain", "copy-exact"):
        assert arm in section.html and arm in section.markdown
    assert "<svg" in section.html and "http" not in section.html.split("<svg", 1)[0]
    assert "nan" not in section.markdown.lower().replace("nano", "")


def test_render_is_skipped_without_phi_and_survives_too_few_seeds():
    assert ablation.render(context(tidy()[lambda t: t.initializer != "phi"])) is None
    section = ablation.render(context(tidy(num_seeds=2)))
    assert section is not None and "not testable" in section.markdown
