"""Headline table: per scenario, the main metrics of every initializer against the reference."""

from __future__ import annotations

from reports.sections import ReportContext, Section
from reports.sections._common import (comparison, estimate_text, find_test, initializers, label,
                                      number, p_text, scenarios, summary, table)

HEADLINE_METRICS = ("test/accuracy", "test/loss", "test/accuracy_auc")


def render(ctx: ReportContext) -> Section | None:
    html_parts, markdown_parts = [], []
    for scenario in scenarios(ctx.tidy):
        rows = [_row(ctx, scenario, name) for name in initializers(ctx.tidy, scenario,
                                                                   ctx.reference)]
        headers = ["initializer", "lr"]
        for metric in HEADLINE_METRICS:
            headers += [f"{label(metric)}: mean [95% CI]", "std", "p (Wilcoxon, Holm)"]
        html, markdown = table(rows, headers)
        html_parts.append(f"<h3>{scenario}</h3>\n{html}")
        markdown_parts.append(f"### {scenario}\n\n{markdown}")

    note = (f"<p class='note'>Mean over seeds with a 95% BCa bootstrap CI, standard deviation "
            f"across seeds, and the paired Wilcoxon signed-rank p-value against "
            f"<code>{ctx.reference}</code> after Holm correction within each scenario × metric "
            f"family; * marks p &lt; 0.05. Each initializer is reported at its best validation "
            f"learning rate (lr).</p>")
    return Section("headline", "Headline results", note + "\n".join(html_parts),
                   "\n\n".join(markdown_parts))


def _row(ctx: ReportContext, scenario: str, name: str) -> list[str]:
    lr = ""
    if ctx.results is not None:
        chosen = ctx.results.selected
        match = chosen[(chosen.scenario == scenario) & (chosen.initializer == name)]
        lr = f"{match.learning_rate.iloc[0]:g}" if len(match) else ""
    elif "learning_rate" in ctx.tidy.columns:
        rates = ctx.tidy[(ctx.tidy.scenario == scenario)
                         & (ctx.tidy.initializer == name)].learning_rate.dropna().unique()
        lr = ", ".join(f"{rate:g}" for rate in sorted(rates))
    row = [name, lr]
    for metric in HEADLINE_METRICS:
        arm = summary(ctx.analysis, scenario, metric, name)
        row.append(estimate_text(arm.mean if arm else None))
        row.append(number(arm.std) if arm else "n/a")
        versus = comparison(ctx.analysis, scenario, metric, name)
        row.append("reference" if name == ctx.reference else
                   p_text(find_test(versus.tests, "wilcoxon") if versus else None))
    return row
