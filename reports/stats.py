"""Estimators and tests for comparing initializers across random seeds.

Every function takes one value per seed and assumes that seeds are independent draws: the
seeds of one arm are independent of each other, and paired functions assume that seed i of
the arm and seed i of the reference share their randomness (same data order, same teacher).
Non-finite values (NaN, ±inf) are dropped before any computation, pairwise for paired
functions, and the count dropped is reported. Results that cannot be computed carry a reason
string in `not_testable` (or `note` for a missing interval) instead of a NaN.

Survival, ranking, power and equivalence functions live in `reports.survival`,
`reports.ranking` and `reports.power`; they are re-exported here so that callers need only
`reports.stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats
from scipy.special import gammaln
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
from reports.methods import AnalysisOptions, methods_text
from reports.power import power_analysis, tost
from reports.ranking import RankingResult, friedman_nemenyi
from reports.survival import KMResult, kaplan_meier, logrank

__all__ = [
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

IQM_DEFINITION = "interquartile mean = scipy.stats.trim_mean(x, 0.25): 25% trimmed from each end"
CORRECTIONS = ("holm", "fdr_bh")


def _iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return scipy.stats.trim_mean(values, 0.25, axis=axis)


STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "mean": np.mean,
    "median": np.median,
    "iqm": _iqm,
}


# Bootstrap intervals


def _check_bootstrap_options(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f"`confidence` must be strictly between 0 and 1, got {confidence!r}; "
            "pass e.g. 0.95 for a 95% interval."
        )
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(
            f"`n_resamples` must be a positive integer, got {n_resamples!r}; "
            "pass e.g. 9999 (SciPy's default)."
        )


def _bca_bounds(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    paired: bool,
    confidence: float,
    n_resamples: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Run `scipy.stats.bootstrap` (BCa) on a vectorized, possibly vector-valued statistic.

    Returns:
        Lower and upper bounds, shape `(num_statistics,)`; NaN where BCa is undefined.
    """
    with quiet_numerics():
        result = scipy.stats.bootstrap(
            data,
            statistic,
            n_resamples=int(n_resamples),
            vectorized=True,
            paired=paired,
            confidence_level=confidence,
            method="BCa",
            rng=np.random.default_rng(random_state),
        )
    interval = result.confidence_interval
    return np.atleast_1d(interval.low), np.atleast_1d(interval.high)


def _bootstrap_method(n_resamples: int, confidence: float, paired: bool) -> str:
    resampling = "paired resampling of seeds" if paired else "seeds resampled within each arm"
    return (
        f"BCa bootstrap (scipy.stats.bootstrap), {int(n_resamples)} resamples, "
        f"{confidence:.0%}, {resampling}"
    )


def _interval_estimate(value: float | None, low: float, high: float, method: str) -> Estimate:
    """Build an Estimate and explain a missing interval, which BCa leaves as NaN."""
    value = finite_or_none(value)
    low_value, high_value = finite_or_none(low), finite_or_none(high)
    if value is not None and (low_value is None or high_value is None):
        note = (
            "BCa interval undefined: the bootstrap or jackknife distribution is degenerate "
            "(too few distinct values)"
        )
        return Estimate(value, None, None, method, note=note)
    return Estimate(value, low_value, high_value, method)


def _too_few(n: int, what: str) -> str:
    return f"only {n} finite {what} (at least {MIN_SAMPLES} are needed)"


def bootstrap_cis(
    values: ArrayLike,
    statistics: Sequence[str] = ("mean", "median", "iqm"),
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    random_state: int = 0,
) -> dict[str, Estimate]:
    """Estimate several location statistics with BCa bootstrap intervals from one resampling.

    Estimator: the sample mean, the sample median, and the interquartile mean
    `scipy.stats.trim_mean(x, 0.25)`; intervals by the bias-corrected and accelerated
    bootstrap (Efron 1987; SciPy's `bootstrap`, method "BCa"). Assumes independent seeds.

    Args:
        values: one value per seed, shape `(num_seeds,)`; non-finite values are dropped.
        statistics: names among "mean", "median", "iqm".
        confidence: confidence level of the two-sided interval.
        n_resamples: bootstrap resamples.
        random_state: seed of the resampling generator.

    Returns:
        One Estimate per requested statistic, keyed by name.
    """
    unknown = [name for name in statistics if name not in STATISTICS]
    if unknown:
        raise ValueError(
            f"`statistic` must be one of {sorted(STATISTICS)}, got {unknown[0]!r}; "
            "use 'iqm' for the interquartile mean."
        )
    _check_bootstrap_options(confidence, n_resamples)

    sample, _ = as_sample(values, "values")
    method = _bootstrap_method(n_resamples, confidence, paired=False)
    if sample.size < MIN_SAMPLES:
        reason = _too_few(sample.size, "values")
        return {name: Estimate(None, None, None, method, not_testable=reason) for name in statistics}

    points = [float(STATISTICS[name](sample)) for name in statistics]
    if is_constant(sample):
        note = f"all {sample.size} values are equal, so the interval is undefined"
        return {
            name: Estimate(point, None, None, method, note=note)
            for name, point in zip(statistics, points)
        }

    def statistic(data: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([STATISTICS[name](data, axis=axis) for name in statistics])

    lows, highs = _bca_bounds(
        (sample,), statistic, paired=False, confidence=confidence,
        n_resamples=n_resamples, random_state=random_state,
    )
    return {
        name: _interval_estimate(point, low, high, method)
        for name, point, low, high in zip(statistics, points, lows, highs)
    }


def bootstrap_ci(
    values: ArrayLike,
    statistic: str = "mean",
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    random_state: int = 0,
) -> Estimate:
    """Estimate the mean, median or interquartile mean with a BCa bootstrap interval.

    See `bootstrap_cis` for the estimators and assumptions. `statistic="iqm"` is
    `scipy.stats.trim_mean(x, 0.25)`.
    """
    estimates = bootstrap_cis(
        values, (statistic,), confidence=confidence,
        n_resamples=n_resamples, random_state=random_state,
    )
    return estimates[statistic]


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
        return untestable(_too_few(n, "pairs"))
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
        return untestable(_too_few(n, "pairs"))
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
        reason = _too_few(min(x.size, y.size), "values in one arm")
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
        reason = _too_few(min(x.size, y.size), "values in one arm")
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
    _, corrected, _, _ = multipletests([float(p_values[i]) for i in present], method=method)
    for i, value in zip(present, corrected):
        adjusted[i] = float(value)
    return adjusted


# Effect sizes


def _cliffs_delta(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cliff's delta P(X > Y) - P(X < Y) over all pairs, from midranks (vectorized, last axis)."""
    num_x, num_y = x.shape[-1], y.shape[-1]
    ranks = scipy.stats.rankdata(np.concatenate([x, y], axis=-1), axis=-1)
    u_statistic = ranks[..., :num_x].sum(axis=-1) - num_x * (num_x + 1) / 2
    return 2.0 * u_statistic / (num_x * num_y) - 1.0


def _hedges_g(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Hedges' g with the exact small-sample factor J(df) (Hedges & Olkin 1985, eq. 5.2.10)."""
    num_x, num_y = x.shape[-1], y.shape[-1]
    df = num_x + num_y - 2
    pooled_var = ((num_x - 1) * x.var(axis=-1, ddof=1) + (num_y - 1) * y.var(axis=-1, ddof=1)) / df
    correction = np.exp(gammaln(df / 2) - gammaln((df - 1) / 2)) / np.sqrt(df / 2)
    return correction * (x.mean(axis=-1) - y.mean(axis=-1)) / np.sqrt(pooled_var)


def _d_z(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cohen's d_z: mean of the paired differences over their standard deviation (ddof=1)."""
    differences = x - y
    return differences.mean(axis=-1) / differences.std(axis=-1, ddof=1)


def _paired_improvement(sign: float) -> Callable[..., np.ndarray]:
    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        oriented = sign * (x - y)
        return np.mean((oriented > 0) + 0.5 * (oriented == 0), axis=-1)

    return statistic


EFFECT_SIZE_CONVENTION = {
    "hedges_g": "Hedges' g = J * (mean_x - mean_y) / pooled SD, exact J(df = n_x + n_y - 2)",
    "d_z": "Cohen's d_z = mean(x - y) / SD(x - y), ddof = 1, no small-sample correction",
    "cliffs_delta": "Cliff's delta = P(X > Y) - P(X < Y) over all arm x reference pairs",
    "a12": "Vargha-Delaney A12 = P(X > Y) + P(X = Y) / 2 = (delta + 1) / 2",
    "prob_improvement_paired": (
        "share of seeds on which the arm beats the reference in the metric's direction, "
        "ties count 1/2"
    ),
    "prob_improvement_unpaired": (
        "P(arm beats reference) over all pairs in the metric's direction, ties count 1/2 "
        "(A12 when higher is better, 1 - A12 otherwise)"
    ),
}


def effect_sizes(
    x: ArrayLike,
    y: ArrayLike,
    *,
    paired: bool,
    higher_is_better: bool,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    random_state: int = 0,
) -> dict[str, Estimate]:
    """Estimate standardized and rank-based effect sizes of arm `x` against reference `y`.

    Estimators: Hedges' g (unpaired) or Cohen's d_z (paired), signed as x - y; Cliff's delta
    (Cliff 1993) and Vargha-Delaney A12 (Vargha & Delaney 2000), signed as x - y; and the
    probability of improvement, oriented so that values above 1/2 favour the arm. Intervals:
    BCa bootstrap, resampling pairs when paired. A12 and the unpaired probability of
    improvement are affine maps of delta, so their intervals are the mapped delta interval
    (BCa is equivariant under such maps). Assumes independent seeds.

    Args:
        x: the arm's values, shape `(num_seeds,)`.
        y: the reference's values, shape `(num_seeds,)` (same seed order when paired).
        paired: resample and compare seed by seed.
        higher_is_better: direction of the metric, used by `prob_improvement` only.
        confidence, n_resamples, random_state: bootstrap settings.

    Returns:
        Keys "d_z" (paired) or "hedges_g" (unpaired), "cliffs_delta", "a12",
        "prob_improvement".
    """
    _check_bootstrap_options(confidence, n_resamples)
    if paired:
        x_values, y_values, _ = as_pairs(x, y)
    else:
        x_values, _ = as_sample(x, "x")
        y_values, _ = as_sample(y, "y")

    standardized = "d_z" if paired else "hedges_g"
    names = [standardized, "cliffs_delta", "a12", "prob_improvement"]
    method = _bootstrap_method(n_resamples, confidence, paired)
    smallest = min(x_values.size, y_values.size)
    if smallest < MIN_SAMPLES:
        reason = _too_few(smallest, "pairs" if paired else "values in one arm")
        return {name: Estimate(None, None, None, method, not_testable=reason) for name in names}

    sign = 1.0 if higher_is_better else -1.0
    if paired:
        return _paired_effects(x_values, y_values, sign, method, confidence, n_resamples, random_state)
    return _unpaired_effects(x_values, y_values, sign, method, confidence, n_resamples, random_state)


def _paired_effects(
    x: np.ndarray, y: np.ndarray, sign: float, method: str,
    confidence: float, n_resamples: int, random_state: int,
) -> dict[str, Estimate]:
    improvement = _paired_improvement(sign)

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([_d_z(a, b), _cliffs_delta(a, b), improvement(a, b)])

    with quiet_numerics():
        points = statistic(x, y)
    lows, highs = _bca_bounds(
        (x, y), statistic, paired=True, confidence=confidence,
        n_resamples=n_resamples, random_state=random_state,
    )

    differences = x - y
    if is_constant(differences):
        reason = f"all {x.size} paired differences are equal (zero variance), so d_z is undefined"
        d_z = Estimate(None, None, None, method, not_testable=reason)
    else:
        d_z = _interval_estimate(points[0], lows[0], highs[0], method)
    delta = _interval_estimate(points[1], lows[1], highs[1], method)
    return {
        "d_z": _with_convention(d_z, "d_z"),
        "cliffs_delta": _with_convention(delta, "cliffs_delta"),
        "a12": _with_convention(_affine(delta, 0.5, 0.5), "a12"),
        "prob_improvement": _with_convention(
            _interval_estimate(points[2], lows[2], highs[2], method), "prob_improvement_paired"
        ),
    }


def _unpaired_effects(
    x: np.ndarray, y: np.ndarray, sign: float, method: str,
    confidence: float, n_resamples: int, random_state: int,
) -> dict[str, Estimate]:
    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([_hedges_g(a, b), _cliffs_delta(a, b)])

    with quiet_numerics():
        points = statistic(x, y)
    lows, highs = _bca_bounds(
        (x, y), statistic, paired=False, confidence=confidence,
        n_resamples=n_resamples, random_state=random_state,
    )

    if is_constant(x) and is_constant(y):
        reason = "both arms have zero variance, so the pooled SD is 0 and g is undefined"
        hedges_g = Estimate(None, None, None, method, not_testable=reason)
    else:
        hedges_g = _interval_estimate(points[0], lows[0], highs[0], method)
    delta = _interval_estimate(points[1], lows[1], highs[1], method)
    a12 = _affine(delta, 0.5, 0.5)
    improvement = a12 if sign > 0 else _affine(delta, -0.5, 0.5)
    return {
        "hedges_g": _with_convention(hedges_g, "hedges_g"),
        "cliffs_delta": _with_convention(delta, "cliffs_delta"),
        "a12": _with_convention(a12, "a12"),
        "prob_improvement": _with_convention(improvement, "prob_improvement_unpaired"),
    }


def _affine(estimate: Estimate, scale: float, offset: float) -> Estimate:
    """Map an Estimate through v -> scale * v + offset, swapping the bounds when scale < 0."""

    def mapped(value: float | None) -> float | None:
        return None if value is None else scale * value + offset

    low, high = mapped(estimate.low), mapped(estimate.high)
    if scale < 0:
        low, high = high, low
    return Estimate(mapped(estimate.value), low, high, estimate.method,
                    estimate.not_testable, estimate.note)


def _with_convention(estimate: Estimate, key: str) -> Estimate:
    return Estimate(
        estimate.value, estimate.low, estimate.high,
        f"{EFFECT_SIZE_CONVENTION[key]}; {estimate.method}",
        estimate.not_testable, estimate.note,
    )


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
        reason = _too_few(min(x_values.size, y_values.size), "values in one arm")
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
    _check_bootstrap_options(confidence, n_resamples)
    if paired:
        x_values, y_values, _ = as_pairs(x, y)
        method = _bootstrap_method(n_resamples, confidence, paired=True)
    else:
        x_values, _ = as_sample(x, "x")
        y_values, _ = as_sample(y, "y")
        method = f"F-distribution interval for a ratio of normal variances, square-rooted, {confidence:.0%}"

    smallest = min(x_values.size, y_values.size)
    if smallest < MIN_SAMPLES:
        return Estimate(None, None, None, method, not_testable=_too_few(smallest, "values in one arm"))
    if is_constant(y_values):
        reason = "the reference has zero variance, so the ratio is undefined"
        return Estimate(None, None, None, method, not_testable=reason)

    ratio = float(np.std(x_values, ddof=1) / np.std(y_values, ddof=1))
    if paired:
        return _paired_sd_ratio(x_values, y_values, ratio, method, confidence, n_resamples, random_state)

    alpha = 1.0 - confidence
    df_x, df_y = x_values.size - 1, y_values.size - 1
    low = ratio / np.sqrt(scipy.stats.f.ppf(1 - alpha / 2, df_x, df_y))
    high = ratio / np.sqrt(scipy.stats.f.ppf(alpha / 2, df_x, df_y))
    return Estimate(ratio, float(low), float(high), method)


def _paired_sd_ratio(
    x: np.ndarray, y: np.ndarray, ratio: float, method: str,
    confidence: float, n_resamples: int, random_state: int,
) -> Estimate:
    if is_constant(x):
        note = "the arm has zero variance in every resample, so the interval is undefined"
        return Estimate(ratio, None, None, method, note=note)

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return a.std(axis=-1, ddof=1) / b.std(axis=-1, ddof=1)

    lows, highs = _bca_bounds(
        (x, y), statistic, paired=True, confidence=confidence,
        n_resamples=n_resamples, random_state=random_state,
    )
    return _interval_estimate(ratio, lows[0], highs[0], method)


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
    low, high = proportion_confint(int(n_failed), int(n_total), alpha=1 - confidence, method="wilson")
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
        raise ValueError(f"`alpha` must be strictly between 0 and 1, got {alpha!r}; pass e.g. 0.05.")

    sample, n_dropped = as_sample(values, "values")
    n = sample.size
    report: dict[str, Any] = {
        "n": n, "n_dropped": n_dropped, "n_splits": int(n_splits), "alpha": alpha,
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

    rejections = {"welch": 0, "mann-whitney": 0}
    rng = np.random.default_rng(random_state)
    for _ in range(int(n_splits)):
        order = rng.permutation(n)
        for result in unpaired_tests(sample[order[: n // 2]], sample[order[n // 2 :]]):
            if result.p_value is not None:
                report["n_testable_splits"][result.test] += 1
                rejections[result.test] += int(result.p_value < alpha)

    for test, count in rejections.items():
        testable = report["n_testable_splits"][test]
        report["false_positive_rate"][test] = count / testable if testable else None
    return report
