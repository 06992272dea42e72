"""Result records of `analyze` and their JSON form (stats.json)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reports.core import Estimate, TestResult, finite_or_none
from reports.methods import AnalysisOptions, methods_text
from reports.ranking import RankingResult
from reports.survival import KMResult

STEPS_METRIC = "convergence/steps_to_threshold"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AdjustedTest:
    """A TestResult with its multiplicity-adjusted p-value and the family it was adjusted in."""

    result: TestResult
    p_adjusted: float | None
    family: str

    def to_dict(self) -> dict[str, Any]:
        """Return the TestResult fields plus "p_adjusted" and "family"."""
        return {
            **self.result.to_dict(),
            "p_adjusted": finite_or_none(self.p_adjusted),
            "family": self.family,
        }


@dataclass(frozen=True)
class ArmSummary:
    """Location and spread of one metric for one initializer in one scenario."""

    scenario: str
    metric: str
    initializer: str
    higher_is_better: bool
    n: int
    n_dropped: int
    mean: Estimate
    median: Estimate
    iqm: Estimate
    std: float | None
    std_note: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "scenario": self.scenario,
            "metric": self.metric,
            "initializer": self.initializer,
            "higher_is_better": self.higher_is_better,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "mean": self.mean.to_dict(),
            "median": self.median.to_dict(),
            "iqm": self.iqm.to_dict(),
            "std": finite_or_none(self.std),
            "std_note": self.std_note,
        }


@dataclass
class Comparison:
    """One initializer against the reference for one scenario and metric."""

    scenario: str
    metric: str
    initializer: str
    reference: str
    paired: bool
    higher_is_better: bool
    tests: list[AdjustedTest]
    effect_sizes: dict[str, Estimate]
    variance_tests: list[AdjustedTest]
    sd_ratio: Estimate
    power: dict[str, Any]
    equivalence: AdjustedTest | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "scenario": self.scenario,
            "metric": self.metric,
            "initializer": self.initializer,
            "reference": self.reference,
            "paired": self.paired,
            "higher_is_better": self.higher_is_better,
            "tests": [test.to_dict() for test in self.tests],
            "effect_sizes": {name: value.to_dict() for name, value in self.effect_sizes.items()},
            "variance": {
                "tests": [test.to_dict() for test in self.variance_tests],
                "sd_ratio": self.sd_ratio.to_dict(),
            },
            "power": dict(self.power),
            "equivalence": None if self.equivalence is None else self.equivalence.to_dict(),
        }


@dataclass
class SurvivalSummary:
    """Kaplan-Meier curves per initializer and log-rank tests against the reference."""

    scenario: str
    curves: dict[str, KMResult]
    logrank: dict[str, AdjustedTest]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "scenario": self.scenario,
            "metric": STEPS_METRIC,
            "curves": {name: curve.to_dict() for name, curve in self.curves.items()},
            "logrank": {name: test.to_dict() for name, test in self.logrank.items()},
        }


@dataclass
class Analysis:
    """Every statistic computed by `analyze`; `to_dict()` gives the stats.json content."""

    options: AnalysisOptions
    summaries: list[ArmSummary] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    families: list[dict[str, Any]] = field(default_factory=list)
    survival: list[SurvivalSummary] = field(default_factory=list)
    survival_note: str | None = None
    ranking: dict[str, RankingResult] = field(default_factory=dict)
    ranking_note: str | None = None
    ranking_blocks: str = "scenarios"
    """The Friedman blocks: "scenarios", or "seeds" when there is one scenario."""
    failure_rates: list[dict[str, Any]] = field(default_factory=list)
    failure_rate_note: str | None = None
    aa_checks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def methods_text(self) -> str:
        """Return the methods paragraph for this analysis' options."""
        return methods_text(self.options)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (stats.json) with no NaN or infinity."""
        content = {
            "schema_version": SCHEMA_VERSION,
            "options": self.options.to_dict(),
            "methods_text": self.methods_text(),
            "warnings": list(self.warnings),
            "summaries": [summary.to_dict() for summary in self.summaries],
            "families": list(self.families),
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
            "survival": {
                "results": [summary.to_dict() for summary in self.survival],
                "not_testable": self.survival_note,
            },
            "ranking": {
                "results": {metric: result.to_dict() for metric, result in self.ranking.items()},
                "not_testable": self.ranking_note,
                "blocks": self.ranking_blocks,
            },
            "failure_rates": {
                "results": list(self.failure_rates),
                "not_testable": self.failure_rate_note,
            },
            "aa_checks": list(self.aa_checks),
        }
        notes: list[str] = []
        content = _json_safe(content, "", notes)
        content["notes"] = notes
        return content


def _json_safe(value: Any, path: str, notes: list[str]) -> Any:
    """Convert NumPy scalars to Python ones; replace any non-finite float with None and log it.

    Every estimator already reports missing numbers as None with a reason, so a note here
    points to a case the estimators missed.
    """
    if isinstance(value, dict):
        return {str(key): _json_safe(item, f"{path}/{key}", notes) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, f"{path}/{i}", notes) for i, item in enumerate(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            notes.append(f"{path}: non-finite number {float(value)} reported as null")
            return None
        return float(value)
    return value
