"""Power analysis and equivalence tests (TOST) for arm-against-reference comparisons."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from reports.core import (
    MIN_SAMPLES,
    TestResult,
    as_pairs,
    as_sample,
    finite_or_none,
    is_constant,
    quiet_numerics,
)

ArrayLike = Sequence[float] | np.ndarray


def _observed_effect(x: np.ndarray, y: np.ndarray, paired: bool) -> float | None:
    """Cohen's d_z (paired) or Cohen's d with pooled SD (unpaired), no small-sample correction."""
    if paired:
        differences = x - y
        if is_constant(differences):
            return None
        return float(differences.mean() / differences.std(ddof=1))

    pooled_var = ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (
        x.size + y.size - 2
    )
    if pooled_var == 0:
        return None
    return float((x.mean() - y.mean()) / math.sqrt(pooled_var))


def _solve(function: Any, **kwargs: float | None) -> float | None:
    """Run a statsmodels `solve_power` and return None when the root search fails."""
    with quiet_numerics(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            result = function(**kwargs)
        except (ValueError, RuntimeError, ZeroDivisionError):
            return None
    return finite_or_none(np.squeeze(result))


def power_analysis(
    x: ArrayLike, y: ArrayLike, *, paired: bool, alpha: float = 0.05, power: float = 0.8
) -> dict[str, Any]:
    """Compute the smallest detectable effect and the seeds needed at the observed effect.

    Estimator: the power of the two-sided one-sample t-test on paired differences
    (`statsmodels.stats.power.TTestPower`, effect size Cohen's d_z) or of the two-sample
    t-test with pooled variance (`TTestIndPower`, Cohen's d), from the noncentral t
    distribution (Cohen 1988). Assumes independent, roughly normal seeds; the observed
    effect is a noisy estimate, so "seeds needed" is a rough guide.

    Args:
        x: the arm's values, shape `(num_seeds,)`.
        y: the reference's values, shape `(num_seeds,)` (same seed order when paired).
        paired: use the paired design.
        alpha: two-sided significance level.
        power: target power.

    Returns:
        A dict with "effect_measure", "n" (pairs, or seeds per arm as [n_x, n_y]), "alpha",
        "power", "min_detectable_effect", "observed_effect", "seeds_needed" (pairs, or seeds
        per arm with equal arms) and "not_testable" / "seeds_needed_reason" (reasons or None).
    """
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"`{name}` must be strictly between 0 and 1, got {value!r}.")

    if paired:
        x_values, y_values, _ = as_pairs(x, y)
        n: int | list[int] = int(x_values.size)
    else:
        x_values, _ = as_sample(x, "x")
        y_values, _ = as_sample(y, "y")
        n = [int(x_values.size), int(y_values.size)]

    report: dict[str, Any] = {
        "effect_measure": "Cohen's d_z" if paired else "Cohen's d (pooled SD)",
        "n": n,
        "alpha": alpha,
        "power": power,
        "min_detectable_effect": None,
        "observed_effect": None,
        "seeds_needed": None,
        "not_testable": None,
        "seeds_needed_reason": None,
    }
    smallest = min(x_values.size, y_values.size)
    if smallest < MIN_SAMPLES:
        report["not_testable"] = f"only {smallest} finite seeds (at least {MIN_SAMPLES} are needed)"
        report["seeds_needed_reason"] = report["not_testable"]
        return report

    if paired:
        report["min_detectable_effect"] = _solve(
            TTestPower().solve_power, effect_size=None, nobs=x_values.size, alpha=alpha, power=power
        )
    else:
        report["min_detectable_effect"] = _solve(
            TTestIndPower().solve_power,
            effect_size=None,
            nobs1=x_values.size,
            ratio=y_values.size / x_values.size,
            alpha=alpha,
            power=power,
        )

    effect = _observed_effect(x_values, y_values, paired)
    report["observed_effect"] = effect
    report["seeds_needed"], report["seeds_needed_reason"] = _seeds_needed(
        effect, paired, alpha, power
    )
    return report


def _seeds_needed(
    effect: float | None, paired: bool, alpha: float, power: float
) -> tuple[int | None, str | None]:
    if effect is None:
        return None, "the observed effect is undefined (zero variance)"
    if effect == 0:
        return None, "the observed effect is 0, so no number of seeds reaches the target power"

    analysis = TTestPower() if paired else TTestIndPower()
    keyword = "nobs" if paired else "nobs1"
    needed = _solve(
        analysis.solve_power, effect_size=abs(effect), alpha=alpha, power=power, **{keyword: None}
    )
    if needed is None:
        return None, f"the power solver found no sample size for effect {effect:.3g}"
    return int(math.ceil(needed)), None


def tost(x: ArrayLike, y: ArrayLike, *, margin: float, paired: bool) -> TestResult:
    """Test equivalence of arm and reference within ±margin (two one-sided tests).

    Estimator: Schuirmann's (1987) TOST on the mean difference x - y, H0: |difference| >=
    margin, by `statsmodels.stats.weightstats.ttost_paired` (paired t) or `ttost_ind` with
    usevar='unequal' (Welch). The p-value is the larger one-sided p-value; the statistic is
    that test's t. Assumes independent, roughly normal seeds.

    Args:
        x: the arm's values, shape `(num_seeds,)`.
        y: the reference's values, shape `(num_seeds,)` (same seed order when paired).
        margin: equivalence margin in metric units, > 0.
        paired: use the paired t-test.

    Returns:
        The TOST result; p < alpha supports equivalence within the margin.
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(
            f"`margin` must be a positive finite number in metric units, got {margin!r}; "
            "e.g. margin=0.01 for one accuracy point."
        )

    design = "paired t" if paired else "Welch t"
    convention = (
        f"two one-sided {design}-tests, H0: |mean(arm - reference)| >= {margin:g} (metric units); "
        "p = the larger one-sided p-value, statistic = that test's t"
    )
    if paired:
        x_values, y_values, n_dropped = as_pairs(x, y)
        n = int(x_values.size)
    else:
        x_values, x_dropped = as_sample(x, "x")
        y_values, y_dropped = as_sample(y, "y")
        n, n_dropped = int(x_values.size + y_values.size), x_dropped + y_dropped

    def untestable(reason: str) -> TestResult:
        return TestResult("tost", None, None, n, convention, reason, n_dropped)

    smallest = min(x_values.size, y_values.size)
    if smallest < MIN_SAMPLES:
        return untestable(f"only {smallest} finite seeds (at least {MIN_SAMPLES} are needed)")
    if paired and is_constant(x_values - y_values):
        return untestable("all paired differences are equal (zero variance)")
    if not paired and is_constant(x_values) and is_constant(y_values):
        return untestable("both arms have zero variance")

    with quiet_numerics():
        if paired:
            p_value, lower, upper = ttost_paired(x_values, y_values, -margin, margin)
        else:
            p_value, lower, upper = ttost_ind(x_values, y_values, -margin, margin, usevar="unequal")
    binding = lower if lower[1] >= upper[1] else upper
    statistic, p = finite_or_none(binding[0]), finite_or_none(p_value)
    if statistic is None or p is None:
        return untestable("the TOST statistic is not finite for this input")
    return TestResult("tost", statistic, p, n, convention, None, n_dropped)
