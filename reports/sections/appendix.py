"""Appendix: the whole learning-rate grid, mean validation accuracy per initializer and rate."""

from __future__ import annotations

from reports.sections import ReportContext, Section
from reports.sections._common import table


def render(ctx: ReportContext) -> Section | None:
    if ctx.results is None:
        return None
    metrics = ctx.results.metrics
    rows_all = metrics[metrics.metric == "val/accuracy"]
    grid = rows_all.groupby(["scenario", "initializer", "learning_rate"]).value.mean().unstack()
    chosen = {(r.scenario, r.initializer): r.learning_rate
              for r in ctx.results.selected.itertuples()}
    rows = []
    for (scenario, name), values in grid.iterrows():
        cells = []
        for lr, value in values.items():
            text = "n/a" if value != value else f"{value:.3f}"
            cells.append(f"**{text}**" if chosen.get((scenario, name)) == lr else text)
        rows.append([scenario, name, *cells])
    html, markdown = table(rows, ["scenario", "initializer",
                                  *[f"lr={lr:g}" for lr in grid.columns]])
    html = html.replace("**", "")
    note = ("<p class='note'>Mean final validation accuracy of every initializer at every "
            "learning rate of the grid (diverged seeds count as 0); each initializer is "
            "reported at its best rate (bold in summary.md). Test data is never used to "
            "choose.</p>")
    return Section("appendix", "Appendix: learning-rate grid", note + html, markdown)
