"""Convergence as survival data: steps to reach an accuracy threshold, right-censored.

A seed that never reaches the threshold within its budget is censored at the budget
(`reached = 0`, steps = budget). The event is "reached the threshold", so a survival curve
S(t) is the share of seeds still below the threshold after t steps: lower is faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from reports.core import MIN_SAMPLES, Estimate, TestResult, finite_or_none, quiet_numerics

ArrayLike = Sequence[float] | np.ndarray

MEDIAN_RULE = (
    "median = smallest event time t with S(t) < 0.5 (strict inequality, statsmodels "
    "SurvfuncRight.quantile)"
)
MEDIAN_CI_RULE = (
    "CI by inverting pointwise z-tests on the log(-log S) scale (statsmodels quantile_ci, "
    "method='cloglog'); its limits are observed event times"
)
CURVE_CI_RULE = (
    "pointwise CI of S(t) from Greenwood's variance on the log(-log S) scale "
    "(R's conf.type='log-log')"
)


@dataclass(frozen=True)
class KMResult:
    """A Kaplan-Meier curve of steps to threshold for one arm.

    `times` are the distinct event times, shape `(num_event_times,)`; `survival`, `ci_low`
    and `ci_high` are S(t) and its pointwise interval just after each time. S(t) = 1 before
    the first event time. An interval bound is None where S(t) is 0 (the log-log transform
    is undefined there).
    """

    times: tuple[float, ...]
    survival: tuple[float, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    median: Estimate
    n: int
    n_events: int
    n_dropped: int = 0
    method: str = field(default=f"Kaplan-Meier (statsmodels SurvfuncRight); {CURVE_CI_RULE}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "times": [float(t) for t in self.times],
            "survival": [finite_or_none(s) for s in self.survival],
            "ci_low": [finite_or_none(s) for s in self.ci_low],
            "ci_high": [finite_or_none(s) for s in self.ci_high],
            "median": self.median.to_dict(),
            "n": self.n,
            "n_events": self.n_events,
            "n_dropped": self.n_dropped,
            "method": self.method,
        }


def _as_survival_data(
    steps: ArrayLike, reached: ArrayLike, name: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate steps and event flags; drop entries where either is not finite."""
    try:
        steps_array = np.asarray(steps, dtype=float)
        reached_array = np.asarray(reached, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` steps and reached flags must be numbers ({error}); "
            "pass steps as numbers and reached as 1.0 (reached) or 0.0 (censored)."
        ) from error

    if steps_array.ndim != 1 or steps_array.shape != reached_array.shape:
        raise ValueError(
            f"`{name}`: steps and reached must be 1-D of equal length, got shapes "
            f"{steps_array.shape} and {reached_array.shape}; pass one entry per seed."
        )

    complete = np.isfinite(steps_array) & np.isfinite(reached_array)
    steps_array, reached_array = steps_array[complete], reached_array[complete]
    if not np.all(np.isin(reached_array, (0.0, 1.0))):
        bad = float(reached_array[~np.isin(reached_array, (0.0, 1.0))][0])
        raise ValueError(
            f"`{name}` reached flags must be 0.0 (censored) or 1.0 (reached), got {bad!r}; "
            "encode the event indicator as 0/1."
        )
    if np.any(steps_array < 0):
        raise ValueError(
            f"`{name}` steps must be non-negative, got {float(steps_array.min())!r}; "
            "pass the optimizer step at which the threshold was reached."
        )
    return steps_array, reached_array, int(np.count_nonzero(~complete))


def _loglog_band(
    survival: np.ndarray, standard_error: np.ndarray, confidence: float
) -> tuple[list[float | None], list[float | None]]:
    """Pointwise interval of S(t) on the log(-log S) scale, mapped back."""
    z = scipy.stats.norm.ppf(0.5 + confidence / 2)
    lows: list[float | None] = []
    highs: list[float | None] = []
    for s, se in zip(survival, standard_error):
        if not 0.0 < s < 1.0:
            lows.append(None if s <= 0.0 else 1.0)
            highs.append(None if s <= 0.0 else 1.0)
            continue
        se_loglog = se / (s * abs(np.log(s)))
        lows.append(float(s ** np.exp(z * se_loglog)))
        highs.append(float(s ** np.exp(-z * se_loglog)))
    return lows, highs


def kaplan_meier(steps: ArrayLike, reached: ArrayLike, confidence: float = 0.95) -> KMResult:
    """Estimate the distribution of steps to threshold with right censoring.

    Estimator: the Kaplan-Meier product-limit estimator (Kaplan & Meier 1958) with
    Greenwood's variance, by `statsmodels.duration.survfunc.SurvfuncRight`. The median is
    the smallest event time with S(t) < 0.5, with a CI from inverting z-tests on the
    log(-log S) scale. Assumes independent seeds and censoring unrelated to the outcome
    (every seed has the same step budget).

    Args:
        steps: steps to threshold, or the budget when censored, shape `(num_seeds,)`.
        reached: 1.0 when the threshold was reached, 0.0 when censored, shape `(num_seeds,)`.
        confidence: level of the pointwise and median intervals.

    Returns:
        The curve, its pointwise interval, the median with its interval, and counts.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be strictly between 0 and 1, got {confidence!r}.")
    times, events, n_dropped = _as_survival_data(steps, reached, "kaplan_meier")
    n, n_events = times.size, int(events.sum())
    median_method = f"{MEDIAN_RULE}; {MEDIAN_CI_RULE}, {confidence:.0%}"

    if n_events == 0:
        reason = "no seed reached the threshold" if n else "no finite observations"
        median = Estimate(None, None, None, median_method, not_testable=reason)
        return KMResult((), (), (), (), median, n, 0, n_dropped)

    with quiet_numerics():
        fitted = SurvfuncRight(times, events)
        ci_low, ci_high = _loglog_band(fitted.surv_prob, fitted.surv_prob_se, confidence)
        median = _median(fitted, median_method, confidence)
    return KMResult(
        tuple(float(t) for t in fitted.surv_times),
        tuple(float(s) for s in fitted.surv_prob),
        tuple(ci_low),
        tuple(ci_high),
        median,
        n,
        n_events,
        n_dropped,
    )


def _median(fitted: SurvfuncRight, method: str, confidence: float) -> Estimate:
    value = finite_or_none(fitted.quantile(0.5))
    if value is None:
        reason = "S(t) never falls below 0.5: fewer than half of the seeds reached the threshold"
        return Estimate(None, None, None, method, not_testable=reason)

    low, high = fitted.quantile_ci(0.5, alpha=1 - confidence, method="cloglog")
    low, high = finite_or_none(low), finite_or_none(high)
    note = None
    if low is None or high is None:
        note = "a confidence limit is not reached within the observed steps (unbounded)"
    return Estimate(value, low, high, method, note=note)


def logrank(
    steps_a: ArrayLike, reached_a: ArrayLike, steps_b: ArrayLike, reached_b: ArrayLike
) -> TestResult:
    """Test whether two arms reach the threshold at different rates.

    Estimator: the unweighted log-rank test (Mantel 1966), chi-squared with 1 degree of
    freedom, by `statsmodels.duration.survfunc.survdiff`. Assumes independent seeds in two
    independent groups, so paired seeds are treated as unpaired.

    Args:
        steps_a, reached_a: the arm's steps and event flags, shape `(num_seeds_a,)` each.
        steps_b, reached_b: the reference's, shape `(num_seeds_b,)` each.

    Returns:
        The chi-squared statistic and its p-value, or not testable with the reason.
    """
    times_a, events_a, dropped_a = _as_survival_data(steps_a, reached_a, "logrank arm")
    times_b, events_b, dropped_b = _as_survival_data(steps_b, reached_b, "logrank reference")
    n, n_dropped = times_a.size + times_b.size, dropped_a + dropped_b
    convention = "unweighted log-rank (statsmodels survdiff), chi-squared with 1 df, two-sided"

    def untestable(reason: str) -> TestResult:
        return TestResult("log-rank", None, None, n, convention, reason, n_dropped)

    smallest = min(times_a.size, times_b.size)
    if smallest < MIN_SAMPLES:
        return untestable(
            f"only {smallest} finite seeds in one arm (at least {MIN_SAMPLES} are needed)"
        )
    if events_a.sum() + events_b.sum() == 0:
        return untestable("no seed reached the threshold in either arm")

    time = np.concatenate([times_a, times_b])
    status = np.concatenate([events_a, events_b])
    group = np.repeat([0, 1], [times_a.size, times_b.size])
    with quiet_numerics():
        statistic, p_value = survdiff(time, status, group)

    statistic, p_value = finite_or_none(statistic), finite_or_none(p_value)
    if statistic is None or p_value is None:
        return untestable("the log-rank variance is zero for this input")
    return TestResult("log-rank", statistic, p_value, n, convention, None, n_dropped)
