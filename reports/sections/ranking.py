"""Ranking across scenarios: Friedman test, Nemenyi post-hoc, critical-difference diagram."""

from __future__ import annotations

from reports.figures import critical_difference, figure_to_svg
from reports.sections import ReportContext, Section
from reports.sections._common import label, number


def render(ctx: ReportContext) -> Section | None:
    if not ctx.analysis.ranking:
        if ctx.analysis.ranking_note:
            text = f"<p class='note'>Not testable: {ctx.analysis.ranking_note}</p>"
            return Section("ranking", "Ranking across scenarios", text,
                           f"Not testable: {ctx.analysis.ranking_note}")
        return None

    html_parts, markdown_parts = [], []
    for metric, result in ctx.analysis.ranking.items():
        head = f"{label(metric)}"
        if result.not_testable:
            html_parts.append(f"<h3>{head}</h3><p class='note'>Not testable: "
                              f"{result.not_testable}</p>")
            markdown_parts.append(f"### {head}\n\nNot testable: {result.not_testable}")
            continue
        svg = figure_to_svg(critical_difference(result.average_ranks, result.cd,
                                                [list(c) for c in result.cliques],
                                                title=f"{head}: average rank (1 = best)"))
        text = (f"Friedman χ² = {number(result.statistic)}, p = {number(result.p_value)} over "
                f"{result.n_blocks} scenarios and {result.n_initializers} initializers; "
                f"Nemenyi critical difference {number(result.cd)} at α = {result.alpha}.")
        html_parts.append(f"<h3>{head}</h3>\n<p>{text}</p>\n<figure>{svg}</figure>")
        markdown_parts.append(f"### {head}\n\n{text}")
    return Section("ranking", "Ranking across scenarios", "\n".join(html_parts),
                   "\n\n".join(markdown_parts))
