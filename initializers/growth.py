"""Growth from the teacher: Net2Net (Chen et al. 2016) and LiGO (Wang et al. 2023).

Both widen the teacher layer by layer. A student deeper than the teacher first gets
Net2DeeperNet identity layers (`initializers.transfer.deepen`), which are exact because they
act on ReLU outputs (≥ 0).

Net2WiderNet, for hidden layer l with t_l teacher units and s_l ≥ t_l student units:

    g_l(j) = j for j < t_l, and a uniformly random teacher unit for j ≥ t_l   (the replica map)
    W'_l[i, k] = W_l[g_l(i), g_{l-1}(k)] · split_{l-1}(k),    b'_l[i] = b_l[g_l(i)]

Replicas of a teacher unit have identical activations. The outgoing weights of each teacher
unit u are split among its replicas with shares that sum to 1, so the next layer receives
exactly what it received in the teacher:
  - "dirichlet": shares ~ Dirichlet(1, ..., 1) over the replicas of u. This is exactly
    function-preserving, and replicas with different outgoing weights get different gradients,
    which breaks their symmetry.
  - "noise": shares 1/count(u) (the paper's rule), then Gaussian noise of standard deviation
    0.01 × std(W_l) on every weight, which breaks the symmetry but changes the function
    slightly.
New input features (a student input wider than the teacher's) get zero weights. Output
classes the teacher never saw follow `apply_unseen_class_rule`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad_and_value, vmap

from bench.engine import SeedBatches
from bench.models import MLPSpec, Params, apply
from initializers.registry import Compute, InitContext, InitResult, register
from initializers.standard import torch_default
from initializers.transfer import apply_unseen_class_rule, matched_teacher

SPLITS = ("dirichlet", "count")
NET2NET_NOISE = 0.01
"""Noise standard deviation of `net2net-noise`, relative to the teacher layer's weight std."""
LIGO_STEPS = 100
LIGO_LEARNING_RATE = 1e-3
LIGO_BATCH_SIZE = 128


def replica_maps(student: MLPSpec, teacher: MLPSpec, generators: list[torch.Generator],
                 split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Draw each hidden layer's replica map g and outgoing-weight shares, seed by seed.

    Args:
        student, teacher: architectures of equal depth, the teacher no wider anywhere.
        generators: one per seed.
        split: "dirichlet" (random shares summing to 1 per teacher unit) or "count" (1/count).

    Returns:
        One (g, shares) pair per hidden layer, each (num_seeds, student width): g is int64,
        shares float32.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is invalid: use one of {SPLITS}.")
    maps = []
    for layer in range(1, student.num_layers):
        t, s = teacher.sizes[layer], student.sizes[layer]
        per_seed = [_replicas(t, s, g, split) for g in generators]
        maps.append((torch.stack([m for m, _ in per_seed]),
                     torch.stack([share for _, share in per_seed])))
    return maps


def _replicas(t: int, s: int, g: torch.Generator, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    mapping = torch.cat([torch.arange(t), torch.randint(0, t, (s - t,), generator=g)])
    if split == "count":
        weights = torch.ones(s)
    else:
        # Normalized Exponential(1) draws are Dirichlet(1, ..., 1) over each unit's replicas.
        weights = -torch.log1p(-torch.rand(s, generator=g))
    totals = torch.zeros(t).index_add_(0, mapping, weights)
    return mapping, weights / totals[mapping]


def expand(ctx: InitContext, teacher: MLPSpec, teacher_params: Params,
           maps: list[tuple[torch.Tensor, torch.Tensor]]) -> Params:
    """Return the Net2WiderNet student for the replica maps `maps` (unseen classes untouched).

    The output layer's rows are the teacher's classes at `ctx.d1_classes`; the other rows are
    zero, to be set by `apply_unseen_class_rule`.
    """
    student = ctx.student
    num_seeds = teacher_params[teacher.weight(0)].shape[0]
    inputs = torch.arange(teacher.sizes[0]).expand(num_seeds, -1)
    columns, shares = inputs, torch.ones(num_seeds, teacher.sizes[0])
    params = {}
    for layer in range(student.num_layers):
        weight, bias = teacher_params[teacher.weight(layer)], teacher_params[teacher.bias(layer)]
        last = layer == student.num_layers - 1
        rows = None if last else maps[layer][0]
        params.update(_expand_layer(ctx, layer, weight, bias, rows, columns, shares))
        if not last:
            columns, shares = maps[layer]
    return params


def _expand_layer(ctx: InitContext, layer: int, weight: torch.Tensor, bias: torch.Tensor,
                  rows: torch.Tensor | None, columns: torch.Tensor,
                  shares: torch.Tensor) -> Params:
    """Gather W[g_l(i), g_{l-1}(k)] · share(k) for one layer; rows=None maps the classes."""
    student = ctx.student
    gathered = torch.gather(weight, 2, columns.unsqueeze(1).expand(-1, weight.shape[1], -1))
    gathered = gathered * shares.unsqueeze(1)  # (S, teacher rows, columns used)
    num_seeds, fan_out = weight.shape[0], student.sizes[layer + 1]
    new_weight = weight.new_zeros(num_seeds, fan_out, student.sizes[layer])
    new_bias = bias.new_zeros(num_seeds, fan_out)
    used = columns.shape[1]  # New input features (columns beyond these) keep zero weights.

    if rows is None:
        classes = torch.tensor(ctx.d1_classes)
        new_weight[:, classes, :used] = gathered
        new_bias[:, classes] = bias
    else:
        row_index = rows.unsqueeze(-1).expand(-1, -1, used)
        new_weight[:, :, :used] = torch.gather(gathered, 1, row_index)
        new_bias[:] = torch.gather(bias, 1, rows)
    return {student.weight(layer): new_weight, student.bias(layer): new_bias}


def _net2net(ctx: InitContext, split: str, noise: float) -> InitResult:
    teacher, teacher_params = matched_teacher(ctx)
    maps = replica_maps(ctx.student, teacher, ctx.generators("net2net-replicas"), split)
    params = expand(ctx, teacher, teacher_params, maps)

    if noise > 0:
        generators = ctx.generators("net2net-noise")
        for layer in range(ctx.student.num_layers):
            name = ctx.student.weight(layer)
            scale = noise * teacher_params[teacher.weight(layer)].std(dim=(1, 2))  # (S,)
            draws = torch.stack([torch.randn(params[name].shape[1:], generator=g)
                                 for g in generators])
            params[name] = params[name] + scale[:, None, None] * draws

    default = torch_default(ctx.student, ctx.generators("student-init"))
    info = apply_unseen_class_rule(ctx, params, default)
    info.update({"split": split, "noise": noise,
                 "identity_layers": ctx.student.num_layers - ctx.teacher.num_layers})
    return InitResult(params, info=info)


@register("net2net", needs_teacher=True,
          description="Net2WiderNet with a Dirichlet split of the outgoing weights among "
          "replicas (exactly function-preserving); Net2DeeperNet identity layers for depth")
def net2net(ctx: InitContext) -> InitResult:
    return _net2net(ctx, "dirichlet", 0.0)


@register("net2net-noise", needs_teacher=True,
          description="Net2WiderNet, outgoing weights divided by the replica count, plus noise "
          "0.01·std(W) to break symmetry (not exact); identity layers for depth")
def net2net_noise(ctx: InitContext) -> InitResult:
    return _net2net(ctx, "count", float(ctx.options.get("net2net_noise", NET2NET_NOISE)))


# ---------------------------------------------------------------------------------------
# LiGO
# ---------------------------------------------------------------------------------------


def expansion_operators(ctx: InitContext, teacher: MLPSpec,
                        maps: list[tuple[torch.Tensor, torch.Tensor]]) -> Params:
    """Return LiGO's starting A and B matrices, which reproduce Net2Net with `maps`.

    For hidden layer l: B_l (S, s_l, t_l) has B[i, g_l(i)] = 1 (replication), and A_{l+1}
    (S, s_l, t_l) has A[k, g_l(k)] = share(k) (the input expansion of the next layer,
    normalized so that each teacher unit's replicas sum to 1). W'_l = B_l W_l A_lᵀ.
    """
    operators = {}
    for layer, (mapping, shares) in enumerate(maps):
        t = teacher.sizes[layer + 1]
        one_hot = F.one_hot(mapping, t).float()  # (S, s_l, t_l)
        operators[f"B.{layer}"] = one_hot
        operators[f"A.{layer + 1}"] = one_hot * shares.unsqueeze(-1)
    return operators


def grow(ctx: InitContext, teacher: MLPSpec, teacher_params: Params,
         operators: Params) -> Params:
    """Return one seed's student weights W'_l = B_l W_l A_lᵀ, b'_l = B_l b_l (no seed axis).

    The first layer's A embeds the teacher's inputs, with zero columns for new inputs. The
    output layer's B places the teacher's classes at `ctx.d1_classes` and leaves the other rows
    zero.
    """
    student, params = ctx.student, {}
    for layer in range(student.num_layers):
        weight, bias = teacher_params[teacher.weight(layer)], teacher_params[teacher.bias(layer)]
        a = operators.get(f"A.{layer}")
        if a is None:
            a = torch.eye(student.sizes[0], teacher.sizes[0], dtype=weight.dtype)
        b = operators.get(f"B.{layer}")
        if b is None:
            b = torch.zeros(student.sizes[-1], teacher.sizes[-1], dtype=weight.dtype)
            b[list(ctx.d1_classes), range(teacher.sizes[-1])] = 1.0
        params[student.weight(layer)] = b @ weight @ a.T
        params[student.bias(layer)] = b @ bias
    return params


def _ligo_loss(ctx: InitContext, teacher: MLPSpec, classes: torch.Tensor):
    def loss(operators: Params, teacher_params: Params, x: torch.Tensor,
             y: torch.Tensor) -> torch.Tensor:
        params = grow(ctx, teacher, teacher_params, operators)
        logits = apply(ctx.student, params, x).index_select(-1, classes)
        return F.cross_entropy(logits, y)

    return loss


@register("ligo", needs_teacher=True, compute="K Adam steps on D1* (default 100)",
          description="LiGO: learned per-layer expansion W' = B·W·Aᵀ fitted on D1*, starting "
          "from the Dirichlet-split Net2Net; identity layers for depth")
def ligo(ctx: InitContext) -> InitResult:
    """Fit LiGO's width operators on D1* for `ligo_steps` Adam steps, starting at Net2Net.

    Options (ctx.options): ligo_steps (K, default 100), ligo_lr (default 1e-3), ligo_batch_size
    (default 128), ligo_split ("dirichlet", the default, or "count"). The start equals
    `net2net` (same replica maps and shares). With the paper's 1/count normalization the
    replicas of a unit stay identical under every gradient step, so the default uses the
    Dirichlet shares, whose mean is 1/count. The loss is the cross-entropy with the softmax
    restricted to D1's classes. Depth is not learned: extra student layers are Net2DeeperNet
    identity layers.
    """
    steps = int(ctx.options.get("ligo_steps", LIGO_STEPS))
    if steps < 0:
        raise ValueError(f"ligo_steps={steps} is invalid: it must be >= 0 (0 returns Net2Net).")
    teacher, teacher_params = matched_teacher(ctx)
    split = ctx.options.get("ligo_split", "dirichlet")
    maps = replica_maps(ctx.student, teacher, ctx.generators("net2net-replicas"), split)
    operators = expansion_operators(ctx, teacher, maps)

    # Fit A and B for all seeds at once; Adam acts elementwise, hence per seed.
    names = list(operators)
    tensors = [operators[name].to(ctx.device) for name in names]
    optimizer = torch.optim.Adam(tensors, lr=float(ctx.options.get("ligo_lr", LIGO_LEARNING_RATE)))
    classes = torch.tensor(ctx.d1_classes, device=ctx.device)
    step_fn = vmap(grad_and_value(_ligo_loss(ctx, teacher, classes)))
    batches = SeedBatches(len(ctx.d1_train), int(ctx.options.get("ligo_batch_size",
                                                                  LIGO_BATCH_SIZE)),
                          ctx.generators("ligo-order"))
    for _ in range(steps):
        index = batches.next()
        grads, _ = step_fn(dict(zip(names, tensors)), teacher_params,
                           ctx.d1_train.x[index], ctx.d1_train.y[index])
        for tensor, name in zip(tensors, names):
            tensor.grad = grads[name]
        optimizer.step()

    fitted = {name: tensor.detach() for name, tensor in zip(names, tensors)}
    params = vmap(lambda ops, tp: grow(ctx, teacher, tp, ops))(fitted, teacher_params)
    default = torch_default(ctx.student, ctx.generators("student-init"))
    info = apply_unseen_class_rule(ctx, params, default)
    info.update({"ligo_steps": steps, "split": split})
    return InitResult(params, Compute(optimizer_steps=steps, forward_backward_passes=steps),
                      info)
