"""Seed-parallel training: equal to a per-seed loop, independent of S and chunking."""

from __future__ import annotations

import dataclasses

import torch

from bench import seeding
from bench.engine import Recipe, SeedBatches, train
from bench.models import MLP, MLPSpec, select_seeds
from initializers.standard import torch_default

RECIPE = Recipe("adam", 3e-3, num_steps=60, batch_size=32, eval_every=20)

# Float32 training for 60 steps: per-seed and batched kernels sum in different orders, and
# Adam amplifies rounding a little. 1e-4 absolute is far below any reported difference.
LOOP_TOLERANCE = 1e-4
# Same kernels, different S: results must agree to rounding.
CHUNK_TOLERANCE = 1e-5


def _setup(digits, seeds):
    spec = MLPSpec(digits.spec.student_sizes)
    params = torch_default(spec, seeding.generators(0, "digits-subset", seeds, "student-init"))
    order = seeding.generators(0, "digits-subset", seeds, "d2-order")
    return spec, params, order


def _train_one_seed_with_nn_module(digits, spec, params, seed_index, recipe):
    """The plain way: an nn.Module and torch.optim for one seed, same init and data order."""
    model = MLP(spec.sizes)
    model.load_state_dict({k: v[seed_index].clone() for k, v in params.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
    order = seeding.generators(0, "digits-subset", [seed_index], "d2-order")
    batches = SeedBatches(len(digits.d2.train), recipe.batch_size, order)
    for _ in range(recipe.num_steps):
        index = batches.next()[0]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(digits.d2.train.x[index]),
                                                 digits.d2.train.y[index])
        loss.backward()
        optimizer.step()
    return {k: v.detach() for k, v in model.state_dict().items()}


def test_vmap_training_equals_loop(digits):
    """Check that vmapped training of 3 seeds equals 3 separate nn.Module trainings."""
    seeds = [0, 1, 2]
    spec, params, order = _setup(digits, seeds)
    result = train(spec, params, digits.d2, RECIPE, order)

    for i in range(len(seeds)):
        expected = _train_one_seed_with_nn_module(digits, spec, params, i, RECIPE)
        for name, value in expected.items():
            got = result.params[name][i]
            assert torch.allclose(got, value, atol=LOOP_TOLERANCE, rtol=0), (
                f"seed {i} {name}: max abs difference {(got - value).abs().max():.3g}")


def test_seed_independent_of_num_seeds(digits):
    """Check that seeds 0-3 reach the same weights and curves at S = 4 and S = 12."""
    spec, params4, order4 = _setup(digits, list(range(4)))
    _, params12, order12 = _setup(digits, list(range(12)))
    small = train(spec, params4, digits.d2, RECIPE, order4)
    large = train(spec, params12, digits.d2, RECIPE, order12)

    for name in small.params:
        difference = (small.params[name] - large.params[name][:4]).abs().max()
        assert difference <= CHUNK_TOLERANCE, f"{name}: {difference:.3g}"
    for name in small.curves:
        difference = (small.curves[name] - large.curves[name][:4]).abs().max()
        assert difference <= CHUNK_TOLERANCE, f"curve {name}: {difference:.3g}"


def test_seed_independent_of_chunking(digits):
    """Check that seeds 0-5 in one chunk equal chunks (0, 1, 2) and (3, 4, 5)."""
    spec, params, order = _setup(digits, list(range(6)))
    whole = train(spec, params, digits.d2, RECIPE, order)
    parts = []
    for seeds in ([0, 1, 2], [3, 4, 5]):
        _, p, o = _setup(digits, seeds)
        parts.append(train(spec, p, digits.d2, RECIPE, o))

    for name in whole.curves:
        chunked = torch.cat([part.curves[name] for part in parts])
        difference = (whole.curves[name] - chunked).abs().max()
        assert difference <= CHUNK_TOLERANCE, f"curve {name}: {difference:.3g}"


def test_initial_draws_independent_of_num_seeds():
    """Check that seed i's initial weights are bitwise the same among 2 or 9 seeds."""
    spec = MLPSpec((8, 16, 3))
    few = torch_default(spec, seeding.generators(5, "x", [0, 1], "student-init"))
    many = torch_default(spec, seeding.generators(5, "x", range(9), "student-init"))
    for name in few:
        assert torch.equal(few[name], many[name][:2]), name


def test_diverged_seed_leaves_others_identical(digits):
    """Check that a seed forced to diverge is frozen and the other seeds' numbers are unchanged."""
    seeds = [0, 1, 2, 3]
    spec, params, order = _setup(digits, seeds)
    clean = train(spec, params, digits.d2, RECIPE, order)

    broken = {name: value.clone() for name, value in params.items()}
    broken["layers.0.bias"][2, 0] = float("nan")
    _, _, order = _setup(digits, seeds)
    result = train(spec, broken, digits.d2, RECIPE, order)

    assert result.diverged.tolist() == [False, False, True, False]
    assert result.diverged_step[2].item() == 0
    keep = [0, 1, 3]
    for name in clean.params:
        assert torch.equal(result.params[name][keep], clean.params[name][keep]), name
    for name in clean.curves:
        assert torch.equal(result.curves[name][keep], clean.curves[name][keep]), name
    assert torch.isnan(result.curves["test/accuracy"][2, 1:]).all()
    # Frozen: the diverged seed keeps its initial weights, no update applied.
    assert torch.equal(result.params["layers.1.weight"][2], broken["layers.1.weight"][2])


def test_divergence_mid_training_is_frozen(digits):
    """Check that a seed diverging at a large learning rate later is frozen at that step."""
    seeds = [0, 1]
    spec, params, order = _setup(digits, seeds)
    recipe = dataclasses.replace(RECIPE, optimizer="sgd", learning_rate=50.0, momentum=0.9)
    result = train(spec, params, digits.d2, recipe, order)

    assert result.diverged.all(), "an SGD learning rate of 50 should diverge"
    for i in range(2):
        step = int(result.diverged_step[i])
        assert 0 < step < recipe.num_steps
        evaluated = torch.tensor(result.eval_steps)
        after = evaluated > step
        assert torch.isnan(result.curves["train/loss"][i][after]).all()


def test_select_seeds_keeps_order():
    """Check that select_seeds returns the requested seeds in the requested order."""
    params = {"w": torch.arange(5.0).view(5, 1)}
    assert select_seeds(params, [3, 1])["w"].flatten().tolist() == [3.0, 1.0]


def test_recipe_rejects_bad_values():
    """Check that Recipe names the invalid setting."""
    import pytest

    with pytest.raises(ValueError, match="optimizer='lbfgs' is invalid"):
        Recipe(optimizer="lbfgs")
    with pytest.raises(ValueError, match="num_steps=0 is invalid"):
        Recipe(num_steps=0)
    with pytest.raises(ValueError, match="momentum=1.5 is invalid"):
        Recipe(momentum=1.5)
