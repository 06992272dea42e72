"""Validation of the tidy results table at the boundary of `analyze`."""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("scenario", "initializer", "seed", "metric", "value")
KEY_COLUMNS = ("scenario", "initializer", "seed", "metric")


def closest(name: str, choices: list[str]) -> str:
    matches = difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def _plain(value: object) -> str:
    """Repr of a cell without NumPy's type wrapper, e.g. 1.5 instead of np.float64(1.5)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _describe_row(row: pd.Series) -> str:
    return ", ".join(f"{column}={_plain(row[column])}" for column in KEY_COLUMNS)


def validate_results(results: pd.DataFrame) -> pd.DataFrame:
    """Check a tidy results table and return a clean copy of its five required columns.

    Raises:
        ValueError: on a missing column, an empty table, a missing name, a non-numeric value
            or seed, or a duplicated (scenario, initializer, seed, metric) key.
    """
    if not isinstance(results, pd.DataFrame):
        raise ValueError(
            f"`results` must be a pandas DataFrame, got {type(results).__name__}; "
            "load a CSV with reports.analysis.load_results_csv."
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in results.columns]
    if missing:
        raise ValueError(
            f"`results` is missing the column {missing[0]!r} (required: {list(REQUIRED_COLUMNS)}, "
            f"present: {list(results.columns)}); rename or add it."
        )
    if results.empty:
        raise ValueError("`results` has no rows; pass at least one measured value.")

    table = results.loc[:, list(REQUIRED_COLUMNS)].copy()
    for column in ("scenario", "initializer", "metric"):
        empty = table[column].isna()
        if empty.any():
            row = table[empty].iloc[0]
            raise ValueError(
                f"`results` column {column!r} is empty in the row {_describe_row(row)}; "
                "fill in the name or drop the row."
            )
        table[column] = table[column].astype(str)

    table["value"] = _numeric_column(table, "value")
    table["seed"] = _seed_column(table)
    _check_duplicates(table)
    return table


def _numeric_column(table: pd.DataFrame, column: str) -> pd.Series:
    converted = pd.to_numeric(table[column], errors="coerce")
    bad = converted.isna() & table[column].notna()
    if bad.any():
        row = table[bad].iloc[0]
        raise ValueError(
            f"`results` column {column!r} must be numeric, got {_plain(row[column])} in the row "
            f"{_describe_row(row)}; store numbers (NaN is allowed for a missing value)."
        )
    return converted.astype(float)


def _seed_column(table: pd.DataFrame) -> pd.Series:
    seeds = pd.to_numeric(table["seed"], errors="coerce")
    bad = seeds.isna() | (seeds != seeds.round())
    if bad.any():
        row = table[bad].iloc[0]
        raise ValueError(
            f"`results` column 'seed' must hold integers, got {_plain(row['seed'])} in the row "
            f"{_describe_row(row)}; store the seed index as an integer."
        )
    return seeds.astype(np.int64)


def _check_duplicates(table: pd.DataFrame) -> None:
    duplicated = table.duplicated(list(KEY_COLUMNS), keep=False)
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(
            f"`results` has {int(duplicated.sum())} rows that share a (scenario, initializer, "
            f"seed, metric) key, e.g. {_describe_row(row)}; keep one row per key, for example "
            "by filtering to one learning rate per initializer before calling analyze."
        )


def load_results_csv(path: str | Path) -> pd.DataFrame:
    """Read a tidy results CSV and validate it with `validate_results`.

    Args:
        path: a CSV with the columns scenario, initializer, seed, metric, value.

    Returns:
        The validated table (the five required columns).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"results file {str(path)!r} was not found; pass the path of a CSV file.")
    try:
        # index_col=False with ParserWarning as an error: a row with more fields than the
        # header is rejected instead of silently turning its first fields into an index.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, index_col=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError,
            UnicodeDecodeError) as error:
        raise ValueError(f"results file {str(path)!r} is not a readable UTF-8 CSV ({error}). "
                         f"Write one header line (scenario,initializer,seed,metric,value) and "
                         f"one row per value, all with the same number of fields.") from error
    validated = validate_results(table)
    if "learning_rate" in table.columns:
        # Not used by the statistics; kept so that the report can show each arm's rate.
        validated["learning_rate"] = pd.to_numeric(table.loc[validated.index, "learning_rate"],
                                                   errors="coerce")
    return validated
