"""Convergence: learning curves with CI bands, Kaplan–Meier curves of steps to threshold."""

from __future__ import annotations

import numpy as np
import scipy.stats

from reports.figures import curves_with_bands, figure_to_svg, step_curves
from reports.sections import ReportContext, Section
from reports.sections._common import estimate_text, initializers, label, p_text, table


def mean_band(values: np.ndarray, confidence: float = 0.95):
    """Return the mean over seeds and a t-based CI of the mean, per column.

    values: (num_seeds, num_points), NaN for diverged seeds (left out per column). A t
    interval, not a bootstrap, because it is drawn at every evaluation step of every arm.
    """
    counts = np.sum(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(counts > 0, values, 0.0), axis=0)
        sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(counts) if values.shape[0] > 1 \
            else np.zeros_like(mean)
    t = scipy.stats.t.ppf(0.5 + confidence / 2, np.maximum(counts - 1, 1))
    half = np.nan_to_num(t * sem)
    return mean, mean - half, mean + half


def render(ctx: ReportContext) -> Section | None:
    html_parts, markdown_parts = [], []
    for scenario in sorted(ctx.tidy.scenario.unique()):
        names = initializers(ctx.tidy, scenario, ctx.reference)
        if ctx.results is not None:
            html_parts.append(_learning_curves(ctx, scenario, names))
        survival = next((s for s in ctx.analysis.survival if s.scenario == scenario), None)
        if survival is not None:
            html, markdown = _survival(ctx, scenario, survival, names)
            html_parts.append(html)
            markdown_parts.append(markdown)

    if not html_parts:
        return None
    note = ""
    if ctx.results is not None:
        taus = ", ".join(f"{s}: {t:.3f}" for s, t in sorted(ctx.results.thresholds.items()))
        note = (f"<p class='note'>Curves show the mean over seeds with a 95% t-interval band. "
                f"The convergence threshold τ is the median final validation accuracy of "
                f"<code>{ctx.reference}</code> ({taus}); a seed that never reaches τ is "
                f"censored at the step budget.</p>")
    return Section("convergence", "Convergence", note + "\n".join(html_parts),
                   "\n\n".join(markdown_parts))


def _learning_curves(ctx: ReportContext, scenario: str, names: list[str]) -> str:
    curves = ctx.results.curves
    chosen = ctx.results.selected
    compute = ctx.tidy[(ctx.tidy.scenario == scenario)
                       & (ctx.tidy.metric == "compute/init_optimizer_steps")]
    parts = []
    for metric, against in (("val/accuracy", "steps"), ("test/accuracy", "steps"),
                            ("test/accuracy", "compute")):
        series = {}
        for name in names:
            lr = chosen[(chosen.scenario == scenario) & (chosen.initializer == name)]
            if lr.empty:
                continue
            rows = curves[(curves.scenario == scenario) & (curves.initializer == name)
                          & (curves.learning_rate == lr.learning_rate.iloc[0])
                          & (curves.metric == metric)]
            table_ = rows.pivot(index="seed", columns="step", values="value")
            x = table_.columns.to_numpy(float)
            if against == "compute":
                spent = compute[compute.initializer == name].value
                x = x + (float(spent.median()) if len(spent) else 0.0)
            series[name] = (x, *mean_band(table_.to_numpy(float)))
        xlabel = ("D2 training steps" if against == "steps"
                  else "total optimizer steps (initializer + D2 training)")
        fig = curves_with_bands(series, xlabel=xlabel, ylabel=label(metric),
                                title=f"{scenario}: {metric} against {against}")
        parts.append(f"<figure>{figure_to_svg(fig)}</figure>")
    return f"<h3>{scenario}: learning curves</h3>\n" + "\n".join(parts)


def _or_nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _survival(ctx, scenario, survival, names):
    series, rows = {}, []
    for name in names:
        curve = survival.curves.get(name)
        if curve is None:
            continue
        times = np.concatenate([[0.0], np.asarray(curve.times, float)])
        values = np.concatenate([[1.0], np.asarray(curve.survival, float)])
        low = np.concatenate([[1.0], _or_nan(curve.ci_low)])
        high = np.concatenate([[1.0], _or_nan(curve.ci_high)])
        series[name] = (times, 1.0 - values, 1.0 - high, 1.0 - low)
        logrank = survival.logrank.get(name)
        rows.append([name, f"{curve.n_events}/{curve.n}", estimate_text(curve.median),
                     "reference" if name == ctx.reference else p_text(logrank)])
    svg = figure_to_svg(step_curves(series, xlabel="D2 training steps",
                                    ylabel="share of seeds that reached τ",
                                    title=f"{scenario}: Kaplan–Meier, steps to threshold"))
    html, markdown = table(rows, ["initializer", "reached τ", "median steps [95% CI]",
                                  "log-rank p (Holm)"])
    head = f"{scenario}: steps to threshold"
    return (f"<h3>{head}</h3>\n<figure>{svg}</figure>\n{html}", f"### {head}\n\n{markdown}")


