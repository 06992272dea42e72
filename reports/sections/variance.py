"""Variance across seeds: spread tests, SD ratios, divergence rates and the A/A check."""

from __future__ import annotations

from reports.sections import ReportContext, Section
from reports.sections._common import (comparison, estimate_text, find_test, initializers, label,
                                      number, p_text, scenarios, summary, table)

VARIANCE_METRICS = ("test/accuracy", "test/loss")


def render(ctx: ReportContext) -> Section | None:
    html_parts, markdown_parts = [], []
    for scenario in scenarios(ctx.tidy):
        names = initializers(ctx.tidy, scenario, ctx.reference)
        for metric in VARIANCE_METRICS:
            rows = [_row(ctx, scenario, metric, name) for name in names]
            html, markdown = table(rows, ["initializer", "std", "SD ratio to reference [95% CI]",
                                          "Brown–Forsythe p (Holm)", "Fligner–Killeen p (Holm)"])
            head = f"{scenario}: spread of {label(metric)}"
            html_parts.append(f"<h3>{head}</h3>\n{html}")
            markdown_parts.append(f"### {head}\n\n{markdown}")

    failures = _failure_table(ctx)
    if failures:
        html_parts.append("<h3>Diverged seeds</h3>\n" + failures[0])
        markdown_parts.append("### Diverged seeds\n\n" + failures[1])
    aa = _aa_table(ctx)
    if aa:
        html_parts.append("<h3>A/A check</h3>\n" + aa[0])
        markdown_parts.append("### A/A check\n\n" + aa[1])

    note = ("<p class='note'>Diverged seeds are counted as failures (Wilson 95% CI) and left "
            "out of every other statistic, never silently dropped. The A/A check splits the "
            "reference arm's seeds in two random halves many times and tests them against "
            "each other: its rejection rate estimates the false-positive rate of the tests at "
            "this number of seeds.</p>")
    return Section("variance", "Variance across seeds", note + "\n".join(html_parts),
                   "\n\n".join(markdown_parts))


def _row(ctx, scenario, metric, name):
    arm = summary(ctx.analysis, scenario, metric, name)
    std = number(arm.std) if arm else "n/a"
    if name == ctx.reference:
        return [name, std, "reference", "–", "–"]
    versus = comparison(ctx.analysis, scenario, metric, name)
    if versus is None:
        return [name, std, "n/a", "n/a", "n/a"]
    return [name, std, estimate_text(versus.sd_ratio),
            p_text(find_test(versus.variance_tests, "brown")),
            p_text(find_test(versus.variance_tests, "fligner"))]


def _failure_table(ctx):
    rows = []
    for item in ctx.analysis.failure_rates:
        rate = item.get("rate") or {}
        rows.append([item.get("scenario", ""), item.get("initializer", ""),
                     f"{item.get('n_diverged', '?')}/{item.get('n_seeds', '?')}",
                     estimate_text(_EstimateView(rate))])
    if not rows:
        return None
    return table(rows, ["scenario", "initializer", "diverged", "rate [95% Wilson CI]"])


def _aa_table(ctx):
    rows = []
    for item in ctx.analysis.aa_checks:
        if item.get("metric") not in VARIANCE_METRICS:
            continue
        rates = item.get("false_positive_rate") or {}
        if item.get("not_testable"):
            text = f"not testable: {item['not_testable']}"
        else:
            text = ", ".join(f"{test}: {number(rate)}" for test, rate in rates.items())
        rows.append([item.get("scenario", ""), label(item.get("metric", "")),
                     item.get("initializer", ctx.reference), item.get("n_splits", ""), text])
    if not rows:
        return None
    return table(rows, ["scenario", "metric", "arm", "splits", "false-positive rate at α = 0.05"])


class _EstimateView:
    """Attribute access to an Estimate stored as a dict, for `estimate_text`."""

    def __init__(self, data: dict):
        self.value, self.low, self.high = data.get("value"), data.get("low"), data.get("high")
