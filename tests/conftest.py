"""Shared fixtures: small data and trained teachers, built once per test session."""

from __future__ import annotations

import pytest
import torch

from bench import seeding
from bench.datasets import load_scenario
from bench.engine import Recipe, train
from bench.models import MLPSpec
from initializers.standard import torch_default


@pytest.fixture(scope="session")
def digits():
    """The digits-subset scenario (fast: 8x8 images, at most 200 D2 training samples)."""
    return load_scenario("digits-subset")


@pytest.fixture(scope="session")
def digits_teachers(digits):
    """Five digits-subset teachers (seeds 0-4), briefly trained on D1."""
    spec = MLPSpec(digits.spec.teacher_sizes)
    seeds = range(5)
    params = torch_default(spec, seeding.generators(0, "digits-subset", seeds, "teacher-init"))
    order = seeding.generators(0, "digits-subset", seeds, "teacher-order")
    result = train(spec, params, digits.d1, Recipe("adam", 3e-3, num_steps=150, eval_every=150),
                   order)
    return result.params


def allclose_message(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"max abs difference {(a - b).abs().max().item():.3g}"
