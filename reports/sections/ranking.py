"""Ranking: Friedman test, Nemenyi post-hoc and a critical-difference diagram per metric."""

from __future__ import annotations

from reports.figures import critical_difference, figure_to_svg
from reports.sections import ReportContext, Section
from reports.sections._common import label, number

RANKING_METRICS = ("test/accuracy", "test/loss", "test/accuracy_auc")
"""Metrics drawn in the report; stats.json contains the ranking of every metric."""


def render(ctx: ReportContext) -> Section | None:
    analysis = ctx.analysis
    drawn = [m for m in RANKING_METRICS if m in analysis.ranking]
    if not drawn:
        if analysis.ranking_note:
            text = f"Not testable: {analysis.ranking_note}"
            return Section("ranking", "Ranking", f"<p class='note'>{text}</p>", text)
        return None

    blocks = getattr(analysis, "ranking_blocks", "scenarios")
    if blocks == "seeds":
        intro = ("One scenario only, so the blocks of the Friedman test are its seeds, which "
                 "share teacher, data order and noise across initializers: the ranks say how "
                 "consistently one initializer beats another seed by seed, not across "
                 "scenarios.")
    else:
        intro = "Blocks are scenarios: each initializer's mean over seeds is ranked per scenario."
    html_parts, markdown_parts = [f"<p class='note'>{intro}</p>"], [intro]
    for metric in drawn:
        result = analysis.ranking[metric]
        head = label(metric)
        if result.not_testable:
            html_parts.append(f"<h3>{head}</h3><p class='note'>Not testable: "
                              f"{result.not_testable}</p>")
            markdown_parts.append(f"### {head}\n\nNot testable: {result.not_testable}")
            continue
        svg = figure_to_svg(critical_difference(result.average_ranks, result.cd,
                                                [list(c) for c in result.cliques],
                                                title=f"{head}: average rank (1 = best)"))
        text = (f"Friedman χ² = {number(result.statistic)}, p = {number(result.p_value)} over "
                f"{result.n_blocks} {blocks} and {result.n_initializers} initializers; "
                f"Nemenyi critical difference {number(result.cd)} at α = {result.alpha}; "
                f"bars join initializers whose average ranks differ by less.")
        html_parts.append(f"<h3>{head}</h3>\n<p>{text}</p>\n<figure>{svg}</figure>")
        markdown_parts.append(f"### {head}\n\n{text}")
    return Section("ranking", "Ranking", "\n".join(html_parts), "\n\n".join(markdown_parts))
