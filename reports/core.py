"""Result types and input cleaning shared by the statistics modules.

Every estimator in `reports/` returns an `Estimate` or a `TestResult`. Either one carries a
reason string instead of a value when the quantity cannot be computed, so that no report
ever prints a bare NaN.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SAMPLES = 3
"""Smallest number of finite values (per arm, or of pairs) that any test or interval uses."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval, or the reason it is missing.

    `value` is None exactly when `not_testable` is set. `low` and `high` are None when the
    point estimate exists but its interval does not; `note` then gives the reason.
    """

    value: float | None
    low: float | None
    high: float | None
    method: str
    not_testable: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "value": finite_or_none(self.value),
            "low": finite_or_none(self.low),
            "high": finite_or_none(self.high),
            "method": self.method,
            "not_testable": self.not_testable,
            "note": self.note,
        }


@dataclass(frozen=True)
class TestResult:
    """The outcome of one hypothesis test, or the reason it was not run.

    `n` counts the finite values used (pairs for paired tests, both arms together for
    unpaired ones). `n_dropped` counts the non-finite values removed before testing.
    """

    __test__ = False  # keeps pytest from collecting this class as a test case

    test: str
    statistic: float | None
    p_value: float | None
    n: int
    convention: str
    not_testable: str | None = None
    n_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "test": self.test,
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "n": self.n,
            "n_dropped": self.n_dropped,
            "convention": self.convention,
            "not_testable": self.not_testable,
        }


def finite_or_none(value: float | None) -> float | None:
    """Return `value` as a Python float, or None when it is None, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def as_sample(values: Sequence[float] | np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Convert `values` to a 1-D float array and drop the non-finite entries.

    Args:
        values: numbers, shape `(num_seeds,)`; NaN and ±inf are allowed and dropped.
        name: the parameter name used in error messages.

    Returns:
        The finite values, shape `(num_finite,)`, and the number dropped.

    Raises:
        ValueError: when `values` is not numeric or not one-dimensional.
    """
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must contain numbers only, but conversion to float failed ({error}); "
            "convert or remove the non-numeric entries."
        ) from error

    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be one-dimensional (one value per seed), got shape {array.shape}; "
            "pass a flat sequence."
        )

    finite = np.isfinite(array)
    return array[finite], int(np.count_nonzero(~finite))


def as_pairs(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Convert two paired samples to float arrays and drop every pair with a non-finite value.

    Args:
        x: the arm's values, shape `(num_seeds,)`.
        y: the reference's values for the same seeds in the same order, shape `(num_seeds,)`.

    Returns:
        `x` and `y` restricted to the complete pairs, shape `(num_pairs,)` each, and the number
        of pairs dropped.

    Raises:
        ValueError: when the inputs are not numeric, not 1-D, or differ in length.
    """
    x_all = _as_float_vector(x, "x")
    y_all = _as_float_vector(y, "y")
    if x_all.shape != y_all.shape:
        raise ValueError(
            f"paired samples must have equal length, got len(x)={x_all.size} and "
            f"len(y)={y_all.size}; pass the values of the same seeds in the same order, "
            "or use the unpaired tests."
        )

    complete = np.isfinite(x_all) & np.isfinite(y_all)
    return x_all[complete], y_all[complete], int(np.count_nonzero(~complete))


def _as_float_vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    as_sample(values, name)  # validates type and shape
    return np.asarray(values, dtype=float)


def is_constant(values: np.ndarray) -> bool:
    """Return True when all entries of a non-empty array are equal."""
    return bool(values.size > 0 and np.all(values == values[0]))


@contextlib.contextmanager
def quiet_numerics() -> Iterator[None]:
    """Silence the runtime warnings that SciPy and statsmodels raise on degenerate input.

    Callers check every returned number with `finite_or_none` and report a reason instead
    of a non-finite value, so these warnings carry no information that would be lost.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
