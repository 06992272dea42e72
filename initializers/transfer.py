"""Naive copies of the teacher into the student's teacher-shaped block.

E(w) is, in every student layer, the block whose rows are the teacher's units (the output
layer: the student rows of the teacher's classes) and whose columns are the teacher's
inputs. Every transfer initializer follows two rules:

1. Output classes the teacher never saw start with zero weights and bias −c (c = 10 by
   default); `unseen_classes="default"` draws them like `uniform` instead. The choice is
   recorded in `InitResult.info`.
2. Seeds stay separate: student seed i copies teacher seed i.
"""

from __future__ import annotations

import torch

from bench.models import MLPSpec, Params
from initializers.registry import InitContext, InitResult, register
from initializers.standard import torch_default

UNSEEN_CLASS_BIAS = 10.0
"""c in the rule "unseen classes start with bias −c"."""


def block_rows(student: MLPSpec, teacher: MLPSpec, layer: int,
               d1_classes: tuple[int, ...]) -> torch.Tensor:
    """Return the student rows of layer `layer` that hold the teacher's units (or classes)."""
    if layer == student.num_layers - 1:
        return torch.tensor(d1_classes, dtype=torch.int64)
    return torch.arange(teacher.sizes[layer + 1])


def block_columns(teacher: MLPSpec, layer: int) -> torch.Tensor:
    """Return the student columns of layer `layer` that hold the teacher's inputs."""
    return torch.arange(teacher.sizes[layer])


def check_compatible(student: MLPSpec, teacher: MLPSpec, d1_classes: tuple[int, ...]) -> None:
    """Raise ValueError unless the teacher fits inside the student layer by layer."""
    fits = student.num_layers == teacher.num_layers and all(
        t <= s for t, s in zip(teacher.sizes[:-1], student.sizes[:-1])
    )
    if not fits or teacher.sizes[-1] != len(d1_classes):
        raise ValueError(
            f"teacher {teacher.sizes} does not fit inside student {student.sizes} with D1 "
            f"classes {d1_classes}: the copy initializers need the same depth, no wider teacher "
            f"layer, and one teacher output per D1 class. Use a growth initializer for other "
            f"shapes."
        )


def embed_teacher(ctx: InitContext, base: Params) -> Params:
    """Return `base` with the teacher's weights written into E(w), seed by seed."""
    check_compatible(ctx.student, ctx.teacher, ctx.d1_classes)
    params = {name: value.clone() for name, value in base.items()}
    for layer in range(ctx.student.num_layers):
        rows = block_rows(ctx.student, ctx.teacher, layer, ctx.d1_classes)
        cols = block_columns(ctx.teacher, layer)
        weight, bias = params[ctx.student.weight(layer)], params[ctx.student.bias(layer)]
        weight[:, rows[:, None], cols[None, :]] = ctx.teacher_params[ctx.teacher.weight(layer)]
        bias[:, rows] = ctx.teacher_params[ctx.teacher.bias(layer)]
    return params


def apply_unseen_class_rule(ctx: InitContext, params: Params, default: Params) -> dict:
    """Set the output rows of classes the teacher never saw; return the recorded choice."""
    mode = ctx.options.get("unseen_classes", "bias")
    c = float(ctx.options.get("unseen_class_bias", UNSEEN_CLASS_BIAS))
    last = ctx.student.num_layers - 1
    unseen = [k for k in range(ctx.student.sizes[-1]) if k not in ctx.d1_classes]
    weight, bias = params[ctx.student.weight(last)], params[ctx.student.bias(last)]

    if mode == "bias":
        weight[:, unseen, :] = 0.0
        bias[:, unseen] = -c
        return {"unseen_classes": f"zero weights, bias -{c:g}", "unseen_class_ids": unseen}
    if mode == "default":
        weight[:, unseen, :] = default[ctx.student.weight(last)][:, unseen, :]
        bias[:, unseen] = default[ctx.student.bias(last)][:, unseen]
        return {"unseen_classes": "default (uniform) init", "unseen_class_ids": unseen}
    raise ValueError(
        f"unseen_classes={mode!r} is invalid: use 'bias' (zero weights, bias -c) or 'default'."
    )


@register("copy-zero", needs_teacher=True,
          description="teacher block copied, zeros elsewhere (function-preserving, new units dead)")
def copy_zero(ctx: InitContext) -> InitResult:
    default = torch_default(ctx.student, ctx.generators("student-init"))
    zeros = {name: torch.zeros_like(value) for name, value in default.items()}
    params = embed_teacher(ctx, zeros)
    return InitResult(params, info=apply_unseen_class_rule(ctx, params, default))


@register("copy-uniform", needs_teacher=True,
          description="teacher block copied, default init elsewhere (changes the function)")
def copy_uniform(ctx: InitContext) -> InitResult:
    default = torch_default(ctx.student, ctx.generators("student-init"))
    params = embed_teacher(ctx, default)
    return InitResult(params, info=apply_unseen_class_rule(ctx, params, default))


@register("copy-exact", needs_teacher=True,
          description="teacher block copied, new units default init, new→old block zeroed "
          "(function-preserving, every weight trains)")
def copy_exact(ctx: InitContext) -> InitResult:
    default = torch_default(ctx.student, ctx.generators("student-init"))
    params = embed_teacher(ctx, default)

    # Zero the weights from new units into the teacher's units, so that the teacher's units
    # compute exactly what they computed in the teacher. The first layer's new columns are
    # new input features, which the teacher never saw, so they are zeroed too.
    for layer in range(ctx.student.num_layers):
        rows = block_rows(ctx.student, ctx.teacher, layer, ctx.d1_classes)
        new_cols = torch.arange(ctx.teacher.sizes[layer], ctx.student.sizes[layer])
        params[ctx.student.weight(layer)][:, rows[:, None], new_cols[None, :]] = 0.0

    return InitResult(params, info=apply_unseen_class_rule(ctx, params, default))
