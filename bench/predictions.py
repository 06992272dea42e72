"""Test-set class probabilities per seed, and how much they vary across seeds.

Each cell writes its seeds' test-set probabilities to

    RUN_DIR/predictions/<scenario>/<initializer>/lr<learning rate>-chunk<index>.npz

before the cell is committed, so a resumed run rewrites the file of every cell it redoes.
`load_predictions` stacks the chunks of one scenario × initializer × learning rate in seed
order. The statistics below need all seeds of an arm at once and are therefore computed by
the report, not per seed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.stats
import torch

from bench.models import MLPSpec, Params, apply_seeds
from bench.store import CellKey


MIN_BOOTSTRAP_SEEDS = 5
"""Minimum number of seeds for a bootstrap interval. With 4 seeds, 1.6% of resamples repeat
one seed and have no pair of distinct seeds, which drags the interval's lower end to 0."""


@dataclass(frozen=True)
class Predictions:
    """The test-set predictions of every seed of one arm, in seed order."""

    seeds: np.ndarray
    """(S,) seed indices."""
    probabilities: np.ndarray
    """(S, N, num_classes) float32 softmax probabilities (stored as float16)."""
    labels: np.ndarray
    """(S, N) predicted classes: the argmax of the float32 logits."""
    diverged: np.ndarray
    """(S,) True for seeds whose training diverged."""


def predictions_path(run_dir: Path, key: CellKey) -> Path:
    """Return the file that stores the predictions of cell `key`."""
    folder = Path(run_dir) / "predictions" / key.scenario / key.initializer
    return folder / f"lr{key.learning_rate:g}-chunk{key.chunk}.npz"


@torch.no_grad()
def predict_probabilities(spec: MLPSpec, params: Params, x: torch.Tensor,
                     batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Return every seed's softmax probabilities (S, N, classes) and argmax labels (S, N)."""
    parts = [apply_seeds(spec, params, x[start:start + batch_size])
             for start in range(0, x.shape[0], batch_size)]
    logits = torch.cat(parts, dim=1)
    return torch.softmax(logits, dim=-1), logits.argmax(-1)


def save_predictions(path: Path, seeds: list[int], probabilities: torch.Tensor,
                     labels: torch.Tensor, diverged: torch.Tensor) -> None:
    """Write one cell's predictions atomically (float16 probabilities, compressed).

    At 16 seeds × 2,000 test samples × 10 classes the file is about 0.5 MB.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(
            handle, seeds=np.asarray(seeds, dtype=np.int64),
            probabilities=probabilities.cpu().numpy().astype(np.float16),
            labels=labels.cpu().numpy().astype(np.int16),
            diverged=diverged.cpu().numpy().astype(bool))
    os.replace(tmp, path)


def load_predictions(run_dir: Path, scenario: str, initializer: str,
                     learning_rate: float) -> Predictions | None:
    """Stack every stored chunk of one arm in seed order; None when no chunk is stored."""
    folder = Path(run_dir) / "predictions" / scenario / initializer
    files = sorted(folder.glob(f"lr{learning_rate:g}-chunk*.npz"))
    if not files:
        return None
    parts = []
    for file in files:
        with np.load(file) as data:
            parts.append({name: data[name] for name in data.files})
    stacked = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    order = np.argsort(stacked["seeds"], kind="stable")
    return Predictions(seeds=stacked["seeds"][order],
                       probabilities=stacked["probabilities"][order].astype(np.float32),
                       labels=stacked["labels"][order].astype(np.int64),
                       diverged=stacked["diverged"][order])


# ---------------------------------------------------------------------------------------
# Statistics across seeds
# ---------------------------------------------------------------------------------------


def _check_stack(array: np.ndarray, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != ndim or array.shape[0] < 2:
        shape = "(num_seeds, num_samples, num_classes)" if ndim == 3 else "(num_seeds, num_samples)"
        raise ValueError(f"{name} has shape {array.shape}: expected {shape} with at least 2 "
                         f"seeds. Pass the predictions of two or more seeds.")
    return array


def pairwise_variance(probabilities: np.ndarray) -> np.ndarray:
    """Return V[i, j] = mean_n ½·Σ_c (p_inc − p_jnc)², shape (S, S).

    The unbiased variance of S numbers equals the mean of ½(x_i − x_j)² over ordered pairs
    i ≠ j, so the mean of V off the diagonal is `prediction_variance`.

    Args:
        probabilities: (S, N, num_classes).
    """
    p = _check_stack(probabilities, "probabilities", 3).astype(np.float64)
    squares = np.einsum("inc,inc->i", p, p) / p.shape[1]
    cross = np.einsum("inc,jnc->ij", p, p) / p.shape[1]
    return np.maximum((squares[:, None] + squares[None, :]) / 2 - cross, 0.0)


def pairwise_disagreement(labels: np.ndarray) -> np.ndarray:
    """Return D[i, j] = share of test samples where seeds i and j predict different labels.

    Args:
        labels: (S, N) integer class labels.

    Returns:
        (S, S), zero on the diagonal.
    """
    labels = _check_stack(labels, "labels", 2)
    one_hot = (labels[:, :, None] == np.unique(labels)[None, None, :]).astype(np.float64)
    return 1.0 - np.einsum("inc,jnc->ij", one_hot, one_hot) / labels.shape[1]


def _off_diagonal_mean(matrix: np.ndarray) -> float:
    size = matrix.shape[0]
    return float((matrix.sum() - np.trace(matrix)) / (size * (size - 1)))


def prediction_variance(probabilities: np.ndarray) -> float:
    """Return the prediction variance across seeds: mean_n Σ_c Var_s(p_snc).

    Var_s is the unbiased variance across the S seeds (ddof = 1) of one class probability
    on one test sample; it is summed over classes and averaged over test samples.

    Args:
        probabilities: (S, N, num_classes), S ≥ 2.
    """
    return _off_diagonal_mean(pairwise_variance(probabilities))


def disagreement_rate(labels: np.ndarray) -> float:
    """Return the share of (seed pair, test sample) combinations with different labels.

    Args:
        labels: (S, N), S ≥ 2; pairs are unordered, i < j.
    """
    return _off_diagonal_mean(pairwise_disagreement(labels))


def seed_bootstrap_ci(pairwise: np.ndarray, *, confidence: float = 0.95,
                      n_resamples: int = 9999,
                      random_state: int = 0) -> tuple[float, float] | None:
    """Return a BCa bootstrap interval of a pairwise statistic, resampling seeds.

    A resample draws S seeds with replacement and averages `pairwise` over the pairs of
    draws that come from different seeds. Pairs of a seed with its own copy are left out
    because they would count as perfect agreement. A resample of one seed repeated S times
    has no such pair and counts as 0, the value of a seed against itself.

    Args:
        pairwise: (S, S) symmetric matrix from `pairwise_variance` or `pairwise_disagreement`.

    Returns:
        (low, high), or None when S < MIN_BOOTSTRAP_SEEDS or every pair has the same value.
    """
    size = pairwise.shape[0]
    off_diagonal = pairwise[~np.eye(size, dtype=bool)]
    if size < MIN_BOOTSTRAP_SEEDS or np.all(off_diagonal == off_diagonal[0]):
        return None

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:
        index = np.moveaxis(index.astype(np.int64), axis, -1)
        distinct = index[..., :, None] != index[..., None, :]
        total = np.where(distinct, pairwise[index[..., :, None], index[..., None, :]], 0.0)
        count = distinct.sum((-2, -1))
        return np.divide(total.sum((-2, -1)), count, out=np.zeros(count.shape),
                         where=count > 0)

    with warnings.catch_warnings():
        # A degenerate jackknife makes BCa warn and return NaN; the NaN check below handles it.
        warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
        result = scipy.stats.bootstrap((np.arange(size),), statistic, vectorized=True,
                                       confidence_level=confidence, n_resamples=n_resamples,
                                       method="BCa", random_state=random_state)
    low, high = result.confidence_interval
    return None if not (np.isfinite(low) and np.isfinite(high)) else (float(low), float(high))
