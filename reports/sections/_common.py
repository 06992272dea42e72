"""Lookups into an Analysis and number formatting shared by the report sections."""

from __future__ import annotations

import math

from tabulate import tabulate

LABELS = {
    "test/accuracy": "test accuracy",
    "test/loss": "test loss",
    "test/accuracy_auc": "area under test-accuracy curve",
    "val/accuracy": "validation accuracy",
    "convergence/steps_to_threshold": "steps to threshold",
    "train/loss@10%": "train loss at 10% of budget",
    "train/loss@25%": "train loss at 25% of budget",
    "train/loss": "final train loss",
    "init/d1_accuracy": "D1 accuracy at init",
    "init/teacher_agreement": "agreement with teacher at init",
    "init/teacher_logit_max_abs_diff": "max |logit − teacher logit| at init",
    "init/dead_unit_fraction": "dead-unit fraction at init",
    "init/inactive_unit_fraction": "inactive-unit fraction at init",
    "init/d2_loss": "D2 test loss at step 0",
    "init/d2_accuracy": "D2 test accuracy at step 0",
}


def label(metric: str) -> str:
    """Return the report label of a metric (its name when it has none)."""
    return LABELS.get(metric, metric)


def summary(analysis, scenario: str, metric: str, initializer: str):
    for item in analysis.summaries:
        if (item.scenario, item.metric, item.initializer) == (scenario, metric, initializer):
            return item
    return None


def comparison(analysis, scenario: str, metric: str, initializer: str):
    for item in analysis.comparisons:
        if (item.scenario, item.metric, item.initializer) == (scenario, metric, initializer):
            return item
    return None


def find_test(tests, name_prefix: str):
    """Return the adjusted test whose name starts with `name_prefix`, or None."""
    for test in tests:
        if test.result.test.lower().startswith(name_prefix):
            return test
    return None


def number(value, digits: int = 4) -> str:
    """Format a number with `digits` significant digits, or "n/a" for None or non-finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def estimate_text(estimate, digits: int = 4) -> str:
    """Format "value [low, high]", "value (no CI)" or "not testable".

    stats.json gives the reason for every missing interval (e.g. all values equal).
    """
    if estimate is None:
        return "n/a"
    if estimate.value is None:
        return "not testable"
    if estimate.low is None or estimate.high is None:
        return f"{number(estimate.value, digits)} (no CI)"
    return (f"{number(estimate.value, digits)} [{number(estimate.low, digits)}, "
            f"{number(estimate.high, digits)}]")


def p_text(test, alpha: float = 0.05) -> str:
    """Format an adjusted p-value with a * when it is below alpha, or the not-testable reason."""
    if test is None:
        return "–"
    if test.p_adjusted is None:
        return "not testable"
    star = "*" if test.p_adjusted < alpha else ""
    return f"{test.p_adjusted:.3g}{star}"


def mean_rows(ctx, scenario: str, names: list[str], metrics: list[str]) -> list[list[str]]:
    """Return one row per initializer: its name, then "mean [95% CI]" of each metric."""
    rows = []
    for name in names:
        row = [name]
        for metric in metrics:
            arm = summary(ctx.analysis, scenario, metric, name)
            row.append(estimate_text(arm.mean if arm else None))
        rows.append(row)
    return rows


def table(rows: list[list], headers: list[str]) -> tuple[str, str]:
    """Render rows as (HTML, Markdown) tables with tabulate."""
    html = tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True)
    markdown = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return html, markdown


def scenarios(tidy) -> list[str]:
    return sorted(tidy.scenario.unique())


def initializers(tidy, scenario: str, reference: str) -> list[str]:
    """Return the scenario's initializers, the reference first, then alphabetical."""
    names = sorted(tidy[tidy.scenario == scenario].initializer.unique())
    return ([reference] if reference in names else []) + [n for n in names if n != reference]
