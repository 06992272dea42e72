"""Scenarios: disjoint splits, D2 size parameter, no leak of the global random state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from bench.datasets import _mnist1d, load_scenario


def _rows(split):
    return {tuple(row) for row in split.x.numpy().round(6).tolist()}


def test_digits_splits_disjoint(digits):
    """Check that train, validation and test share no input, within and across D1 and D2."""
    splits = [digits.d1.train, digits.d1.val, digits.d1.test,
              digits.d2.train, digits.d2.val, digits.d2.test]
    for i in range(len(splits)):
        for j in range(i + 1, len(splits)):
            assert not (_rows(splits[i]) & _rows(splits[j])), (i, j)


def test_digits_d1_classes(digits):
    """Check that D1 holds only its classes, relabelled 0..4, and D2 all 10."""
    assert set(digits.d1.train.y.tolist()) == {0, 1, 2, 3, 4}
    assert set(digits.d2.test.y.tolist()) == set(range(10))


def test_d2_train_size_parameter():
    """Check that the D2 training size sets train + validation with a 20% hold-out."""
    data = load_scenario("digits-subset", d2_train_size=100)
    assert len(data.d2.train) == 80
    assert len(data.d2.val) == 20


def test_d2_train_size_invalid():
    """Check that an impossible D2 size names the value and the valid range."""
    with pytest.raises(ValueError, match=r"d2_train_size=5000 is invalid.*\[10, 200\]"):
        load_scenario("digits-subset", d2_train_size=5000)


def test_unknown_scenario_lists_choices():
    """Check that an unknown scenario lists the valid names and the closest."""
    with pytest.raises(KeyError, match="Did you mean 'digits-subset'.*mnist1d-subset"):
        load_scenario("digit-subset")


def test_mnist1d_generator_keeps_global_state():
    """Check that generating MNIST-1D leaves NumPy's and Python's global RNG untouched."""
    np.random.seed(123)
    random.seed(123)
    expected_numpy, expected_python = np.random.rand(), random.random()

    np.random.seed(123)
    random.seed(123)
    _mnist1d(200, generator_seed=1)
    assert np.random.rand() == expected_numpy
    assert random.random() == expected_python


def test_mnist1d_d1_d2_differ():
    """Check that D1 and D2 come from different generator seeds."""
    d1 = _mnist1d(200, generator_seed=1)
    d2 = _mnist1d(200, generator_seed=2)
    assert not np.allclose(d1["x"][:10], d2["x"][:10])
    assert torch.is_tensor(torch.as_tensor(d1["x"]))
