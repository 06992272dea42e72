"""Naive copies of the teacher into the student's teacher-shaped block.

E(w) is, in every student layer, the block whose rows are the teacher's units (the output
layer: the student rows of the teacher's classes) and whose columns are the teacher's
inputs. Every transfer initializer follows two rules:

1. Output classes the teacher never saw start with zero weights and bias −c (c = 10 by
   default); `unseen_classes="default"` draws them like `uniform` instead. The choice is
   recorded in `InitResult.info`.
2. Seeds stay separate: student seed i copies teacher seed i.

A student deeper than the teacher (same number of classes, at least as wide) is handled as in
Net2DeeperNet (Chen et al. 2016): `matched_teacher` inserts identity layers of the teacher's
last hidden width before the teacher's output layer, W = I and b = 0. They compute the same
function because their inputs are ReLU outputs, which are ≥ 0, so ReLU(I·h) = h. The copy
initializers then copy this deepened teacher layer by layer, so `copy-exact` and `copy-zero`
still reproduce the teacher's logits on D1.
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
            f"classes {d1_classes}: the copy initializers need the same depth (a shallower "
            f"teacher is first deepened with identity layers by `matched_teacher`), no wider "
            f"teacher layer, and one teacher output per D1 class. Use a student at least as wide "
            f"and as deep as the teacher."
        )


def deepen(teacher: MLPSpec, teacher_params: Params, num_layers: int) -> tuple[MLPSpec, Params]:
    """Insert identity layers before the teacher's output layer until it has `num_layers`.

    Net2DeeperNet (Chen et al. 2016): each inserted layer has the teacher's last hidden width
    t, W = I (t × t) and b = 0. Its input is a ReLU output h ≥ 0, so ReLU(I·h + 0) = h and the
    deepened teacher computes exactly the teacher's function.

    Args:
        teacher: the teacher architecture, sizes (in, h1, ..., t, classes).
        teacher_params: stacked teacher weights, each (num_seeds, *shape).
        num_layers: the layer count wanted, at least the teacher's.

    Returns:
        The deepened architecture (in, h1, ..., t, t, ..., t, classes) and its stacked weights.
    """
    extra = num_layers - teacher.num_layers
    if extra < 0 or teacher.num_layers < 2:
        raise ValueError(
            f"cannot deepen teacher {teacher.sizes} to {num_layers} layers: identity layers can "
            f"only be added to a teacher with a hidden layer, up to a deeper student. Use a "
            f"student at least as deep as the teacher."
        )
    if extra == 0:
        return teacher, teacher_params

    last = teacher.num_layers - 1
    width = teacher.sizes[-2]
    sizes = (*teacher.sizes[:-1], *([width] * extra), teacher.sizes[-1])
    deep = MLPSpec(sizes)
    params = {name: teacher_params[name] for name in teacher_params
              if not name.startswith(f"layers.{last}.")}
    reference = teacher_params[teacher.weight(0)]
    identity = torch.eye(width, dtype=reference.dtype, device=reference.device)
    for layer in range(last, last + extra):
        params[deep.weight(layer)] = identity.expand(reference.shape[0], -1, -1).clone()
        params[deep.bias(layer)] = torch.zeros_like(params[deep.weight(layer)][:, :, 0])
    params[deep.weight(last + extra)] = teacher_params[teacher.weight(last)]
    params[deep.bias(last + extra)] = teacher_params[teacher.bias(last)]
    return deep, params


def matched_teacher(ctx: InitContext) -> tuple[MLPSpec, Params]:
    """Return the teacher with the student's depth (see `deepen`), checked to fit inside it."""
    teacher, teacher_params = deepen(ctx.teacher, ctx.teacher_params, ctx.student.num_layers)
    check_compatible(ctx.student, teacher, ctx.d1_classes)
    return teacher, teacher_params


def embed_teacher(ctx: InitContext, base: Params) -> Params:
    """Return `base` with the (deepened) teacher's weights written into E(w), seed by seed."""
    teacher, teacher_params = matched_teacher(ctx)
    params = {name: value.clone() for name, value in base.items()}
    for layer in range(ctx.student.num_layers):
        rows = block_rows(ctx.student, teacher, layer, ctx.d1_classes)
        cols = block_columns(teacher, layer)
        weight, bias = params[ctx.student.weight(layer)], params[ctx.student.bias(layer)]
        weight[:, rows[:, None], cols[None, :]] = teacher_params[teacher.weight(layer)]
        bias[:, rows] = teacher_params[teacher.bias(layer)]
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
          description="teacher block copied, zeros elsewhere (function-preserving, new units "
          "dead); a deeper student gets identity layers")
def copy_zero(ctx: InitContext) -> InitResult:
    default = torch_default(ctx.student, ctx.generators("student-init"))
    zeros = {name: torch.zeros_like(value) for name, value in default.items()}
    params = embed_teacher(ctx, zeros)
    return InitResult(params, info=apply_unseen_class_rule(ctx, params, default))


@register("copy-uniform", needs_teacher=True,
          description="teacher block copied, default init elsewhere (changes the function); a "
          "deeper student gets identity blocks")
def copy_uniform(ctx: InitContext) -> InitResult:
    default = torch_default(ctx.student, ctx.generators("student-init"))
    params = embed_teacher(ctx, default)
    return InitResult(params, info=apply_unseen_class_rule(ctx, params, default))


@register("copy-exact", needs_teacher=True,
          description="teacher block copied, new units default init, new→old block zeroed "
          "(function-preserving, every weight trains); a deeper student gets identity "
          "blocks")
def copy_exact(ctx: InitContext) -> InitResult:
    default = torch_default(ctx.student, ctx.generators("student-init"))
    params = embed_teacher(ctx, default)
    teacher, _ = matched_teacher(ctx)

    # Zero the weights from new units into the teacher's units, so that the teacher's units
    # compute exactly what they computed in the teacher. The first layer's new columns are
    # new input features, which the teacher never saw, so they are zeroed too.
    for layer in range(ctx.student.num_layers):
        rows = block_rows(ctx.student, teacher, layer, ctx.d1_classes)
        new_cols = torch.arange(teacher.sizes[layer], ctx.student.sizes[layer])
        params[ctx.student.weight(layer)][:, rows[:, None], new_cols[None, :]] = 0.0

    return InitResult(params, info=apply_unseen_class_rule(ctx, params, default))
