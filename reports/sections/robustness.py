"""Robustness and sharpness: accuracy and loss under input noise, weight noise and attacks.

Reads the per-seed `robust/<kind>@<level>/<accuracy|loss>` metrics, the `sharpness/...`
metrics after training and the gradient and curvature metrics at initialization.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np

from reports.figures import color_for, figure_to_svg
from reports.sections import ReportContext, Section
from reports.sections._common import initializers, mean_rows, scenarios, table
from reports.sections.convergence import mean_band

ROBUST_METRIC = re.compile(
    r"^robust/(?P<kind>[a-z_]+)@(?P<level>[0-9.e+-]+)/(?P<quantity>accuracy|loss)$")
KINDS = {
    "gaussian": "Gaussian input noise σ (× input std)",
    "uniform": "uniform input noise δ (× input std)",
    "weight_noise": "weight noise σ (× RMS of each tensor)",
    "fgsm": "FGSM ε (× input std)",
    "pgd": "PGD ε (× input std)",
}
"""Kinds of perturbation in report order, with the x-axis label of their curves."""
CLEAN = {"accuracy": "test/accuracy", "loss": "test/loss"}
"""The unperturbed metric drawn at level 0 of the noise curves."""
ATTACKS = ("fgsm", "pgd")
ATTACKED_CLEAN = "robust/attacked_clean/{quantity}"
"""The unperturbed metric on the attacked test samples, level 0 of the attack curves."""
SHARPNESS_METRICS = {
    "init/grad_norm": "gradient norm at init",
    "init/hessian_trace": "Hessian trace at init",
    "init/top_eigenvalue": "top Hessian eigenvalue at init",
    "init/live_unit_fraction": "units with nonzero gradient at init",
    "sharpness/hessian_trace": "Hessian trace after training",
    "sharpness/top_eigenvalue": "top Hessian eigenvalue after training",
}


def render(ctx: ReportContext) -> Section | None:
    levels = _levels(ctx.tidy)
    if not levels and not set(SHARPNESS_METRICS) & set(ctx.tidy.metric):
        return None

    html_parts, markdown_parts = [], []
    for scenario in scenarios(ctx.tidy):
        names = initializers(ctx.tidy, scenario, ctx.reference)
        if levels:
            html_parts.append(f"<h3>{scenario}: accuracy and loss under perturbation</h3>\n"
                              f"<figure>{figure_to_svg(_curves(ctx.tidy, scenario, names, levels))}"
                              f"</figure>")
            html, markdown = _robustness_table(ctx, scenario, names, levels)
            html_parts.append(html)
            markdown_parts.append(f"### {scenario}: accuracy under perturbation\n\n{markdown}")
        sharpness = _sharpness_table(ctx, scenario, names)
        if sharpness is not None:
            html_parts.append(f"<h3>{scenario}: gradient and curvature</h3>\n{sharpness[0]}")
            markdown_parts.append(f"### {scenario}: gradient and curvature\n\n{sharpness[1]}")

    return Section("robustness", "Robustness and sharpness", _note(ctx) + "\n".join(html_parts),
                   "\n\n".join(markdown_parts))


def _levels(tidy) -> dict[str, list[float]]:
    """Return the measured levels of each kind of perturbation, ascending."""
    found: dict[str, set[float]] = {}
    for metric in tidy.metric.unique():
        match = ROBUST_METRIC.match(str(metric))
        if match and match["kind"] in KINDS:
            found.setdefault(match["kind"], set()).add(float(match["level"]))
    return {kind: sorted(found[kind]) for kind in KINDS if kind in found}


def _metric_name(kind: str, level: float, quantity: str) -> str:
    return f"robust/{kind}@{level:g}/{quantity}"


def _per_seed(tidy, scenario: str, name: str, metric: str) -> np.ndarray:
    rows = tidy[(tidy.scenario == scenario) & (tidy.initializer == name) & (tidy.metric == metric)]
    return rows.sort_values("seed").value.to_numpy(float)


def _curves(tidy, scenario: str, names: list[str], levels: dict[str, list[float]]):
    """Draw accuracy (top row) and loss (bottom row) against each kind's level."""
    fig, axes = plt.subplots(2, len(levels), figsize=(2.6 * len(levels) + 0.6, 4.8),
                             squeeze=False, sharey="row")
    for column, (kind, kind_levels) in enumerate(levels.items()):
        for row, quantity in enumerate(("accuracy", "loss")):
            axis = axes[row, column]
            for index, name in enumerate(names):
                clean = (ATTACKED_CLEAN.format(quantity=quantity) if kind in ATTACKS
                         else CLEAN[quantity])
                metrics = [clean] + [_metric_name(kind, level, quantity) for level in kind_levels]
                columns = [_per_seed(tidy, scenario, name, metric) for metric in metrics]
                if any(len(values) != len(columns[0]) or len(values) == 0 for values in columns):
                    continue  # A metric missing for this arm: draw nothing rather than misalign.
                center, low, high = mean_band(np.stack(columns, axis=1))
                x = np.array([0.0] + kind_levels)
                axis.plot(x, center, color=color_for(index), linewidth=1.3, marker="o",
                          markersize=2.5,
                          label=name if (row, column) == (0, 0) else None)
                axis.fill_between(x, low, high, color=color_for(index), alpha=0.18, linewidth=0)
            axis.set_xlabel(KINDS[kind], fontsize=7)
            if column == 0:
                axis.set_ylabel(f"test {quantity}")
    fig.legend(loc="upper center", ncol=min(len(names), 5), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def _robustness_table(ctx, scenario: str, names: list[str], levels: dict[str, list[float]]):
    """Tabulate mean accuracy [95% CI] at clean inputs and at each kind's middle level."""
    middle = {kind: kind_levels[len(kind_levels) // 2] for kind, kind_levels in levels.items()}
    metrics = [CLEAN["accuracy"]] + [_metric_name(kind, level, "accuracy")
                                     for kind, level in middle.items()]
    headers = ["initializer", "clean"] + [f"{kind} @ {level:g}" for kind, level in middle.items()]
    return table(mean_rows(ctx, scenario, names, metrics), headers)


def _sharpness_table(ctx, scenario: str, names: list[str]):
    present = [metric for metric in SHARPNESS_METRICS if metric in set(ctx.tidy.metric)]
    if not present:
        return None
    return table(mean_rows(ctx, scenario, names, present),
                 ["initializer"] + [SHARPNESS_METRICS[metric] for metric in present])


def _note(ctx: ReportContext) -> str:
    settings = ""
    if ctx.config is not None and hasattr(ctx.config, "robustness"):
        rc = ctx.config.robustness
        start = "a uniform random start in the ε-box" if rc.pgd_random_start else "the clean input"
        settings = (f" FGSM and PGD attack the first {rc.adversarial_samples} test samples; PGD "
                    f"takes {rc.pgd_steps} steps of {rc.pgd_step_fraction:g}·ε from {start}, "
                    f"projected onto the L∞ ball. Weight noise is averaged over "
                    f"{rc.weight_noise_draws} draws. The Hessian trace uses "
                    f"{rc.hutchinson_probes} Rademacher probes (Hutchinson) and the top "
                    f"eigenvalue {rc.power_iterations} power-iteration steps.")
    return ("<p class='note'>Curves show the mean over seeds with a 95% t-interval band; level "
            "0 is the clean test set. Input noise and attack radii are multiples of the standard "
            "deviation of D2's training inputs, and weight noise is relative to the RMS of each "
            "seed's weight or bias tensor. Table cells are means over seeds [95% bootstrap CI]. "
            "Curvature is that of the mean training loss on a fixed batch of D2's training set; "
            "the top eigenvalue is the eigenvalue of largest magnitude." + settings + "</p>")
