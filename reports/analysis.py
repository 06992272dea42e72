"""The `analyze` entry point: every statistic of a tidy results table, ready for stats.json.

Input: one row per (scenario, initializer, seed, metric) with a float `value`; extra columns
are ignored. Output: an `Analysis` whose `to_dict()` is JSON-serializable and contains no
NaN or infinity (a missing number is null next to a reason). docs/statistics.md documents
the conventions and the schema.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from reports import stats
from reports.core import TestResult
from reports.methods import AnalysisOptions
from reports.records import (
    STEPS_METRIC,
    AdjustedTest,
    Analysis,
    ArmSummary,
    Comparison,
    SurvivalSummary,
)
from reports.validation import closest, load_results_csv, validate_results

__all__ = [
    "Analysis",
    "AnalysisWarning",
    "analyze",
    "is_higher_better",
    "load_results_csv",
    "validate_results",
]

REACHED_METRIC = "convergence/reached_threshold"
DIVERGED_METRIC = "status/diverged"
NOT_COMPARED = frozenset({STEPS_METRIC, REACHED_METRIC, DIVERGED_METRIC})
HIGHER_IS_BETTER_WORDS = ("accuracy", "auc", "agreement")
FEW_SEEDS = 5


class AnalysisWarning(UserWarning):
    """Recoverable trouble in the input of `analyze` (few seeds, unused overrides)."""


def is_higher_better(metric: str, overrides: Mapping[str, bool] | None = None) -> bool:
    """Return the direction of `metric`: an override, else True when its name contains
    "accuracy", "auc" or "agreement" (case-insensitive), else False (lower is better)."""
    if overrides and metric in overrides:
        return bool(overrides[metric])
    name = metric.lower()
    return any(word in name for word in HIGHER_IS_BETTER_WORDS)


# The entry point


def analyze(
    results: pd.DataFrame,
    *,
    reference: str = "uniform",
    paired: bool | None = None,
    correction: str = "holm",
    higher_is_better: Mapping[str, bool] | None = None,
    equivalence_margins: Mapping[str, float] | None = None,
    random_state: int = 0,
    n_resamples: int = 9999,
    confidence: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
    n_aa_splits: int = 200,
) -> Analysis:
    """Compute every statistic of the benchmark's report from a tidy results table.

    Per scenario and metric: summaries of every arm; each other initializer against
    `reference` (tests with `correction` within each family, effect sizes, variance, power,
    TOST where a margin is given); Kaplan-Meier curves and log-rank tests when
    `convergence/steps_to_threshold` and `convergence/reached_threshold` exist; failure
    rates from `status/diverged`; an A/A check of the reference arm. Across scenarios: a
    Friedman/Nemenyi ranking per metric when at least 2 scenarios and 3 initializers have
    finite means for it. Seeds are assumed independent.

    Args:
        results: tidy table with columns scenario, initializer, seed, metric, value.
        reference: initializer every other arm is compared against.
        paired: True or False forces the design; None pairs an arm with the reference when
            both have the same set of seeds for the metric.
        correction: "holm" or "fdr_bh".
        higher_is_better: metric -> direction overrides of the name rule.
        equivalence_margins: metric -> TOST margin in metric units.
        random_state: seed of every bootstrap and A/A split.
        n_resamples: bootstrap resamples per BCa interval.
        confidence: level of every interval.
        alpha, power: settings of the power analysis, A/A check and CD diagram.
        n_aa_splits: random half splits in the A/A check.

    Returns:
        The Analysis; its `to_dict()` is the stats.json content.
    """
    table = validate_results(results)
    options = _resolve_options(
        table,
        reference,
        paired,
        correction,
        higher_is_better,
        equivalence_margins,
        random_state,
        n_resamples,
        confidence,
        alpha,
        power,
        n_aa_splits,
    )
    overrides = dict(higher_is_better or {})
    analysis = Analysis(options)
    analysis.warnings.extend(_input_warnings(table, overrides, options))

    for (scenario, metric), group in table.groupby(["scenario", "metric"], sort=True):
        arms = _arms(group)
        direction = is_higher_better(str(metric), overrides)
        analysis.summaries.extend(_summaries(str(scenario), str(metric), arms, direction, options))
        if metric in NOT_COMPARED or options.reference not in arms:
            continue
        analysis.comparisons.extend(
            _comparisons(str(scenario), str(metric), arms, direction, options)
        )
        analysis.aa_checks.append(_aa_check(str(scenario), str(metric), arms, options))

    analysis.families.extend(_adjust_families(analysis.comparisons, options))
    _add_survival(analysis, table)
    _add_ranking(analysis, table, overrides)
    _add_failure_rates(analysis, table)
    return analysis


def _resolve_options(
    table: pd.DataFrame,
    reference: str,
    paired: bool | None,
    correction: str,
    higher_is_better: Mapping[str, bool] | None,
    equivalence_margins: Mapping[str, float] | None,
    random_state: int,
    n_resamples: int,
    confidence: float,
    alpha: float,
    power: float,
    n_aa_splits: int,
) -> AnalysisOptions:
    initializers = sorted(table["initializer"].unique())
    if reference not in initializers:
        raise ValueError(
            f"`reference` {reference!r} is not an initializer in `results` (available: "
            f"{initializers}).{closest(reference, initializers)} Pass one of the available names."
        )
    if correction not in stats.CORRECTIONS:
        raise ValueError(
            f"`correction` must be one of {list(stats.CORRECTIONS)}, got {correction!r}; "
            "use 'holm' (family-wise error rate) or 'fdr_bh' (false discovery rate)."
        )
    if paired not in (None, True, False):
        raise ValueError(f"`paired` must be True, False or None (automatic), got {paired!r}.")

    margins = dict(equivalence_margins or {})
    for metric, margin in margins.items():
        if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
            raise ValueError(
                f"`equivalence_margins[{metric!r}]` must be a positive number in metric units, "
                f"got {margin!r}; e.g. 0.01 for one accuracy point."
            )
    for name, value in (("confidence", confidence), ("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"`{name}` must be strictly between 0 and 1, got {value!r}.")
    if higher_is_better is not None and not isinstance(higher_is_better, Mapping):
        raise ValueError(
            f"`higher_is_better` must map metric names to True/False, got "
            f"{type(higher_is_better).__name__}; e.g. {{'test/loss': False}}."
        )

    return AnalysisOptions(
        reference=reference,
        paired=paired,
        correction=correction,
        confidence=confidence,
        n_resamples=int(n_resamples),
        alpha=alpha,
        power=power,
        n_aa_splits=int(n_aa_splits),
        random_state=int(random_state),
        equivalence_margins=margins,
    )


def _input_warnings(
    table: pd.DataFrame, overrides: Mapping[str, bool], options: AnalysisOptions
) -> list[str]:
    """Warn (stacklevel 3, at the caller of analyze) about recoverable input trouble."""
    messages = []
    metrics = sorted(table["metric"].unique())
    for name, mapping in (
        ("higher_is_better", overrides),
        ("equivalence_margins", options.equivalence_margins),
    ):
        for metric in mapping:
            if metric not in metrics:
                messages.append(
                    f"`{name}` names the metric {metric!r}, which is not in `results`, so it is "
                    f"unused.{closest(metric, metrics)}"
                )

    seeds = table.groupby(["scenario", "initializer"])["seed"].nunique()
    few = seeds[seeds < FEW_SEEDS]
    if not few.empty:
        arms = ", ".join(
            f"{scenario}/{initializer} ({count})" for (scenario, initializer), count in few.items()
        )
        messages.append(
            f"fewer than {FEW_SEEDS} seeds in {arms}: tests have little power and rank-test "
            "p-values cannot reach 0.05 with so few seeds; run more seeds."
        )

    for message in messages:
        warnings.warn(message, AnalysisWarning, stacklevel=3)
    return messages


def _arms(group: pd.DataFrame) -> dict[str, pd.Series]:
    """Map initializer -> values indexed by seed, sorted by seed."""
    return {
        str(initializer): part.set_index("seed")["value"].sort_index()
        for initializer, part in group.groupby("initializer", sort=True)
    }


def _summaries(
    scenario: str,
    metric: str,
    arms: dict[str, pd.Series],
    direction: bool,
    options: AnalysisOptions,
) -> list[ArmSummary]:
    summaries = []
    for initializer, values in arms.items():
        finite = values[np.isfinite(values)].to_numpy()
        estimates = stats.bootstrap_cis(
            finite,
            confidence=options.confidence,
            n_resamples=options.n_resamples,
            random_state=options.random_state,
        )
        std, std_note = (
            (float(np.std(finite, ddof=1)), None)
            if finite.size >= 2
            else (None, f"only {finite.size} finite value(s); the SD needs at least 2")
        )
        summaries.append(
            ArmSummary(
                scenario,
                metric,
                initializer,
                direction,
                int(finite.size),
                int(values.size - finite.size),
                estimates["mean"],
                estimates["median"],
                estimates["iqm"],
                std,
                std_note,
            )
        )
    return summaries


def _family(scenario: str, metric: str, test: str, reference: str) -> str:
    return f"scenario={scenario}, metric={metric}, test={test}, vs {reference}"


def _comparisons(
    scenario: str,
    metric: str,
    arms: dict[str, pd.Series],
    direction: bool,
    options: AnalysisOptions,
) -> list[Comparison]:
    reference = arms[options.reference]
    comparisons = []
    for initializer, values in arms.items():
        if initializer == options.reference:
            continue
        is_paired = options.paired
        if is_paired is None:
            is_paired = set(values.index) == set(reference.index)
        comparisons.append(
            _compare(
                scenario, metric, initializer, values, reference, is_paired, direction, options
            )
        )
    return comparisons


def _compare(
    scenario: str,
    metric: str,
    initializer: str,
    values: pd.Series,
    reference: pd.Series,
    paired: bool,
    direction: bool,
    options: AnalysisOptions,
) -> Comparison:
    unmatched = 0
    if paired:
        common = values.index.intersection(reference.index)
        unmatched = len(values.index.union(reference.index)) - len(common)
        x, y = values.loc[common].to_numpy(), reference.loc[common].to_numpy()
    else:
        x, y = values.to_numpy(), reference.to_numpy()
    bootstrap = {
        "confidence": options.confidence,
        "n_resamples": options.n_resamples,
        "random_state": options.random_state,
    }

    tests = stats.paired_tests(x, y) if paired else stats.unpaired_tests(x, y)
    if unmatched:
        tests = [_with_unmatched(test, unmatched) for test in tests]
    margin = options.equivalence_margins.get(metric)
    equivalence = None
    if margin is not None:
        equivalence = _pending(
            stats.tost(x, y, margin=margin, paired=paired), scenario, metric, options
        )

    return Comparison(
        scenario,
        metric,
        initializer,
        options.reference,
        paired,
        direction,
        tests=[_pending(test, scenario, metric, options) for test in tests],
        effect_sizes=stats.effect_sizes(
            x, y, paired=paired, higher_is_better=direction, **bootstrap
        ),
        variance_tests=[
            _pending(test, scenario, metric, options) for test in stats.variance_tests(x, y)
        ],
        sd_ratio=stats.sd_ratio_ci(x, y, paired=paired, **bootstrap),
        power=stats.power_analysis(x, y, paired=paired, alpha=options.alpha, power=options.power),
        equivalence=equivalence,
    )


def _with_unmatched(test: TestResult, unmatched: int) -> TestResult:
    """Count seeds that lack a partner in the other arm as dropped (forced pairing only)."""
    return TestResult(
        test.test,
        test.statistic,
        test.p_value,
        test.n,
        test.convention,
        test.not_testable,
        test.n_dropped + unmatched,
    )


def _pending(
    test: TestResult, scenario: str, metric: str, options: AnalysisOptions
) -> AdjustedTest:
    """Wrap a test before adjustment; `_adjust_families` fills in p_adjusted and the count."""
    return AdjustedTest(test, None, _family(scenario, metric, test.test, options.reference))


def _adjust_families(
    comparisons: list[Comparison], options: AnalysisOptions
) -> list[dict[str, Any]]:
    """Adjust p-values within each (scenario, metric, test) family, in place."""
    members: dict[str, list[tuple[Comparison, str, int]]] = {}
    for comparison in comparisons:
        slots = [("tests", i) for i in range(len(comparison.tests))]
        slots += [("variance_tests", i) for i in range(len(comparison.variance_tests))]
        if comparison.equivalence is not None:
            slots.append(("equivalence", -1))
        for attribute, index in slots:
            test = _get_slot(comparison, attribute, index)
            members.setdefault(test.family, []).append((comparison, attribute, index))

    families = []
    for family, slots in members.items():
        tests = [_get_slot(c, attribute, index) for c, attribute, index in slots]
        adjusted = stats.adjust([test.result.p_value for test in tests], options.correction)
        count = sum(p is not None for p in adjusted)
        label = f"{family}: {count} comparisons"
        for (comparison, attribute, index), test, p in zip(slots, tests, adjusted):
            _set_slot(comparison, attribute, index, AdjustedTest(test.result, p, label))
        families.append(
            {
                "family": label,
                "correction": options.correction,
                "n_comparisons": count,
                "n_not_testable": len(tests) - count,
            }
        )
    return families


def _get_slot(comparison: Comparison, attribute: str, index: int) -> AdjustedTest:
    value = getattr(comparison, attribute)
    return value if index < 0 else value[index]


def _set_slot(comparison: Comparison, attribute: str, index: int, test: AdjustedTest) -> None:
    if index < 0:
        setattr(comparison, attribute, test)
    else:
        getattr(comparison, attribute)[index] = test


def _aa_check(
    scenario: str, metric: str, arms: dict[str, pd.Series], options: AnalysisOptions
) -> dict[str, Any]:
    check = stats.aa_check(
        arms[options.reference].to_numpy(),
        n_splits=options.n_aa_splits,
        alpha=options.alpha,
        random_state=options.random_state,
    )
    return {"scenario": scenario, "metric": metric, "initializer": options.reference, **check}


def _add_survival(analysis: Analysis, table: pd.DataFrame) -> None:
    metrics = set(table["metric"].unique())
    if not {STEPS_METRIC, REACHED_METRIC} <= metrics:
        analysis.survival_note = (
            f"survival analysis needs both {STEPS_METRIC!r} and {REACHED_METRIC!r} in `results`"
        )
        return

    reference = analysis.options.reference
    survival_rows = table[table["metric"].isin([STEPS_METRIC, REACHED_METRIC])]
    for scenario, group in survival_rows.groupby("scenario", sort=True):
        wide = group.pivot_table(
            index=["initializer", "seed"],
            columns="metric",
            values="value",
            aggfunc="first",
            dropna=False,
        )
        wide = wide.reindex(columns=[STEPS_METRIC, REACHED_METRIC])
        curves, data = {}, {}
        for initializer, part in wide.groupby(level="initializer", sort=True):
            steps, reached = part[STEPS_METRIC].to_numpy(), part[REACHED_METRIC].to_numpy()
            data[str(initializer)] = (steps, reached)
            curves[str(initializer)] = stats.kaplan_meier(
                steps, reached, analysis.options.confidence
            )

        tests = {}
        if reference in data:
            for initializer, (steps, reached) in data.items():
                if initializer != reference:
                    tests[initializer] = stats.logrank(steps, reached, *data[reference])
        family = _family(str(scenario), STEPS_METRIC, "log-rank", reference)
        adjusted = stats.adjust(
            [test.p_value for test in tests.values()], analysis.options.correction
        )
        label = f"{family}: {sum(p is not None for p in adjusted)} comparisons"
        logrank = {
            name: AdjustedTest(test, p, label) for (name, test), p in zip(tests.items(), adjusted)
        }
        analysis.survival.append(SurvivalSummary(str(scenario), curves, logrank))
        analysis.families.append(
            {
                "family": label,
                "correction": analysis.options.correction,
                "n_comparisons": sum(p is not None for p in adjusted),
                "n_not_testable": sum(p is None for p in adjusted),
            }
        )


def _add_ranking(analysis: Analysis, table: pd.DataFrame, overrides: Mapping[str, bool]) -> None:
    """Rank the initializers per metric with Friedman/Nemenyi.

    Blocks are scenarios (each initializer's mean per scenario) when there are at least 2.
    With a single scenario the blocks are its seeds, which are paired across initializers
    (same teacher, data order and noise), so the ranking still has a meaning there: how
    consistently one initializer beats another seed by seed. `ranking_blocks` records which.
    """
    scenarios = table["scenario"].nunique()
    compared = table[~table["metric"].isin(NOT_COMPARED) & np.isfinite(table["value"])]
    if scenarios >= 2:
        analysis.ranking_blocks = "scenarios"
        index = "scenario"
    else:
        analysis.ranking_blocks = "seeds"
        index = "seed"

    for metric, group in compared.groupby("metric", sort=True):
        means = group.pivot_table(index=index, columns="initializer", values="value",
                                  aggfunc="mean")
        analysis.ranking[str(metric)] = stats.friedman_nemenyi(
            means, is_higher_better(str(metric), overrides), alpha=analysis.options.alpha
        )


def _add_failure_rates(analysis: Analysis, table: pd.DataFrame) -> None:
    diverged = table[table["metric"] == DIVERGED_METRIC]
    if diverged.empty:
        analysis.failure_rate_note = f"no {DIVERGED_METRIC!r} metric in `results`"
        return

    for (scenario, initializer), group in diverged.groupby(["scenario", "initializer"], sort=True):
        flags = group["value"].to_numpy()
        flags = flags[np.isfinite(flags)]
        n_failed = int(np.count_nonzero(flags >= 0.5))
        estimate = stats.failure_rate(n_failed, int(flags.size), analysis.options.confidence)
        analysis.failure_rates.append(
            {
                "scenario": str(scenario),
                "initializer": str(initializer),
                "n_diverged": n_failed,
                "n_seeds": int(flags.size),
                "rate": estimate.to_dict(),
            }
        )
