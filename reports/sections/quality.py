"""Final quality: per-seed strip plots and effect sizes against the reference."""

from __future__ import annotations

from reports.figures import figure_to_svg, strip_plot
from reports.sections import ReportContext, Section
from reports.sections._common import (comparison, estimate_text, initializers, label, scenarios,
                                      table)

QUALITY_METRICS = ("test/accuracy", "test/loss")


def render(ctx: ReportContext) -> Section | None:
    html_parts, markdown_parts = [], []
    for scenario in scenarios(ctx.tidy):
        names = initializers(ctx.tidy, scenario, ctx.reference)
        rows_here = ctx.tidy[ctx.tidy.scenario == scenario]
        for metric in QUALITY_METRICS:
            values = {name: rows_here[(rows_here.initializer == name)
                                      & (rows_here.metric == metric)].value.to_numpy(float)
                      for name in names}
            if not any(len(v) for v in values.values()):
                continue
            svg = figure_to_svg(strip_plot(values, ylabel=label(metric),
                                           title=f"{scenario}: {label(metric)} per seed"))
            html, markdown = _effects_table(ctx, scenario, metric, names)
            html_parts.append(f"<h3>{scenario}: {label(metric)}</h3>\n<figure>{svg}</figure>\n{html}")
            markdown_parts.append(f"### {scenario}: {label(metric)}\n\n{markdown}")

    if not html_parts:
        return None
    note = ("<p class='note'>Effect sizes of each initializer against "
            f"<code>{ctx.reference}</code> with 95% BCa bootstrap CIs (pairs resampled): "
            "d_z = mean difference / SD of differences; Cliff's δ and A12 are signed arm − "
            "reference; P(improvement) favours the arm above 0.5 in the metric's direction.</p>")
    return Section("quality", "Final quality", note + "\n".join(html_parts),
                   "\n\n".join(markdown_parts))


def _effects_table(ctx, scenario, metric, names):
    rows = []
    for name in names:
        if name == ctx.reference:
            continue
        versus = comparison(ctx.analysis, scenario, metric, name)
        if versus is None:
            continue
        effects = versus.effect_sizes
        standardized = effects.get("d_z") or effects.get("hedges_g")
        rows.append([name, estimate_text(standardized), estimate_text(effects.get("cliffs_delta")),
                     estimate_text(effects.get("a12")),
                     estimate_text(effects.get("prob_improvement"))])
    headers = ["initializer", "d_z / Hedges' g", "Cliff's δ", "A12", "P(improvement)"]
    return table(rows, headers)
