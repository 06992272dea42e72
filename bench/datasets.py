"""Scenarios: a simple data set D1 for the teacher, a harder D2 for the student.

All data is generated or shipped locally. MNIST-1D comes from the `mnist1d` package's
generator (`make_dataset`, never `get_dataset`, which downloads). That generator reseeds
NumPy's and Python's global random state, so every call here saves and restores both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from bench.errors import unknown_name_error

VALIDATION_FRACTION = 0.2
"""Share of D2's training split held out as validation (learning rates and thresholds)."""


@dataclass(frozen=True)
class Split:
    """Inputs `x` of shape (num_samples, num_features), float32, and labels `y`, int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class TaskData:
    """Disjoint train / validation / test splits of one data set."""

    train: Split
    val: Split
    test: Split
    num_classes: int

    def to(self, device: str) -> "TaskData":
        return TaskData(self.train.to(device), self.val.to(device), self.test.to(device),
                        self.num_classes)


@dataclass(frozen=True)
class ScenarioSpec:
    """A D1 → D2 transfer problem: data, architectures and the default D2 training size."""

    name: str
    description: str
    teacher_sizes: tuple[int, ...]
    """Layer widths of the teacher MLP, input first, output last."""
    student_sizes: tuple[int, ...]
    d1_classes: tuple[int, ...]
    """The student's label for each teacher output: teacher class k is student class d1_classes[k]."""
    default_d2_train_size: int
    max_d2_train_size: int
    builder: str = field(repr=False, default="")


@dataclass(frozen=True)
class ScenarioData:
    """The data of one scenario instance: D1 (teacher labels) and D2 (student labels)."""

    spec: ScenarioSpec
    d1: TaskData
    d2: TaskData
    d2_train_size: int


SCENARIOS: dict[str, ScenarioSpec] = {
    "mnist1d-subset": ScenarioSpec(
        name="mnist1d-subset",
        description="MNIST-1D: D1 = classes 0-4 (generator seed 1), D2 = all 10 classes "
        "(generator seed 2)",
        teacher_sizes=(40, 128, 64, 32, 5),
        student_sizes=(40, 256, 128, 64, 10),
        d1_classes=(0, 1, 2, 3, 4),
        default_d2_train_size=1000,
        max_d2_train_size=8000,
        builder="mnist1d",
    ),
    "mnist1d-deeper": ScenarioSpec(
        name="mnist1d-deeper",
        description="mnist1d-subset with a student one hidden layer deeper than the teacher "
        "(transfer needs identity layers)",
        teacher_sizes=(40, 128, 64, 32, 5),
        student_sizes=(40, 256, 128, 64, 64, 10),
        d1_classes=(0, 1, 2, 3, 4),
        default_d2_train_size=1000,
        max_d2_train_size=8000,
        builder="mnist1d",
    ),
    "digits-subset": ScenarioSpec(
        name="digits-subset",
        description="scikit-learn 8x8 digits: D1 = classes 0-4, D2 = all 10 classes, at most "
        "200 training samples",
        teacher_sizes=(64, 64, 32, 5),
        student_sizes=(64, 128, 64, 10),
        d1_classes=(0, 1, 2, 3, 4),
        default_d2_train_size=200,
        max_d2_train_size=200,
        builder="digits",
    ),
}


def get_scenario(name: str) -> ScenarioSpec:
    """Return the scenario registered under `name`; unknown names raise with the choices."""
    if name not in SCENARIOS:
        raise unknown_name_error("scenario", name, SCENARIOS)
    return SCENARIOS[name]


def validate_d2_train_size(spec: ScenarioSpec, d2_train_size: int) -> None:
    """Raise ValueError unless `d2_train_size` fits the scenario's data."""
    low = 10
    if not low <= d2_train_size <= spec.max_d2_train_size:
        raise ValueError(
            f"d2_train_size={d2_train_size} is invalid for scenario {spec.name!r}: it must lie "
            f"in [{low}, {spec.max_d2_train_size}] (the training data this scenario has). "
            f"Choose a size in that range."
        )


# ---------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------


def _to_split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))


def _holdout(x: np.ndarray, y: np.ndarray, fraction: float) -> tuple[Split, Split]:
    """Split the first (1 - fraction) of the rows into train, the rest into validation.

    The inputs are already shuffled by their generator, so a prefix split is a random split.
    """
    num_val = int(round(len(y) * fraction))
    cut = len(y) - num_val
    return _to_split(x[:cut], y[:cut]), _to_split(x[cut:], y[cut:])


def _restrict(x: np.ndarray, y: np.ndarray, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Keep the rows whose label is in `classes` and relabel class classes[k] as k."""
    keep = np.isin(y, classes)
    relabel = {c: k for k, c in enumerate(classes)}
    return x[keep], np.array([relabel[int(c)] for c in y[keep]], dtype=np.int64)


def _mnist1d(num_samples: int, generator_seed: int, **overrides) -> dict:
    """Call the MNIST-1D generator without leaking its reseeding of the global RNGs."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = generator_seed
    for key, value in overrides.items():
        setattr(args, key, value)

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@lru_cache(maxsize=8)
def _mnist1d_pools() -> tuple[dict, dict]:
    # 10,000 samples each: 8,000 for training pools and 2,000 for test (the generator's split).
    return _mnist1d(10_000, generator_seed=1), _mnist1d(10_000, generator_seed=2)


def _build_mnist1d(spec: ScenarioSpec, d2_train_size: int) -> tuple[TaskData, TaskData]:
    d1_raw, d2_raw = _mnist1d_pools()

    x1, y1 = _restrict(d1_raw["x"], d1_raw["y"], spec.d1_classes)
    x1_test, y1_test = _restrict(d1_raw["x_test"], d1_raw["y_test"], spec.d1_classes)
    d1_train, d1_val = _holdout(x1, y1, VALIDATION_FRACTION)
    d1 = TaskData(d1_train, d1_val, _to_split(x1_test, y1_test), len(spec.d1_classes))

    x2, y2 = d2_raw["x"][:d2_train_size], d2_raw["y"][:d2_train_size]
    d2_train, d2_val = _holdout(x2, y2, VALIDATION_FRACTION)
    d2 = TaskData(d2_train, d2_val, _to_split(d2_raw["x_test"], d2_raw["y_test"]), 10)
    return d1, d2


def _build_digits(spec: ScenarioSpec, d2_train_size: int) -> tuple[TaskData, TaskData]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    x_all = digits.data[order].astype(np.float64)
    y_all = digits.target[order].astype(np.int64)

    # Half of the images form D1's pool and half D2's, so D1 and D2 share no image.
    half = len(y_all) // 2
    x1_pool, y1_pool = _restrict(x_all[:half], y_all[:half], spec.d1_classes)
    x2_pool, y2_pool = x_all[half:], y_all[half:]

    # Standardize with the D2 training pool's statistics only (no test data involved).
    mean, std = x2_pool[:spec.max_d2_train_size].mean(), x2_pool[:spec.max_d2_train_size].std()
    x1_pool, x2_pool = (x1_pool - mean) / std, (x2_pool - mean) / std

    num_d1_test = len(y1_pool) // 5
    d1_train, d1_val = _holdout(x1_pool[num_d1_test:], y1_pool[num_d1_test:], VALIDATION_FRACTION)
    d1 = TaskData(d1_train, d1_val, _to_split(x1_pool[:num_d1_test], y1_pool[:num_d1_test]),
                  len(spec.d1_classes))

    d2_train, d2_val = _holdout(x2_pool[:d2_train_size], y2_pool[:d2_train_size],
                                VALIDATION_FRACTION)
    test = _to_split(x2_pool[spec.max_d2_train_size:], y2_pool[spec.max_d2_train_size:])
    return d1, TaskData(d2_train, d2_val, test, 10)


_BUILDERS = {"mnist1d": _build_mnist1d, "digits": _build_digits}


def load_scenario(name: str, d2_train_size: int | None = None) -> ScenarioData:
    """Build the data of scenario `name` with `d2_train_size` D2 samples (train + validation).

    Args:
        name: a registered scenario name, e.g. "mnist1d-subset".
        d2_train_size: D2 training size before the validation hold-out; the scenario's
            default when None. 20% of it is held out as validation.

    Returns:
        The D1 and D2 splits, on the CPU.
    """
    spec = get_scenario(name)
    size = spec.default_d2_train_size if d2_train_size is None else int(d2_train_size)
    validate_d2_train_size(spec, size)
    d1, d2 = _BUILDERS[spec.builder](spec, size)
    return ScenarioData(spec, d1, d2, size)
