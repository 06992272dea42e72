"""Ablation: what each term of φ contributes, and φ against its controls.

Every arm of the φ family (the ablations `phi-no-*`, the λ-grid variants `phi-l*x*`) and the
controls (`pretrain`, `copy-exact`, the report's reference) is compared with full `phi`,
seed by seed: the effect is the mean paired difference arm − φ with a 95% BCa bootstrap CI
over seeds (`reports.stats.bootstrap_ci` on the differences), Cohen's d_z, and the Wilcoxon
signed-rank p-value (`reports.stats.paired_tests`) after Holm correction within each
scenario × metric family of arms (`reports.stats.adjust`). Variance is compared as the ratio
of standard deviations arm / φ (`reports.stats.sd_ratio_ci`) with the Brown–Forsythe test
(`reports.stats.variance_tests`), Holm-corrected the same way.
"""

from __future__ import annotations

import html as html_lib

import numpy as np
import pandas as pd

from reports import stats
from reports.sections import ReportContext, Section
from reports.sections._common import label, number, table

PHI = "phi"
ABLATION_ORDER = ("phi-no-ce", "phi-no-l2", "phi-no-robust", "phi-no-hessian")
"""λ1 … λ4: the order in which the ablations are listed."""
CONTROLS = ("pretrain", "copy-exact")

CRITERIA: tuple[tuple[str, str], ...] = (
    ("quality", "test/accuracy"),
    ("quality", "test/loss"),
    ("convergence", "test/accuracy_auc"),
    ("convergence", "convergence/steps_to_threshold"),
    ("convergence", "train/loss@10%"),
    ("transfer", "init/d1_accuracy"),
    ("robustness", "robust/mean_accuracy"),
    ("sharpness", "sharpness/top_eigenvalue"),
    ("sharpness", "sharpness/hessian_trace"),
)
"""(criterion, metric) pairs of the summary, in order; those absent from the run are skipped.
"robust/mean_accuracy" is derived here: per seed, the mean of every `robust/*/accuracy`."""

SUMMARY_METRICS = ("test/accuracy", "test/accuracy_auc", "convergence/steps_to_threshold",
                   "init/d1_accuracy", "robust/mean_accuracy")
"""Columns of the compact matrix (the detail table has every criterion and metric)."""

FIGURE_METRICS = ("test/accuracy", "test/accuracy_auc", "robust/mean_accuracy")

VARIANCE_METRIC = "test/accuracy"
ROBUST_MEAN = "robust/mean_accuracy"
ALPHA = 0.05


def arms(tidy: pd.DataFrame, scenario: str, reference: str) -> list[str]:
    """Return the arms compared with φ in `scenario`: φ variants, then the controls."""
    names = set(tidy[tidy.scenario == scenario].initializer.unique())
    variants = sorted(n for n in names if n.startswith("phi-"))
    ablations = [n for n in ABLATION_ORDER if n in names]
    ablations += [n for n in variants if n.startswith("phi-no-") and n not in ablations]
    others = [n for n in variants if n not in ablations]
    controls = [n for n in (*CONTROLS, reference) if n in names and n != PHI]
    return ablations + others + list(dict.fromkeys(controls))


def with_robust_mean(tidy: pd.DataFrame) -> pd.DataFrame:
    """Add `robust/mean_accuracy`: per seed, the mean over every `robust/*/accuracy` metric."""
    robust = tidy[tidy.metric.str.startswith("robust/") & tidy.metric.str.endswith("/accuracy")]
    if robust.empty:
        return tidy
    keys = [c for c in ("scenario", "initializer", "learning_rate", "seed") if c in tidy.columns]
    mean = robust.groupby(keys, as_index=False, dropna=False)["value"].mean()
    mean["metric"] = ROBUST_MEAN
    return pd.concat([tidy, mean[tidy.columns]], ignore_index=True)


def _direction(metric: str) -> bool:
    try:
        from reports.analysis import is_higher_better
    except ImportError:  # pragma: no cover - the analysis module is part of the package
        return any(word in metric for word in ("accuracy", "auc", "agreement"))
    return is_higher_better(metric)


def _paired(tidy: pd.DataFrame, scenario: str, metric: str, arm: str):
    rows = tidy[(tidy.scenario == scenario) & (tidy.metric == metric)]
    a = rows[rows.initializer == arm].groupby("seed")["value"].mean()
    b = rows[rows.initializer == PHI].groupby("seed")["value"].mean()
    common = a.index.intersection(b.index)
    return a.loc[common].to_numpy(float), b.loc[common].to_numpy(float)


def compare(tidy: pd.DataFrame, scenario: str, names: list[str], n_resamples: int,
            random_state: int) -> list[dict]:
    """Return one record per (criterion, metric, arm): the paired effect against φ."""
    records = []
    metrics = set(tidy[tidy.scenario == scenario].metric.unique())
    for criterion, metric in CRITERIA:
        if metric not in metrics:
            continue
        family = []
        for arm in names:
            x, y = _paired(tidy, scenario, metric, arm)
            if x.size == 0:
                continue
            finite = np.isfinite(x) & np.isfinite(y)
            d = x[finite] - y[finite]
            delta = stats.bootstrap_ci(d, "mean", n_resamples=n_resamples,
                                       random_state=random_state) if d.size else None
            wilcoxon, paired_t = stats.paired_tests(x, y)
            sd = float(np.std(d, ddof=1)) if d.size > 1 else float("nan")
            d_z = float(np.mean(d) / sd) if d.size > 1 and sd > 0 else None
            family.append({"criterion": criterion, "metric": metric, "arm": arm,
                           "higher_is_better": _direction(metric), "n": int(d.size),
                           "arm_mean": _mean(x), "phi_mean": _mean(y), "delta": delta,
                           "d_z": d_z, "wilcoxon": wilcoxon, "paired_t": paired_t})
        for key in ("wilcoxon", "paired_t"):
            adjusted = stats.adjust([r[key].p_value for r in family], "holm")
            for record, p in zip(family, adjusted):
                record[f"{key}_p_holm"] = p
        records.extend(family)

    if VARIANCE_METRIC in metrics:
        family = []
        for arm in names:
            x, y = _paired(tidy, scenario, VARIANCE_METRIC, arm)
            if x.size == 0:
                continue
            ratio = stats.sd_ratio_ci(x, y, paired=True, n_resamples=n_resamples,
                                      random_state=random_state)
            brown = next((t for t in stats.variance_tests(x, y)
                          if t.test.lower().startswith("brown")), None)
            family.append({"criterion": "variance", "metric": f"SD of {VARIANCE_METRIC}",
                           "arm": arm, "sd_ratio": ratio, "brown_forsythe": brown})
        adjusted = stats.adjust([r["brown_forsythe"].p_value if r["brown_forsythe"] else None
                                 for r in family], "holm")
        for record, p in zip(family, adjusted):
            record["brown_forsythe_p_holm"] = p
        records.extend(family)
    return records


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _p(p: float | None, test) -> str:
    if p is None:
        reason = getattr(test, "not_testable", None)
        return f"not testable ({reason})" if reason else "not testable"
    return f"{p:.3g}{'*' if p < ALPHA else ''}"


def _delta_text(estimate, digits: int = 4, short: bool = False) -> str:
    if estimate is None or estimate.value is None:
        if short or estimate is None:
            return "not testable"
        return f"not testable ({estimate.not_testable})"
    value = f"{estimate.value:+.{digits}g}"
    if estimate.low is None or estimate.high is None:
        if short:
            return f"{value} (no CI)"
        return f"{value} (no CI: {estimate.note})" if estimate.note else value
    return f"{value} [{estimate.low:+.{digits}g}, {estimate.high:+.{digits}g}]"


def _metric_label(metric: str) -> str:
    if metric == ROBUST_MEAN:
        return "mean robust accuracy ↑"
    if metric.startswith("SD of "):
        return f"SD of {label(metric[6:])}"
    return f"{label(metric)} {'↑' if _direction(metric) else '↓'}"


def _detail_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        if r["criterion"] == "variance":
            rows.append([r["criterion"], _metric_label(r["metric"]), r["arm"], "", "",
                         "SD ratio arm/φ " + _ratio_text(r["sd_ratio"]), "",
                         "Brown–Forsythe " + _p(r["brown_forsythe_p_holm"], r["brown_forsythe"])])
            continue
        rows.append([r["criterion"], _metric_label(r["metric"]), r["arm"], number(r["phi_mean"]),
                     number(r["arm_mean"]), _delta_text(r["delta"]), number(r["d_z"], 2),
                     _p(r["wilcoxon_p_holm"], r["wilcoxon"])])
    return rows


def _ratio_text(estimate) -> str:
    if estimate is None or estimate.value is None:
        return "not testable"
    if estimate.low is None or estimate.high is None:
        return f"{estimate.value:.3g}"
    return f"{estimate.value:.3g} [{estimate.low:.3g}, {estimate.high:.3g}]"


def _matrix_rows(records: list[dict], names: list[str]) -> tuple[list[list[str]], list[str]]:
    present = [m for m in SUMMARY_METRICS if any(r["metric"] == m for r in records)]
    by_key = {(r["arm"], r["metric"]): r for r in records}
    rows = []
    for arm in names:
        row = [arm]
        for metric in present:
            r = by_key.get((arm, metric))
            if r is None:
                row.append("n/a")
                continue
            p = r["wilcoxon_p_holm"]
            delta = _delta_text(r["delta"], 3, short=True)
            row.append(f"{delta}, p {_p(p, r['wilcoxon'])}" if p is not None
                       else f"{delta}, not testable")
        variance = by_key.get((arm, f"SD of {VARIANCE_METRIC}"))
        if variance is not None:
            row.append(_ratio_text(variance["sd_ratio"]))
        rows.append(row)
    headers = ["arm"] + [f"Δ {_metric_label(m)} [95% CI], Holm p" for m in present]
    if any(r["criterion"] == "variance" for r in records):
        headers.append(f"SD ratio of {label(VARIANCE_METRIC)}")
    return rows, headers


def _figure(records: list[dict], names: list[str], scenario: str) -> str:
    """Forest plot: Δ vs φ with its 95% CI, one panel per figure metric."""
    from reports.figures import figure_to_svg, plt

    metrics = [m for m in FIGURE_METRICS if any(r["metric"] == m for r in records)]
    if not metrics:
        return ""
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics) + 1.6,
                                                        0.32 * len(names) + 1.1),
                             sharey=True, squeeze=False)
    by_key = {(r["arm"], r["metric"]): r for r in records}
    positions = np.arange(len(names))[::-1]
    for ax, metric in zip(axes[0], metrics):
        for y, arm in zip(positions, names):
            r = by_key.get((arm, metric))
            estimate = r["delta"] if r else None
            if estimate is None or estimate.value is None:
                continue
            significant = r["wilcoxon_p_holm"] is not None and r["wilcoxon_p_holm"] < ALPHA
            color = "tab:red" if significant else "tab:blue"
            if estimate.low is not None and estimate.high is not None:
                ax.hlines(y, estimate.low, estimate.high, color=color, linewidth=1.5)
            ax.plot(estimate.value, y, "o", color=color, markersize=4)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(_metric_label(metric), fontsize=8)
        ax.set_xlabel("arm − φ")
    axes[0][0].set_yticks(positions, names, fontsize=8)
    fig.suptitle(f"{scenario}: effect against full φ (95% CI; red: Holm p < {ALPHA})", fontsize=9)
    fig.tight_layout()
    return figure_to_svg(fig)


def render(ctx: ReportContext) -> Section | None:
    tidy = ctx.tidy
    if tidy is None or tidy.empty or PHI not in set(tidy.initializer.unique()):
        return None
    tidy = with_robust_mean(tidy)
    options = getattr(getattr(ctx, "analysis", None), "options", None)
    n_resamples = int(getattr(options, "n_resamples", 9999))
    random_state = int(getattr(options, "random_state", 0))

    html_parts, markdown_parts = [], []
    for scenario in sorted(tidy.scenario.unique()):
        if PHI not in set(tidy[tidy.scenario == scenario].initializer.unique()):
            continue
        names = arms(tidy, scenario, ctx.reference)
        if not names:
            continue
        records = compare(tidy, scenario, names, n_resamples, random_state)
        if not records:
            continue
        matrix, headers = _matrix_rows(records, names)
        m_html, m_markdown = table(matrix, headers)
        d_html, d_markdown = table(_detail_rows(records), [
            "criterion", "metric", "arm", "φ mean", "arm mean", "Δ arm − φ [95% CI]", "d_z",
            "p (Wilcoxon, Holm)"])
        svg = _figure(records, names, scenario)
        title = html_lib.escape(scenario)
        html_parts.append(f"<h3>{title}</h3>\n{m_html}\n<figure>{svg}</figure>\n"
                          f"<details><summary>Every criterion</summary>\n{d_html}\n</details>")
        markdown_parts.append(f"### {scenario}\n\n{m_markdown}\n\n#### Every criterion\n\n"
                              f"{d_markdown}")
    if not html_parts:
        return None

    note = ("<p class='note'>Each arm against full <code>phi</code>, seed by seed (paired: "
            "seed i shares its teacher, data order and draws across arms). Δ is the mean paired "
            "difference arm − φ with a 95% BCa bootstrap CI over seeds; d_z = mean/SD of the "
            "differences; p is the two-sided Wilcoxon signed-rank test, Holm-corrected within "
            "each scenario × metric family of arms (* p &lt; 0.05). ↑/↓: higher/lower is better, "
            "so a negative Δ on an ↑ metric means removing that piece hurts. "
            "<code>phi-no-*</code> set one λ to 0; <code>phi-l2x10</code> etc. multiply one λ; "
            "<code>pretrain</code> trains the default-initialized student on D1* for φ's K steps "
            "with φ's optimizer (compute-matched in steps; φ's extra passes and HVPs are in the "
            "compute columns). Every arm is at its own best validation learning rate. For steps to "
            "threshold, a seed that never reached τ counts as the step budget, so Δ compares "
            "restricted mean times (capped at the budget), not the Kaplan–Meier medians of the "
            "convergence section. The robustness column is the per-seed mean of "
            "every robust/*/accuracy metric; the SD ratio (arm/φ) of test accuracy has a paired "
            "bootstrap CI.</p>")
    markdown_note = ("Each arm against full `phi`, paired by seed: Δ = mean(arm − φ) "
                     "[95% BCa CI], Wilcoxon p Holm-corrected per scenario × metric (* p < 0.05).")
    return Section("ablation", "Ablation: the terms of φ", note + "\n".join(html_parts),
                   markdown_note + "\n\n" + "\n\n".join(markdown_parts))

