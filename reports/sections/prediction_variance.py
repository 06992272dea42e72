"""Prediction variance across seeds: do different seeds of one initializer predict alike?

Per-seed strip plots show the spread of test accuracy. Prediction variance and pairwise
disagreement need every seed's test-set probabilities at once, so they are computed here
from the files under RUN_DIR/predictions/ (written by each cell), with intervals from a
bootstrap over seeds.
"""

from __future__ import annotations

import numpy as np

from bench.predictions import (MIN_BOOTSTRAP_SEEDS, load_predictions, pairwise_disagreement,
                               pairwise_variance, seed_bootstrap_ci)
from reports.figures import figure_to_svg, strip_plot
from reports.sections import ReportContext, Section
from reports.sections._common import initializers, number, scenarios, table

STRIP_METRICS = {"test/accuracy": "test accuracy", "test/loss": "test loss"}
BOOTSTRAP_RESAMPLES = 9999


def render(ctx: ReportContext) -> Section | None:
    html_parts, markdown_parts = [], []
    for scenario in scenarios(ctx.tidy):
        names = initializers(ctx.tidy, scenario, ctx.reference)
        html_parts.append(_strip_plots(ctx, scenario, names))
        arms = _arm_predictions(ctx, scenario, names)
        if arms:
            html, markdown = _variance_table(arms)
            html_parts.append(f"<h3>{scenario}: prediction variance and disagreement</h3>\n{html}")
            markdown_parts.append(f"### {scenario}: prediction variance and disagreement\n\n"
                                  f"{markdown}")
            html_parts.append(_disagreement_strip(scenario, arms))

    if not any(html_parts):
        return None
    return Section("prediction-variance", "Prediction variance across seeds",
                   _note(ctx) + "\n".join(part for part in html_parts if part),
                   "\n\n".join(markdown_parts))


def _strip_plots(ctx: ReportContext, scenario: str, names: list[str]) -> str:
    parts = []
    for metric, text in STRIP_METRICS.items():
        rows = ctx.tidy[(ctx.tidy.scenario == scenario) & (ctx.tidy.metric == metric)]
        groups = {name: rows[rows.initializer == name].sort_values("seed").value.to_numpy(float)
                  for name in names}
        if not any(len(values) for values in groups.values()):
            continue
        fig = strip_plot(groups, ylabel=text, title=f"{scenario}: {text} per seed")
        parts.append(f"<figure>{figure_to_svg(fig)}</figure>")
    return "\n".join(parts)


def _arm_predictions(ctx: ReportContext, scenario: str, names: list[str]) -> dict:
    """Load each arm's predictions at its selected learning rate, finite seeds only."""
    if ctx.run_dir is None or ctx.results is None:
        return {}
    selected = ctx.results.selected
    arms = {}
    for name in names:
        row = selected[(selected.scenario == scenario) & (selected.initializer == name)]
        if row.empty:
            continue
        predictions = load_predictions(ctx.run_dir, scenario, name,
                                       float(row.learning_rate.iloc[0]))
        if predictions is None:
            continue
        finite = ~predictions.diverged & np.isfinite(predictions.probabilities).all((1, 2))
        arms[name] = (predictions.probabilities[finite], predictions.labels[finite],
                      int((~finite).sum()))
    return arms


def _variance_table(arms: dict) -> tuple[str, str]:
    rows = []
    for name, (probabilities, labels, dropped) in arms.items():
        if len(labels) < 2:
            rows.append([name, len(labels), dropped, "n/a (fewer than 2 seeds)", "n/a"])
            continue
        rows.append([name, len(labels), dropped,
                     _with_interval(pairwise_variance(probabilities)),
                     _with_interval(pairwise_disagreement(labels))])
    return table(rows, ["initializer", "seeds", "diverged (left out)",
                        "prediction variance [95% CI]", "disagreement [95% CI]"])


def _with_interval(pairwise: np.ndarray) -> str:
    size = pairwise.shape[0]
    value = float((pairwise.sum() - np.trace(pairwise)) / (size * (size - 1)))
    interval = seed_bootstrap_ci(pairwise, n_resamples=BOOTSTRAP_RESAMPLES)
    if interval is None:
        return number(value, 4)
    return f"{number(value, 4)} [{number(interval[0], 4)}, {number(interval[1], 4)}]"


def _disagreement_strip(scenario: str, arms: dict) -> str:
    """Plot each seed's mean disagreement with the other seeds of its arm."""
    groups = {}
    for name, (_, labels, _) in arms.items():
        if len(labels) >= 2:
            matrix = pairwise_disagreement(labels)
            groups[name] = matrix.sum(1) / (len(labels) - 1)
    if not groups:
        return ""
    fig = strip_plot(groups, ylabel="mean disagreement with the other seeds",
                     title=f"{scenario}: disagreement per seed")
    return f"<figure>{figure_to_svg(fig)}</figure>"


def _note(ctx: ReportContext) -> str:
    missing = ("" if ctx.run_dir is not None else
               " This report was built from a results table alone, so the prediction variance, "
               "which needs the stored test-set probabilities, is not shown.")
    return ("<p class='note'>Strip plots show every seed (dots) and the median (bar) at each "
            "initializer's selected learning rate. Prediction variance is, per test sample, the "
            "unbiased variance across seeds of each class probability, summed over classes, then "
            "averaged over test samples. Disagreement is the share of seed pairs and test "
            "samples with different predicted labels. Intervals are 95% BCa bootstrap intervals "
            "that resample seeds, counting only pairs of distinct seeds, shown from "
            f"{MIN_BOOTSTRAP_SEEDS} seeds on. Diverged seeds are left out." + missing + "</p>")
