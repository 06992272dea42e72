"""The contract of every registered initializer, on digits-subset and on mnist1d-deeper.

Every initializer, built-in or plugin, is checked for shapes, dtypes, finite values and seed
independence (seed i gets the same weights at S = 2 and S = 5), and for its own claims:
exact function preservation on D1 for the function-preserving copies and growths, and no
structurally dead units.

Step counts are cut to one or two steps through `ctx.options`, because the claims checked here
do not depend on the step count. The whole file then runs in about a minute on two cores.

Dead units: `bench.metrics.dead_unit_fraction` counts a hidden unit as dead when it gets no
gradient on the batch and its incoming weights and bias are exactly zero, so that no step can
ever revive it. Units that are merely inactive on the batch (up to 4% under PyTorch's default
init, up to 14% for copies and growths, which inherit the teacher's inactive units) are not
dead: changes upstream can switch them on. Only `copy-zero` creates dead units (its new units
have zero weights and bias); a separate test checks that it does.
"""

from __future__ import annotations

import functools

import pytest
import torch

import initializers
from bench import seeding
from bench.datasets import Split, load_scenario
from bench.engine import Recipe, train
from bench.metrics import dead_unit_fraction
from bench.models import MLPSpec, apply_seeds, select_seeds
from initializers.registry import InitContext, InitResult
from initializers.standard import torch_default

SCENARIOS = ("digits-subset", "mnist1d-deeper")
SEEDS = (0, 1, 2, 3, 4)
FAST_OPTIONS = {"phi_steps": 1, "ligo_steps": 2, "gradinit_steps": 1, "metainit_steps": 1,
                "lsuv_batch_size": 1_000_000}
"""Short searches; LSUV on the whole D2 training split so the test can recompute its variance."""

FUNCTION_PRESERVING = ("copy-exact", "copy-zero", "net2net")
"""Initializers whose restricted logits on D1 equal the teacher's (Net2DeeperNet included on
the deeper scenario)."""
NAMES = sorted(initializers.available())


@functools.lru_cache(maxsize=None)
def _scenario(name: str):
    """Return the scenario's data and its five teachers, briefly trained on D1."""
    data = load_scenario(name)
    spec = MLPSpec(data.spec.teacher_sizes)
    params = torch_default(spec, seeding.generators(0, name, SEEDS, "teacher-init"))
    order = seeding.generators(0, name, SEEDS, "teacher-order")
    recipe = Recipe("adam", 3e-3, num_steps=60, eval_every=60)
    return data, train(spec, params, data.d1, recipe, order).params


def _context(scenario: str, seeds: tuple[int, ...], **options) -> InitContext:
    data, teachers = _scenario(scenario)
    return InitContext(
        student=MLPSpec(data.spec.student_sizes), teacher=MLPSpec(data.spec.teacher_sizes),
        teacher_params=select_seeds(teachers, list(seeds)), d1_classes=data.spec.d1_classes,
        d1_train=data.d1.train, d2_train=data.d2.train, seed_indices=seeds, suite_seed=0,
        scenario=scenario, options={**FAST_OPTIONS, **options},
    )


@functools.lru_cache(maxsize=None)
def _initialize(scenario: str, name: str, num_seeds: int) -> InitResult:
    return initializers.get(name)(_context(scenario, SEEDS[:num_seeds]))


def _check_batch(scenario: str) -> Split:
    data, _ = _scenario(scenario)
    return Split(data.d2.train.x[:512], data.d2.train.y[:512])


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", NAMES)
def test_contract_shapes_dtypes_finite(name, scenario):
    """Check that every parameter has the student's shape with a seed axis, float32, finite."""
    result = _initialize(scenario, name, len(SEEDS))
    student = MLPSpec(_scenario(scenario)[0].spec.student_sizes)

    assert set(result.params) == set(student.shapes())
    for key, shape in student.shapes().items():
        value = result.params[key]
        assert value.shape == (len(SEEDS), *shape), key
        assert value.dtype == torch.float32, key
        assert torch.isfinite(value).all(), key


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", NAMES)
def test_contract_seed_independence(name, scenario):
    """Check that seeds 0 and 1 get the same weights at S = 2 as at S = 5.

    Tolerance 1e-6 absolute: batched kernels may round differently at another seed count.
    """
    small = _initialize(scenario, name, 2).params
    large = select_seeds(_initialize(scenario, name, len(SEEDS)).params, [0, 1])
    for key in large:
        torch.testing.assert_close(small[key], large[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", FUNCTION_PRESERVING)
def test_contract_function_preservation(name, scenario):
    """Check that the student's logits on D1's classes equal the teacher's on D1's test split.

    Tolerance 1e-5 absolute plus 1e-5 relative: Net2Net sums replicas' float32 shares.
    """
    data, teachers = _scenario(scenario)
    ctx = _context(scenario, SEEDS)
    params = _initialize(scenario, name, len(SEEDS)).params
    student = apply_seeds(ctx.student, params, data.d1.test.x)[:, :, list(ctx.d1_classes)]
    teacher = apply_seeds(ctx.teacher, teachers, data.d1.test.x)
    torch.testing.assert_close(student, teacher, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "copy-zero"])
def test_contract_no_dead_units(name, scenario):
    """Check that no hidden unit starts dead (zero weights and bias, no gradient)."""
    student = MLPSpec(_scenario(scenario)[0].spec.student_sizes)
    params = _initialize(scenario, name, len(SEEDS)).params
    dead = dead_unit_fraction(student, params, _check_batch(scenario))
    assert (dead == 0).all(), f"dead-unit fraction per seed {dead.tolist()}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_copy_zero_has_dead_units(scenario):
    """Check that copy-zero's new hidden units are all dead, so the contract check can fail."""
    data = _scenario(scenario)[0]
    student = MLPSpec(data.spec.student_sizes)
    teacher_sizes = data.spec.teacher_sizes
    # Net2DeeperNet identity layers keep a copy of the teacher's last hidden layer alive.
    identity_units = (len(student.sizes) - len(teacher_sizes)) * teacher_sizes[-2]
    new_units = sum(student.sizes[1:-1]) - sum(teacher_sizes[1:-1]) - identity_units
    params = _initialize(scenario, "copy-zero", len(SEEDS)).params
    dead = dead_unit_fraction(student, params, _check_batch(scenario))
    expected = new_units / sum(student.sizes[1:-1])
    assert (dead >= expected - 1e-6).all(), f"dead-unit fraction per seed {dead.tolist()}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lsuv_unit_output_variance(scenario):
    """Check that every layer's output (before the ReLU) has variance 1 ± 0.1 on D2's batch.

    The variance is recomputed here layer by layer from the returned weights, over the whole
    D2 training split (the batch LSUV used), samples and units together.
    """
    data, _ = _scenario(scenario)
    student = MLPSpec(data.spec.student_sizes)
    params = _initialize(scenario, "lsuv", len(SEEDS)).params
    for seed in range(len(SEEDS)):
        h = data.d2.train.x
        for layer in range(student.num_layers):
            z = h @ params[student.weight(layer)][seed].T + params[student.bias(layer)][seed]
            variance = z.var(correction=0).item()
            assert abs(variance - 1.0) < 0.1, f"seed {seed}, layer {layer}: Var = {variance}"
            h = torch.relu(z)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ligo_without_steps_equals_net2net(scenario):
    """Check that LiGO's starting point (0 steps) is the Dirichlet-split Net2Net, to 1e-6."""
    start = initializers.get("ligo")(_context(scenario, SEEDS, ligo_steps=0)).params
    net2net = _initialize(scenario, "net2net", len(SEEDS)).params
    for key in net2net:
        torch.testing.assert_close(start[key], net2net[key], rtol=0, atol=1e-6, msg=key)
