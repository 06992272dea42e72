"""Copy initializers: teacher block placement, function preservation and dead units."""

from __future__ import annotations

import pytest
import torch

import initializers
from bench.datasets import Split
from bench.metrics import dead_unit_fraction, teacher_preservation
from bench.models import MLPSpec, apply_seeds
from initializers.registry import InitContext

SEEDS = (0, 1, 2, 3, 4)


def _context(digits, teachers, **options) -> InitContext:
    return InitContext(
        student=MLPSpec(digits.spec.student_sizes), teacher=MLPSpec(digits.spec.teacher_sizes),
        teacher_params=teachers, d1_classes=digits.spec.d1_classes, d1_train=digits.d1.train,
        d2_train=digits.d2.train, seed_indices=SEEDS, suite_seed=0, scenario="digits-subset",
        options=options,
    )


def _teacher_logits(digits, teachers):
    return apply_seeds(MLPSpec(digits.spec.teacher_sizes), teachers, digits.d1.test.x)


@pytest.mark.parametrize("name", ["copy-exact", "copy-zero"])
def test_copy_reproduces_teacher_logits(name, digits, digits_teachers):
    """Check that the student's logits on D1's classes equal the teacher's to 1e-5."""
    ctx = _context(digits, digits_teachers)
    params = initializers.get(name)(ctx).params
    student = apply_seeds(ctx.student, params, digits.d1.test.x)[:, :, list(ctx.d1_classes)]
    teacher = _teacher_logits(digits, digits_teachers)
    assert torch.allclose(student, teacher, atol=1e-5, rtol=0), (
        f"max abs difference {(student - teacher).abs().max():.3g}")


def test_copy_uniform_changes_teacher_function(digits, digits_teachers):
    """Check that copy-uniform does not preserve the teacher (its new inputs are random)."""
    ctx = _context(digits, digits_teachers)
    params = initializers.get("copy-uniform")(ctx).params
    student = apply_seeds(ctx.student, params, digits.d1.test.x)[:, :, list(ctx.d1_classes)]
    assert (student - _teacher_logits(digits, digits_teachers)).abs().max() > 1e-2


def test_copy_zero_reports_dead_units(digits, digits_teachers):
    """Check that copy-zero's new hidden units are dead and copy-exact's are not."""
    ctx = _context(digits, digits_teachers)
    batch = Split(digits.d2.train.x, digits.d2.train.y)
    student = ctx.student
    new_units = sum(s - t for s, t in zip(student.sizes[1:-1], ctx.teacher.sizes[1:-1]))
    hidden = sum(student.sizes[1:-1])

    zero = dead_unit_fraction(student, initializers.get("copy-zero")(ctx).params, batch)
    assert (zero >= new_units / hidden - 1e-9).all(), zero

    exact = dead_unit_fraction(student, initializers.get("copy-exact")(ctx).params, batch)
    assert (exact == 0).all(), exact


def test_unseen_classes_get_negative_bias(digits, digits_teachers):
    """Check that classes the teacher never saw start with zero weights and bias -c."""
    ctx = _context(digits, digits_teachers, unseen_class_bias=7.0)
    result = initializers.get("copy-exact")(ctx)
    last = ctx.student.num_layers - 1
    unseen = [5, 6, 7, 8, 9]
    assert torch.equal(result.params[ctx.student.bias(last)][:, unseen],
                       torch.full((len(SEEDS), 5), -7.0))
    assert (result.params[ctx.student.weight(last)][:, unseen] == 0).all()
    assert result.info["unseen_classes"] == "zero weights, bias -7"


def test_unseen_classes_default_option(digits, digits_teachers):
    """Check that unseen_classes='default' draws the new classes like uniform."""
    ctx = _context(digits, digits_teachers, unseen_classes="default")
    params = initializers.get("copy-exact")(ctx).params
    reference = initializers.get("uniform")(ctx).params
    last = ctx.student.num_layers - 1
    assert torch.equal(params[ctx.student.bias(last)][:, 5:], reference[ctx.student.bias(last)][:, 5:])


def test_unseen_classes_invalid_option(digits, digits_teachers):
    """Check that an unknown unseen_classes value names the valid choices."""
    ctx = _context(digits, digits_teachers, unseen_classes="zeros")
    with pytest.raises(ValueError, match="unseen_classes='zeros' is invalid: use 'bias'"):
        initializers.get("copy-exact")(ctx)


def test_teacher_preservation_metrics(digits, digits_teachers):
    """Check the at-init diagnostics: agreement 1 and zero logit gap for copy-exact."""
    ctx = _context(digits, digits_teachers)
    params = initializers.get("copy-exact")(ctx).params
    metrics = teacher_preservation(ctx.student, params, ctx.teacher, digits_teachers,
                                   ctx.d1_classes, digits.d1.test)
    assert torch.equal(metrics["init/teacher_agreement"], torch.ones(len(SEEDS)))
    assert (metrics["init/teacher_logit_max_abs_diff"] < 1e-5).all()


def test_copy_needs_teacher(digits):
    """Check that a copy initializer without a teacher raises a clear error."""
    ctx = _context(digits, None)
    with pytest.raises(ValueError, match="needs a teacher"):
        initializers.get("copy-exact")(ctx)


def test_unknown_initializer_suggests_closest():
    """Check that an unknown name lists the choices and suggests the closest."""
    with pytest.raises(KeyError, match="Did you mean 'copy-exact'"):
        initializers.get("copy-exakt")
