"""Ranking initializers across scenarios: Friedman test, Nemenyi post-hoc, critical difference.

Follows Demšar (2006), "Statistical Comparisons of Classifiers over Multiple Data Sets",
JMLR 7:1-30: rank the initializers within each scenario (rank 1 = best, ties get the mean
rank), average the ranks, test them with the Friedman test, and call two initializers
different when their average ranks differ by at least the critical difference
CD = q_alpha * sqrt(k (k + 1) / (6 N)), with q_alpha the studentized range quantile for k
groups and infinite degrees of freedom divided by sqrt(2).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from reports.core import finite_or_none, quiet_numerics

MIN_BLOCKS = 2
MIN_TREATMENTS = 3


@dataclass(frozen=True)
class RankingResult:
    """Average ranks, the Friedman test and the data for a critical-difference diagram.

    `average_ranks` maps initializer to its mean rank (1 = best) over the `n_blocks`
    scenarios. `cliques` lists the maximal groups of initializers, in rank order, whose
    average ranks all lie within less than `cd` of each other (the bars of a CD diagram).
    `pairwise_p` maps "a vs b" to the Nemenyi p-value. `dropped` names the initializers
    left out because a scenario lacks them. Numbers are None when `not_testable` is set.
    """

    average_ranks: dict[str, float]
    n_blocks: int
    n_initializers: int
    statistic: float | None
    p_value: float | None
    iman_davenport_f: float | None
    iman_davenport_p: float | None
    alpha: float
    q_alpha: float | None
    cd: float | None
    cliques: tuple[tuple[str, ...], ...]
    pairwise_p: dict[str, float]
    dropped: tuple[str, ...]
    method: str
    not_testable: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the same fields."""
        return {
            "average_ranks": {name: float(rank) for name, rank in self.average_ranks.items()},
            "n_blocks": self.n_blocks,
            "n_initializers": self.n_initializers,
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "iman_davenport_f": finite_or_none(self.iman_davenport_f),
            "iman_davenport_p": finite_or_none(self.iman_davenport_p),
            "alpha": self.alpha,
            "q_alpha": finite_or_none(self.q_alpha),
            "cd": finite_or_none(self.cd),
            "cliques": [list(clique) for clique in self.cliques],
            "pairwise_p": {pair: finite_or_none(p) for pair, p in self.pairwise_p.items()},
            "dropped": list(self.dropped),
            "method": self.method,
            "not_testable": self.not_testable,
        }


METHOD = (
    "Friedman chi-squared with tie correction (scipy.stats.friedmanchisquare) and the "
    "Iman-Davenport F; Nemenyi post-hoc with q_alpha = studentized_range.ppf(1 - alpha, k, inf) "
    "/ sqrt(2) and CD = q_alpha * sqrt(k (k + 1) / (6 N)) (Demšar 2006); ranks within each "
    "scenario, 1 = best, ties share the mean rank"
)


def critical_difference(
    n_initializers: int, n_blocks: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Return (q_alpha, CD) of the Nemenyi test for k initializers over N blocks (Demšar 2006)."""
    q_alpha = scipy.stats.studentized_range.ppf(1 - alpha, n_initializers, np.inf) / np.sqrt(2)
    cd = q_alpha * np.sqrt(n_initializers * (n_initializers + 1) / (6 * n_blocks))
    return float(q_alpha), float(cd)


def cliques_within(average_ranks: dict[str, float], cd: float) -> tuple[tuple[str, ...], ...]:
    """Return the maximal runs of rank-sorted initializers whose ranks span less than `cd`."""
    ordered = sorted(average_ranks, key=lambda name: average_ranks[name])
    cliques: list[tuple[str, ...]] = []
    last_end = -1
    for start, name in enumerate(ordered):
        end = start
        while end + 1 < len(ordered) and average_ranks[ordered[end + 1]] - average_ranks[name] < cd:
            end += 1
        if end > start and end > last_end:
            cliques.append(tuple(ordered[start : end + 1]))
            last_end = end
    return tuple(cliques)


def friedman_nemenyi(
    table: pd.DataFrame, higher_is_better: bool, alpha: float = 0.05
) -> RankingResult:
    """Rank initializers over scenarios with the Friedman test and Nemenyi post-hoc.

    Estimator: see the module docstring (Demšar 2006). Assumes the scenarios (blocks) are
    independent and each cell is one summary value (the analysis uses the mean over seeds).

    Args:
        table: shape `(num_scenarios, num_initializers)`, rows are scenarios, columns are
            initializers. An initializer with a missing or non-finite cell is dropped.
        higher_is_better: direction of the metric; rank 1 goes to the best value.
        alpha: level of the Nemenyi critical difference.

    Returns:
        A RankingResult; not testable when fewer than 2 scenarios or 3 initializers remain,
        or when every scenario ranks all initializers equal.
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"`table` must be a pandas DataFrame (rows = scenarios, columns = initializers), "
            f"got {type(table).__name__}; build it with DataFrame.pivot_table."
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be strictly between 0 and 1, got {alpha!r}.")

    values = table.apply(pd.to_numeric, errors="coerce").astype(float)
    complete = np.isfinite(values.to_numpy()).all(axis=0)
    dropped = tuple(str(name) for name in values.columns[~complete])
    values = values.loc[:, complete]
    n_blocks, n_initializers = values.shape

    ranks = (
        _ranks(values.to_numpy(), higher_is_better) if n_blocks else np.empty((0, n_initializers))
    )
    average_ranks = (
        {str(name): float(rank) for name, rank in zip(values.columns, ranks.mean(axis=0))}
        if n_blocks
        else {}
    )

    reason = _untestable_reason(n_blocks, n_initializers, ranks)
    if reason is not None:
        return RankingResult(
            average_ranks,
            n_blocks,
            n_initializers,
            None,
            None,
            None,
            None,
            alpha,
            None,
            None,
            (),
            {},
            dropped,
            METHOD,
            reason,
        )
    return _tested(values, average_ranks, dropped, alpha)


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    oriented = -values if higher_is_better else values
    return scipy.stats.rankdata(oriented, axis=1)


def _untestable_reason(n_blocks: int, n_initializers: int, ranks: np.ndarray) -> str | None:
    if n_blocks < MIN_BLOCKS:
        return f"only {n_blocks} scenario(s) with complete data (at least {MIN_BLOCKS} are needed)"
    if n_initializers < MIN_TREATMENTS:
        return (
            f"only {n_initializers} initializer(s) present in every scenario "
            f"(at least {MIN_TREATMENTS} are needed)"
        )
    if np.all(ranks == ranks[:, :1]):
        return "every scenario ranks all initializers equal (all ties)"
    return None


def _tested(
    values: pd.DataFrame, average_ranks: dict[str, float], dropped: tuple[str, ...], alpha: float
) -> RankingResult:
    n_blocks, n_initializers = values.shape
    with quiet_numerics():
        statistic, p_value = scipy.stats.friedmanchisquare(*values.to_numpy().T)

    # Iman-Davenport F (Demšar 2006, section 3.2.2); undefined when chi-squared is maximal.
    denominator = n_blocks * (n_initializers - 1) - statistic
    f_statistic = f_p = None
    if denominator > 0:
        f_statistic = (n_blocks - 1) * statistic / denominator
        f_p = scipy.stats.f.sf(
            f_statistic, n_initializers - 1, (n_initializers - 1) * (n_blocks - 1)
        )

    q_alpha, cd = critical_difference(n_initializers, n_blocks, alpha)
    scale = np.sqrt(n_initializers * (n_initializers + 1) / (6 * n_blocks))
    pairwise_p = {}
    for a, b in itertools.combinations(average_ranks, 2):
        z = abs(average_ranks[a] - average_ranks[b]) / scale
        pairwise_p[f"{a} vs {b}"] = float(
            scipy.stats.studentized_range.sf(z * np.sqrt(2), n_initializers, np.inf)
        )

    return RankingResult(
        average_ranks,
        n_blocks,
        n_initializers,
        float(statistic),
        float(p_value),
        finite_or_none(f_statistic),
        finite_or_none(f_p),
        alpha,
        q_alpha,
        cd,
        cliques_within(average_ranks, cd),
        pairwise_p,
        dropped,
        METHOD,
    )
