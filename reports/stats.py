"""Estimators and tests for comparing initializers across random seeds.

Every function takes one value per seed and assumes that seeds are independent draws: the
seeds of one arm are independent of each other, and paired functions assume that seed i of
the arm and seed i of the reference share their randomness (same data order, same teacher).
Non-finite values (NaN, ±inf) are dropped before any computation, pairwise for paired
functions, and the count dropped is reported. Results that cannot be computed carry a reason
string in `not_testable` (or `note` for a missing interval) instead of a NaN.

Bootstrap intervals, effect sizes, survival, ranking, power and equivalence live in
`reports.bootstrap`, `reports.effects`, `reports.survival`, `reports.ranking` and
`reports.power`; they are re-exported here so that callers need only `reports.stats`.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from reports.core import (
    MIN_SAMPLES,
    Estimate,
    TestResult,
    as_pairs,
    as_sample,
    finite_or_none,
    is_constant,
    quiet_numerics,
)
from reports.bootstrap import (
    IQM_DEFINITION,
    bca_bounds,
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_method,
    check_bootstrap_options,
    interval_estimate,
    too_few,
)
from reports.effects import effect_sizes, seed_counts, weighted_mean_var
from reports.methods import AnalysisOptions, methods_text
from reports.power import power_analysis, tost
from reports.ranking import RankingResult, friedman_nemenyi
from reports.survival import KMResult, kaplan_meier, logrank

__all__ = [
    "IQM_DEFINITION",
    "MIN_SAMPLES",
    "AnalysisOptions",
    "Estimate",
    "KMResult",
    "RankingResult",
    "TestResult",
    "aa_check",
    "adjust",
    "bootstrap_ci",
    "bootstrap_cis",
    "effect_sizes",
    "failure_rate",
    "friedman_nemenyi",
    "kaplan_meier",
    "logrank",
    "methods_text",
    "paired_tests",
    "power_analysis",
    "sd_ratio_ci",
    "tost",
    "unpaired_tests",
    "variance_tests",
]

ArrayLike = Sequence[float] | np.ndarray

CORRECTIONS = ("holm", "fdr_bh")

# Location tests


WILCOXON_CONVENTION = (
    "zero_method='wilcox' (zero differences dropped before ranking); average ranks for tied "
    "|d|; statistic V = sum of ranks of positive differences arm - reference (R's V); "
    "two-sided p-value by scipy.stats.wilcoxon method='auto': {method}"
)


def _wilcoxon_method(differences: np.ndarray) -> str:
    """Name the p-value method that scipy.stats.wilcoxon (SciPy 1.17) picks under 'auto'."""
    nonzero = differences[differences != 0]
    has_zeros = nonzero.size < differences.size
    has_ties = np.unique(np.abs(nonzero)).size < nonzero.size
    if differences.size > 50:
        return "normal approximation with tie and continuity correction (n > 50)"
    if not (has_zeros or has_ties):
        return "exact null distribution (n <= 50, no zeros, no ties)"
    if differences.size <= 13:
        return "exact permutation distribution over all sign flips (zeros or ties, n <= 13)"
    return "normal approximation with tie and continuity correction (zeros or ties, n > 13)"


def _wilcoxon(differences: np.ndarray, n_dropped: int) -> TestResult:
    n = differences.size
    method = _wilcoxon_method(differences)
    convention = WILCOXON_CONVENTION.format(method=method)

    def untestable(reason: str) -> TestResult:
        return TestResult("wilcoxon", None, None, n, convention, reason, n_dropped)

    if n < MIN_SAMPLES:
        return untestable(too_few(n, "pairs"))
    nonzero = differences[differences != 0]
    if nonzero.size == 0:
        return untestable(f"all {n} paired differences are zero")

    with quiet_numerics():
        result = scipy.stats.wilcoxon(
            differences, zero_method="wilcox", correction=True, method="auto"
        )
    ranks = scipy.stats.rankdata(np.abs(nonzero))
    v_statistic = float(ranks[nonzero > 0].sum())

    p_value = finite_or_none(result.pvalue)
    if p_value is None:
        return untestable("scipy.stats.wilcoxon returned a non-finite p-value")
    return TestResult("wilcoxon", v_statistic, p_value, n, convention, None, n_dropped)


def _paired_t(differences: np.ndarray, n_dropped: int) -> TestResult:
    n = differences.size
    convention = "Student's t on the paired differences arm - reference, df = n - 1, two-sided"

    def untestable(reason: str) -> TestResult:
        return TestResult("paired-t", None, None, n, convention, reason, n_dropped)

    if n < MIN_SAMPLES:
        return untestable(too_few(n, "pairs"))
    if is_constant(differences):
        return untestable(
            f"all {n} paired differences equal {differences[0]:g} (zero variance), "
            "so the t statistic is undefined"
        )

    with quiet_numerics():
        result = scipy.stats.ttest_1samp(differences, 0.0)
    return _finished("paired-t", result.statistic, result.pvalue, n, convention, n_dropped)


def _finished(
    test: str, statistic: float, p_value: float, n: int, convention: str, n_dropped: int
) -> TestResult:
    """Build a TestResult, marking it not testable when SciPy returned a non-finite number."""
    statistic_value, p = finite_or_none(statistic), finite_or_none(p_value)
    if statistic_value is None or p is None:
        reason = f"{test}: the statistic or p-value is not finite for this input"
        return TestResult(test, None, None, n, convention, reason, n_dropped)
    return TestResult(test, statistic_value, p, n, convention, None, n_dropped)


def paired_tests(x: ArrayLike, y: ArrayLike) -> list[TestResult]:
    """Run the Wilcoxon signed-rank test and the paired t-test on arm minus reference.

    Estimator: the Wilcoxon signed-rank test (Wilcoxon 1945; `scipy.stats.wilcoxon`,
    zero_method='wilcox', continuity correction in the normal approximation) and Student's
    paired t-test. Both are two-sided. Assumes independent seeds, with seed i of `x` and `y`
    sharing their randomness.

    Args:
        x: the arm's values, shape `(num_seeds,)`.
        y: the reference's values for the same seeds in the same order, shape `(num_seeds,)`.

    Returns:
        `[wilcoxon, paired-t]`; pairs with a non-finite value are dropped and counted.
    """
    x_values, y_values, n_dropped = as_pairs(x, y)
    differences = x_values - y_values
    return [_wilcoxon(differences, n_dropped), _paired_t(differences, n_dropped)]


def _mann_whitney_method(x: np.ndarray, y: np.ndarray) -> str:
    """Name the p-value method that scipy.stats.mannwhitneyu (SciPy 1.17) picks under 'auto'."""
    combined = np.concatenate([x, y])
    has_ties = np.unique(combined).size < combined.size
    if min(x.size, y.size) <= 8 and not has_ties:
        return "exact null distribution (one arm has at most 8 values, no ties)"
    return "normal approximation with tie correction and continuity correction"


def _welch(x: np.ndarray, y: np.ndarray, n_dropped: int) -> TestResult:
    n = x.size + y.size
    convention = "Welch's unequal-variance t, Welch-Satterthwaite df, two-sided"
    if min(x.size, y.size) < MIN_SAMPLES:
        reason = too_few(min(x.size, y.size), "values in one arm")
        return TestResult("welch", None, None, n, convention, reason, n_dropped)
    if is_constant(x) and is_constant(y):
        reason = "both arms have zero variance, so the t statistic is undefined"
        return TestResult("welch", None, None, n, convention, reason, n_dropped)

    with quiet_numerics():
        result = scipy.stats.ttest_ind(x, y, equal_var=False)
    return _finished("welch", result.statistic, result.pvalue, n, convention, n_dropped)


def _mann_whitney(x: np.ndarray, y: np.ndarray, n_dropped: int) -> TestResult:
    n = x.size + y.size
    convention = (
        "statistic U of the arm (R's W); two-sided p-value by scipy.stats.mannwhitneyu "
        f"method='auto', use_continuity=True: {_mann_whitney_method(x, y)}"
    )
    if min(x.size, y.size) < MIN_SAMPLES:
        reason = too_few(min(x.size, y.size), "values in one arm")
        return TestResult("mann-whitney", None, None, n, convention, reason, n_dropped)
    if is_constant(np.concatenate([x, y])):
        reason = f"all {n} values are tied, so the ranks carry no information"
        return TestResult("mann-whitney", None, None, n, convention, reason, n_dropped)

    with quiet_numerics():
        result = scipy.stats.mannwhitneyu(x, y, use_continuity=True, method="auto")
    return _finished("mann-whitney", result.statistic, result.pvalue, n, convention, n_dropped)


def unpaired_tests(x: ArrayLike, y: ArrayLike) -> list[TestResult]:
    """Run Welch's t-test and the Mann-Whitney U test of arm against reference.

    Estimator: Welch's t-test (Welch 1947) and the Mann-Whitney U test (Mann & Whitney 1947;
    `scipy.stats.mannwhitneyu` with continuity correction). Both are two-sided. Assumes
    independent seeds within and between arms.

    Args:
        x: the arm's values, shape `(num_seeds_x,)`.
        y: the reference's values, shape `(num_seeds_y,)`.

    Returns:
        `[welch, mann-whitney]`; non-finite values are dropped from each arm and counted.
    """
    x_values, x_dropped = as_sample(x, "x")
    y_values, y_dropped = as_sample(y, "y")
    n_dropped = x_dropped + y_dropped
    return [
        _welch(x_values, y_values, n_dropped),
        _mann_whitney(x_values, y_values, n_dropped),
    ]


def adjust(p_values: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Adjust a family of p-values for multiple comparisons.

    Estimator: Holm's step-down procedure (Holm 1979), controlling the family-wise error rate,
    or the Benjamini-Hochberg procedure (1995), controlling the false discovery rate, both by
    `statsmodels.stats.multitest.multipletests`. The family is the list passed in.

    Args:
        p_values: p-values, shape `(num_comparisons,)`; None or NaN marks a test that was not
            run and is left out of the family.
        method: "holm" or "fdr_bh".

    Returns:
        Adjusted p-values in the input order, None where the input was None or NaN.
    """
    if method not in CORRECTIONS:
        raise ValueError(
            f"`method` must be one of {list(CORRECTIONS)}, got {method!r}; "
            "use 'holm' (family-wise error rate) or 'fdr_bh' (false discovery rate)."
        )

    present = [i for i, p in enumerate(p_values) if finite_or_none(p) is not None]
    for i in present:
        if not 0.0 <= float(p_values[i]) <= 1.0:
            raise ValueError(
                f"`p_values[{i}]` must lie in [0, 1], got {p_values[i]!r}; pass p-values, "
                "not test statistics."
            )

    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    # statsmodels 0.15 runs gc.collect() inside every Holm call, which costs ~0.1 s with a
    # large heap; freezing the existing objects makes that collection cheap.
    frozen_here = gc.get_freeze_count() == 0
    if frozen_here:
        gc.freeze()
    try:
        _, corrected, _, _ = multipletests([float(p_values[i]) for i in present], method=method)
    finally:
        if frozen_here:
            gc.unfreeze()
    for i, value in zip(present, corrected):
        adjusted[i] = float(value)
    return adjusted


# Variance


def variance_tests(x: ArrayLike, y: ArrayLike) -> list[TestResult]:
    """Test whether arm and reference differ in spread.

    Estimator: the Brown-Forsythe test (Brown & Forsythe 1974; `scipy.stats.levene` with
    center='median') and the Fligner-Killeen test (Conover, Johnson & Johnson 1981;
    `scipy.stats.fligner` with center='median'). Both assume independent samples, so with
    paired seeds they ignore the pairing.

    Args:
        x: the arm's values, shape `(num_seeds_x,)`.
        y: the reference's values, shape `(num_seeds_y,)`.

    Returns:
        `[brown-forsythe, fligner-killeen]`.
    """
    x_values, x_dropped = as_sample(x, "x")
    y_values, y_dropped = as_sample(y, "y")
    n, n_dropped = x_values.size + y_values.size, x_dropped + y_dropped
    tests = {
        "brown-forsythe": (scipy.stats.levene, "Levene's test on |x - median| (center='median')"),
        "fligner-killeen": (scipy.stats.fligner, "Fligner-Killeen median-centered test"),
    }

    reason = None
    if min(x_values.size, y_values.size) < MIN_SAMPLES:
        reason = too_few(min(x_values.size, y_values.size), "values in one arm")
    elif is_constant(x_values) and is_constant(y_values):
        reason = "both arms have zero variance"

    results = []
    for name, (function, convention) in tests.items():
        if reason is not None:
            results.append(TestResult(name, None, None, n, convention, reason, n_dropped))
            continue
        with quiet_numerics():
            result = function(x_values, y_values, center="median")
        results.append(_finished(name, result.statistic, result.pvalue, n, convention, n_dropped))
    return results


def sd_ratio_ci(
    x: ArrayLike,
    y: ArrayLike,
    confidence: float = 0.95,
    *,
    paired: bool = False,
    n_resamples: int = 9999,
    random_state: int = 0,
) -> Estimate:
    """Estimate the ratio SD(x) / SD(y) with a confidence interval.

    Estimator: the ratio of sample standard deviations (ddof=1). Unpaired: the F interval
    for a ratio of normal variances (as R's var.test), square-rooted; it assumes
    independent normal samples. Paired: a BCa bootstrap over pairs, which keeps the
    correlation between arms that the F interval ignores.

    Args:
        x: the arm's values, shape `(num_seeds,)`.
        y: the reference's values, shape `(num_seeds,)` (same seed order when paired).
        confidence: confidence level.
        paired: use the paired bootstrap instead of the F interval.
        n_resamples, random_state: bootstrap settings (paired only).

    Returns:
        The ratio with its interval, or not testable when SD(y) is 0 or an arm is too small.
    """
    check_bootstrap_options(confidence, n_resamples)
    if paired:
        x_values, y_values, _ = as_pairs(x, y)
        method = bootstrap_method(n_resamples, confidence, paired=True)
    else:
        x_values, _ = as_sample(x, "x")
        y_values, _ = as_sample(y, "y")
        method = (
            "F-distribution interval for a ratio of normal variances, square-rooted, "
            f"{confidence:.0%}"
        )

    smallest = min(x_values.size, y_values.size)
    if smallest < MIN_SAMPLES:
        return Estimate(
            None, None, None, method, not_testable=too_few(smallest, "values in one arm")
        )
    if is_constant(y_values):
        reason = "the reference has zero variance, so the ratio is undefined"
        return Estimate(None, None, None, method, not_testable=reason)

    ratio = float(np.std(x_values, ddof=1) / np.std(y_values, ddof=1))
    if paired:
        return _paired_sd_ratio(
            x_values, y_values, ratio, method, confidence, n_resamples, random_state
        )

    alpha = 1.0 - confidence
    df_x, df_y = x_values.size - 1, y_values.size - 1
    low = ratio / np.sqrt(scipy.stats.f.ppf(1 - alpha / 2, df_x, df_y))
    high = ratio / np.sqrt(scipy.stats.f.ppf(alpha / 2, df_x, df_y))
    return Estimate(ratio, float(low), float(high), method)


def _paired_sd_ratio(
    x: np.ndarray,
    y: np.ndarray,
    ratio: float,
    method: str,
    confidence: float,
    n_resamples: int,
    random_state: int,
) -> Estimate:
    if is_constant(x):
        note = "the arm has zero variance in every resample, so the interval is undefined"
        return Estimate(ratio, None, None, method, note=note)

    def statistic(indices: np.ndarray, axis: int = -1) -> np.ndarray:
        counts = seed_counts(indices, x.size)
        _, var_x = weighted_mean_var(counts, x)
        _, var_y = weighted_mean_var(counts, y)
        return np.sqrt(var_x / var_y)

    lows, highs = bca_bounds(
        (np.arange(x.size),),
        statistic,
        paired=False,
        confidence=confidence,
        n_resamples=n_resamples,
        random_state=random_state,
    )
    return interval_estimate(ratio, lows[0], highs[0], method)


# Honesty checks


def failure_rate(n_failed: int, n_total: int, confidence: float = 0.95) -> Estimate:
    """Estimate the share of diverged seeds with a Wilson score interval.

    Estimator: n_failed / n_total with the Wilson (1927) interval
    (`statsmodels.stats.proportion.proportion_confint`, method='wilson'). Assumes
    independent seeds.

    Args:
        n_failed: seeds that diverged.
        n_total: seeds run.
        confidence: confidence level.

    Returns:
        The failure rate in [0, 1] with its interval; not testable when `n_total` is 0.
    """
    if int(n_failed) != n_failed or int(n_total) != n_total or not 0 <= n_failed <= n_total:
        raise ValueError(
            f"`n_failed` and `n_total` must be integers with 0 <= n_failed <= n_total, got "
            f"n_failed={n_failed!r}, n_total={n_total!r}; count seeds, not fractions."
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be strictly between 0 and 1, got {confidence!r}.")

    method = f"Wilson score interval, {confidence:.0%}"
    if n_total == 0:
        return Estimate(None, None, None, method, not_testable="no seeds were run (n_total = 0)")
    low, high = proportion_confint(
        int(n_failed), int(n_total), alpha=1 - confidence, method="wilson"
    )
    return Estimate(n_failed / n_total, float(low), float(high), method)


def aa_check(
    values: ArrayLike, *, n_splits: int = 200, alpha: float = 0.05, random_state: int = 0
) -> dict[str, Any]:
    """Estimate the false-positive rate of the unpaired tests by splitting one arm in two.

    Method: an A/A test. Split the arm's seeds at random into halves (the first floor(n/2)
    of `numpy.random.default_rng(random_state).permutation(n)` against the rest, a new
    permutation per split), run `unpaired_tests` on the halves, and report the share of
    splits with p < alpha for each test. Both halves come from one arm, so every rejection
    is a false positive. Splits of one sample overlap, so the rate is a noisy estimate.
    The tests run vectorized over splits with the settings of `unpaired_tests`; every split
    holds the same values, so the ties and sizes that select SciPy's p-value method are the
    same in every split, and a split where Welch's t is undefined (both halves constant)
    is left out of that test's count.

    Args:
        values: one arm's values, shape `(num_seeds,)`; non-finite values are dropped.
        n_splits: random splits.
        alpha: significance level.
        random_state: seed of the split generator.

    Returns:
        A dict with "n", "n_dropped", "n_splits", "alpha", "split" (the rule),
        "false_positive_rate" and "n_testable_splits" (both keyed by test), and
        "not_testable" (a reason or None).
    """
    if int(n_splits) != n_splits or n_splits < 1:
        raise ValueError(f"`n_splits` must be a positive integer, got {n_splits!r}; pass e.g. 200.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(
            f"`alpha` must be strictly between 0 and 1, got {alpha!r}; pass e.g. 0.05."
        )

    sample, n_dropped = as_sample(values, "values")
    n = sample.size
    report: dict[str, Any] = {
        "n": n,
        "n_dropped": n_dropped,
        "n_splits": int(n_splits),
        "alpha": alpha,
        "split": f"random halves of size {n // 2} and {n - n // 2}, generator seed {random_state}",
        "false_positive_rate": {"welch": None, "mann-whitney": None},
        "n_testable_splits": {"welch": 0, "mann-whitney": 0},
        "not_testable": None,
    }
    if n // 2 < MIN_SAMPLES:
        report["not_testable"] = f"only {n} finite values (at least {2 * MIN_SAMPLES} are needed)"
        return report
    if is_constant(sample):
        report["not_testable"] = f"all {n} values are equal, so no split can be tested"
        return report

    rng = np.random.default_rng(random_state)
    orders = np.stack([rng.permutation(n) for _ in range(int(n_splits))])  # (n_splits, n)
    first, second = sample[orders[:, : n // 2]], sample[orders[:, n // 2 :]]
    with quiet_numerics():
        p_values = {
            "welch": scipy.stats.ttest_ind(first, second, axis=-1, equal_var=False).pvalue,
            "mann-whitney": scipy.stats.mannwhitneyu(
                first, second, axis=-1, use_continuity=True, method="auto"
            ).pvalue,
        }

    rejections = {}
    for test, values in p_values.items():
        testable = np.isfinite(values)
        report["n_testable_splits"][test] = int(testable.sum())
        rejections[test] = int(np.count_nonzero(values[testable] < alpha))

    for test, count in rejections.items():
        testable = report["n_testable_splits"][test]
        report["false_positive_rate"][test] = count / testable if testable else None
    return report
