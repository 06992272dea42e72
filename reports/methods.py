"""Analysis options and the methods paragraph that states every statistical convention."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CORRECTION_NAMES = {
    "holm": "Holm's step-down procedure (family-wise error rate)",
    "fdr_bh": "the Benjamini-Hochberg procedure (false discovery rate)",
}


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of one analysis run; `analyze` stores the resolved values in its output."""

    reference: str = "uniform"
    """Initializer that every other arm is compared against."""
    paired: bool | None = None
    """True or False forces the design; None pairs an arm when it shares the reference's seeds."""
    correction: str = "holm"
    """Multiple-comparison correction within a family: "holm" or "fdr_bh"."""
    confidence: float = 0.95
    """Level of every confidence interval."""
    n_resamples: int = 9999
    """Bootstrap resamples per BCa interval."""
    alpha: float = 0.05
    """Significance level of the power analysis, the A/A check and the CD diagram."""
    power: float = 0.8
    """Target power of the power analysis."""
    n_aa_splits: int = 200
    """Random half splits of the reference arm in the A/A check."""
    random_state: int = 0
    """Seed of every bootstrap and split generator."""
    equivalence_margins: Mapping[str, float] = field(default_factory=dict)
    """Metric name -> TOST margin in metric units; metrics without a margin get no TOST."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "reference": self.reference,
            "paired": self.paired,
            "correction": self.correction,
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
            "alpha": self.alpha,
            "power": self.power,
            "n_aa_splits": self.n_aa_splits,
            "random_state": self.random_state,
            "equivalence_margins": {k: float(v) for k, v in self.equivalence_margins.items()},
        }


def _design_sentence(paired: bool | None) -> str:
    if paired is None:
        return (
            "An arm is analysed as paired with the reference when both share the same set of "
            "seeds for the metric, and as unpaired otherwise."
        )
    return (
        "All arms are analysed as paired with the reference, seed i against seed i."
        if paired
        else ("All arms are analysed as unpaired (independent) samples.")
    )


def methods_text(options: AnalysisOptions | None = None) -> str:
    """Write one English paragraph that a report's methods section can print verbatim.

    Args:
        options: the analysis settings; defaults to `AnalysisOptions()`.

    Returns:
        The paragraph, stating the tests, corrections, intervals and conventions used.
    """
    options = options or AnalysisOptions()
    level = f"{options.confidence:.0%}"
    correction = CORRECTION_NAMES.get(options.correction, options.correction)
    margins = ", ".join(
        f"{metric} ±{margin:g}" for metric, margin in options.equivalence_margins.items()
    )
    equivalence = (
        f"Equivalence was tested with two one-sided t-tests (TOST) at margins {margins} "
        "(metric units). "
        if margins
        else "No equivalence margins were set, so no equivalence tests were run. "
    )
    sentences = [
        f"Each initializer was compared with the reference arm '{options.reference}' per "
        "scenario and metric. Seeds are independent draws within an arm; seed i of "
        "different arms may share randomness (teacher, data order), which pairing uses. "
        f"{_design_sentence(options.paired)} ",
        "Paired arms were compared with the Wilcoxon signed-rank test (zero differences dropped, "
        "zero_method='wilcox'; average ranks for ties) and the paired t-test; unpaired arms with "
        "Welch's t-test and the Mann-Whitney U test. All tests are two-sided. Rank-test p-values "
        "follow SciPy's method='auto': the Wilcoxon p-value is exact for n <= 50 without zeros "
        "or ties, an exact sign-flip permutation p-value for n <= 13 otherwise, and a normal "
        "approximation with tie and continuity correction beyond; the Mann-Whitney p-value is "
        "exact when one arm has at most 8 seeds and there are no ties, and a normal "
        "approximation with tie and continuity correction otherwise. ",
        f"P-values were adjusted with {correction} "
        "within each family, a family being one scenario, metric and test against the reference. ",
        f"Effect sizes are Hedges' g (exact small-sample factor; Cohen's d_z for paired arms), "
        "Cliff's delta, the Vargha-Delaney A12 and the probability of improvement (ties count "
        f"one half), with {level} BCa bootstrap intervals ({options.n_resamples} resamples, "
        "pairs resampled together when paired); the mean, median and interquartile mean "
        "(scipy.stats.trim_mean with 25% trimmed at each end) of every arm carry the same "
        "intervals. ",
        "Differences in spread were tested with the Brown-Forsythe (Levene, median-centred) and "
        "Fligner-Killeen tests, and the ratio of standard deviations carries an F-distribution "
        "interval for unpaired arms and a paired BCa bootstrap interval for paired arms. ",
        "Steps to the accuracy threshold were analysed as right-censored survival times with "
        "Kaplan-Meier curves (Greenwood variance, log(-log) pointwise intervals) and the "
        "log-rank test; the median is the first step at which the estimated share of seeds "
        "below the threshold falls strictly under one half, with an interval from inverting "
        "z-tests on the log(-log) scale. ",
        "Across scenarios, initializers were ranked per scenario by their mean over seeds and "
        "compared with the Friedman test and the Nemenyi post-hoc test at "
        f"alpha = {options.alpha:g} "
        "(critical difference after Demšar, 2006). ",
        f"Power analysis reports the smallest effect detectable with {options.power:.0%} power at "
        f"two-sided alpha = {options.alpha:g} and the seeds needed at the observed effect. ",
        equivalence,
        f"Diverged seeds are reported per arm as a failure rate with a {level} Wilson interval, "
        "and non-finite values were dropped (pairwise for paired analyses) and counted. ",
        f"As an A/A check, the reference arm's seeds were split at random into halves "
        f"{options.n_aa_splits} times and the halves compared with the unpaired tests, giving "
        f"the observed false-positive rate at alpha = {options.alpha:g}.",
    ]
    return "".join(sentences)
