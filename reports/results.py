"""Tidy results from a run directory: one row per scenario × initializer × seed × metric.

Columns of `results.csv` (documented in the report's README and docs/results-format.md):

    scenario       scenario instance, e.g. "mnist1d-subset" or "mnist1d-subset@n2000"
    initializer    registry name, e.g. "copy-exact"
    learning_rate  D2 learning rate of the row (the initializer's best on validation)
    seed           seed index; the same index is paired across initializers
    metric         namespaced name, e.g. "test/accuracy", "convergence/steps_to_threshold"
    value          float; empty when not defined (e.g. a diverged seed's accuracy)
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.metrics import steps_to_threshold

SELECTION_METRIC = "val/accuracy"
"""Each initializer is reported at the learning rate with the best mean of this metric."""

THRESHOLD_CURVE = "val/accuracy"
"""Convergence counts steps until this curve first reaches the threshold τ."""


@dataclass
class RunResults:
    """Everything the report needs, read from a run's results database."""

    metrics: pd.DataFrame
    """All learning rates: scenario, initializer, learning_rate, seed, metric, value."""
    curves: pd.DataFrame
    """All learning rates: scenario, initializer, learning_rate, seed, step, metric, value."""
    teachers: pd.DataFrame
    cells: pd.DataFrame
    selected: pd.DataFrame
    """Chosen learning rate per scenario × initializer, with its mean validation accuracy."""
    thresholds: dict[str, float]
    """τ per scenario: the reference arm's median final validation accuracy."""
    tidy: pd.DataFrame
    """results.csv: the selected learning rate only, convergence metrics added."""


def read_tables(db_path: Path) -> dict[str, pd.DataFrame]:
    if not Path(db_path).exists():
        raise FileNotFoundError(f"{db_path} not found: the run has no results database yet. "
                                f"Run `python -m bench run --out DIR` first.")
    with sqlite3.connect(db_path) as db:
        return {name: pd.read_sql_query(f"SELECT * FROM {name}", db)
                for name in ("metrics", "curves", "teachers", "cells")}


def select_learning_rates(metrics: pd.DataFrame) -> pd.DataFrame:
    """Pick, per scenario × initializer, the learning rate with the best mean validation accuracy.

    Diverged seeds count as accuracy 0 here, so a rate that diverges often is not chosen
    for the few seeds that survived. Ties go to the smaller rate.
    """
    rows = metrics[metrics.metric == SELECTION_METRIC].copy()
    rows["value"] = rows["value"].fillna(0.0)
    means = rows.groupby(["scenario", "initializer", "learning_rate"], as_index=False)["value"].mean()
    means = means.sort_values(["scenario", "initializer", "value", "learning_rate"],
                              ascending=[True, True, False, True])
    best = means.groupby(["scenario", "initializer"], as_index=False).first()
    return best.rename(columns={"value": "mean_val_accuracy"})


def convergence_rows(curves: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """Return steps-to-threshold (censored at the budget) and whether τ was reached, per seed."""
    rows = []
    curve = curves[curves.metric == THRESHOLD_CURVE]
    for (scenario, name, lr, seed), group in curve.groupby(
            ["scenario", "initializer", "learning_rate", "seed"]):
        group = group.sort_values("step")
        steps, reached = steps_to_threshold(group.step.to_numpy(), group.value.to_numpy(float),
                                            thresholds[scenario])
        base = {"scenario": scenario, "initializer": name, "learning_rate": lr, "seed": seed}
        rows.append({**base, "metric": "convergence/steps_to_threshold", "value": steps})
        rows.append({**base, "metric": "convergence/reached_threshold", "value": float(reached)})
    return pd.DataFrame(rows, columns=["scenario", "initializer", "learning_rate", "seed",
                                       "metric", "value"])


def load_results(run_dir: Path, reference: str) -> RunResults:
    """Read a run directory and derive the tidy table at each initializer's best rate."""
    tables = read_tables(Path(run_dir) / "results.sqlite")
    metrics, curves = tables["metrics"], tables["curves"]
    if metrics.empty:
        raise ValueError(f"{run_dir} has no finished cell yet: nothing to report.")

    selected = select_learning_rates(metrics)
    keys = ["scenario", "initializer", "learning_rate"]
    chosen = metrics.merge(selected[keys], on=keys)
    chosen_curves = curves.merge(selected[keys], on=keys)

    thresholds = {}
    for scenario, rows in chosen[chosen.metric == SELECTION_METRIC].groupby("scenario"):
        arm = rows[rows.initializer == reference]
        source = arm if not arm.empty else rows
        thresholds[scenario] = float(np.nanmedian(source.value.to_numpy(float)))

    tidy = pd.concat([chosen, convergence_rows(chosen_curves, thresholds)], ignore_index=True)
    tidy = tidy.sort_values(["scenario", "initializer", "metric", "seed"]).reset_index(drop=True)
    return RunResults(metrics, curves, tables["teachers"], tables["cells"], selected,
                      thresholds, tidy[["scenario", "initializer", "learning_rate", "seed",
                                        "metric", "value"]])
