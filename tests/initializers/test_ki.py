"""Knowledge Inheritance: the distillation schedule and the engine's training-loss hook."""

from __future__ import annotations

import pytest
import torch

import initializers
from bench import seeding
from bench.engine import Recipe, TrainingLoss, cross_entropy_loss, train
from bench.models import MLPSpec, select_seeds
from initializers.ki import distillation_term, linear_decay
from initializers.registry import InitContext

SEEDS = (0, 1, 2)
RECIPE = Recipe("adam", 1e-3, num_steps=6, batch_size=32, eval_every=3)


def _context(digits, teachers, **options) -> InitContext:
    return InitContext(
        student=MLPSpec(digits.spec.student_sizes), teacher=MLPSpec(digits.spec.teacher_sizes),
        teacher_params=select_seeds(teachers, list(SEEDS)), d1_classes=digits.spec.d1_classes,
        d1_train=digits.d1.train, d2_train=digits.d2.train, seed_indices=SEEDS, suite_seed=0,
        scenario="digits-subset", options=options)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 1.0])
def test_ki_schedule_linear_to_zero(fraction):
    """Check λ(t) = 0.5·(1 − t/(f·N)) before f·N and 0 from there on, at N = 200."""
    weight = linear_decay(0.5, fraction)
    horizon = fraction * 200
    for step in range(200):
        expected = 0.5 * (1 - step / horizon) if step < horizon else 0.0
        assert weight(step, 200) == pytest.approx(expected, abs=1e-12), step


def test_ki_active_steps_count_teacher_passes(digits, digits_teachers):
    """Check that the default schedule is nonzero for exactly the first 30% of the steps."""
    loss = initializers.get("ki")(_context(digits, digits_teachers)).training_loss
    assert loss.weight(0, 1000) == pytest.approx(0.5)
    assert loss.active_steps(1000) == 300
    assert loss.forward_passes_per_step == 1


def test_ki_weight_zero_equals_plain_training(digits, digits_teachers):
    """Check that a zero weight at every step trains exactly as without the term."""
    ctx = _context(digits, digits_teachers, ki_weight=0.0)
    result = initializers.get("ki")(ctx)
    order = seeding.generators(0, "digits-subset", SEEDS, "d2-order")
    mixed = train(ctx.student, result.params, digits.d2, RECIPE, order,
                  training_loss=result.training_loss)
    order = seeding.generators(0, "digits-subset", SEEDS, "d2-order")
    plain = train(ctx.student, result.params, digits.d2, RECIPE, order)
    for name in plain.params:
        assert torch.equal(mixed.params[name], plain.params[name]), name


def test_ki_hook_matches_per_seed_loop(digits, digits_teachers):
    """Check the mapped hook against one-seed training with the mixed loss, to 1e-5.

    With a constant weight α, each seed i trained alone on CE + α·term(w, u_i, x, y), its
    own teacher u_i closed over, must reach the same weights as the seed-batched run.
    """
    ctx = _context(digits, digits_teachers)
    params = initializers.get("ki")(ctx).params
    term = distillation_term(ctx.student, ctx.teacher, ctx.d1_classes, temperature=2.0)
    teachers = ctx.teacher_params
    hook = TrainingLoss(term, teachers, lambda step, num_steps: 0.4, forward_passes_per_step=1)
    order = seeding.generators(0, "digits-subset", SEEDS, "d2-order")
    batched = train(ctx.student, params, digits.d2, RECIPE, order, training_loss=hook)

    base = cross_entropy_loss(ctx.student)
    for i, seed in enumerate(SEEDS):
        teacher = {name: value[i] for name, value in teachers.items()}

        def loss(p, x, y, teacher=teacher):
            return base(p, x, y) + 0.4 * term(p, teacher, x, y)

        order = seeding.generators(0, "digits-subset", (seed,), "d2-order")
        alone = train(ctx.student, select_seeds(params, [i]), digits.d2, RECIPE, order,
                      loss_fn=loss)
        for name in alone.params:
            torch.testing.assert_close(batched.params[name][i], alone.params[name][0],
                                       rtol=1e-5, atol=1e-5, msg=name)


def test_ki_rejects_invalid_fraction(digits, digits_teachers):
    """Check that a fraction outside [0, 1] raises with the valid range."""
    expected = r"ki_fraction=1.5 is invalid: it must lie in \[0.0, 1.0\]"
    with pytest.raises(ValueError, match=expected):
        initializers.get("ki")(_context(digits, digits_teachers, ki_fraction=1.5))
