"""BCa bootstrap intervals for location statistics, shared by the effect-size code."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats

from reports.core import (
    MIN_SAMPLES,
    Estimate,
    as_sample,
    finite_or_none,
    is_constant,
    quiet_numerics,
)

ArrayLike = Sequence[float] | np.ndarray

IQM_DEFINITION = "interquartile mean = scipy.stats.trim_mean(x, 0.25): 25% trimmed from each end"


def _iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return scipy.stats.trim_mean(values, 0.25, axis=axis)


STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "mean": np.mean,
    "median": np.median,
    "iqm": _iqm,
}


def check_bootstrap_options(confidence: float, n_resamples: int) -> None:
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


def bca_bounds(
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


def bootstrap_method(n_resamples: int, confidence: float, paired: bool) -> str:
    resampling = "paired resampling of seeds" if paired else "seeds resampled within each arm"
    return (
        f"BCa bootstrap (scipy.stats.bootstrap), {int(n_resamples)} resamples, "
        f"{confidence:.0%}, {resampling}"
    )


def interval_estimate(value: float | None, low: float, high: float, method: str) -> Estimate:
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


def too_few(n: int, what: str) -> str:
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
    check_bootstrap_options(confidence, n_resamples)

    sample, _ = as_sample(values, "values")
    method = bootstrap_method(n_resamples, confidence, paired=False)
    if sample.size < MIN_SAMPLES:
        reason = too_few(sample.size, "values")
        return {
            name: Estimate(None, None, None, method, not_testable=reason) for name in statistics
        }

    points = [float(STATISTICS[name](sample)) for name in statistics]
    if is_constant(sample):
        note = f"all {sample.size} values are equal, so the interval is undefined"
        return {
            name: Estimate(point, None, None, method, note=note)
            for name, point in zip(statistics, points)
        }

    def statistic(data: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([STATISTICS[name](data, axis=axis) for name in statistics])

    lows, highs = bca_bounds(
        (sample,),
        statistic,
        paired=False,
        confidence=confidence,
        n_resamples=n_resamples,
        random_state=random_state,
    )
    return {
        name: interval_estimate(point, low, high, method)
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
        values,
        (statistic,),
        confidence=confidence,
        n_resamples=n_resamples,
        random_state=random_state,
    )
    return estimates[statistic]
