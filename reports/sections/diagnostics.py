"""Diagnostics at initialization: is the teacher's function kept, are units dead?"""

from __future__ import annotations

from reports.sections import ReportContext, Section
from reports.sections._common import initializers, label, mean_rows, scenarios, table

DIAGNOSTIC_METRICS = ("init/d1_accuracy", "init/teacher_agreement",
                      "init/teacher_logit_max_abs_diff", "init/dead_unit_fraction",
                      "init/inactive_unit_fraction",
                      "init/d2_loss", "init/d2_accuracy")


def render(ctx: ReportContext) -> Section | None:
    present = [m for m in DIAGNOSTIC_METRICS if m in set(ctx.tidy.metric)]
    if not present:
        return None
    html_parts, markdown_parts = [], []
    for scenario in scenarios(ctx.tidy):
        rows = mean_rows(ctx, scenario, initializers(ctx.tidy, scenario, ctx.reference), present)
        html, markdown = table(rows, ["initializer"] + [label(m) for m in present])
        html_parts.append(f"<h3>{scenario}</h3>\n{html}")
        markdown_parts.append(f"### {scenario}\n\n{markdown}")

    note = ("<p class='note'>Mean over seeds [95% CI], measured on the initialized student "
            "before D2 training. D1 metrics use D1's test split. A hidden unit is inactive when "
            "neither its incoming weights, its bias nor its outgoing weights get a nonzero "
            "gradient on a D2 training batch, and dead when it is inactive with zero incoming "
            "weights and bias, so that no training step can ever move it. A function-preserving "
            "copy shows agreement 1 and a logit difference near 0.</p>")
    return Section("diagnostics", "Diagnostics at initialization", note + "\n".join(html_parts),
                   "\n\n".join(markdown_parts))
