"""Data-dependent peers: LSUV, GradInit and MetaInit, tuned on D2 minibatches.

All three run for every seed at once. Minibatches come from each seed's own generator
(purposes "lsuv-batch", "gradinit-order", "metainit-order"), drawn outside the mapped
functions, so seed i's result does not depend on the other seeds of its chunk. Per-tensor
scalars (GradInit's scales, MetaInit's norms) have shape (num_seeds,) and are updated
elementwise, hence per seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import grad, grad_and_value, vmap

from bench.engine import SeedBatches, cross_entropy_loss
from bench.hessian import hvp
from bench.models import MLPSpec, Params
from initializers.registry import Compute, InitContext, InitResult, register
from initializers.standard import _draw, _zero_bias, torch_default

LSUV_TOLERANCE = 0.1
LSUV_MAX_PASSES = 10
LSUV_BATCH_SIZE = 256

GRADINIT_DEFAULTS = {"gradinit_steps": 50, "gradinit_lr": 0.01, "gradinit_inner_lr": 0.1,
                     "gradinit_max_grad_norm": 1.0, "gradinit_min_scale": 0.01,
                     "gradinit_batch_size": 64}
METAINIT_DEFAULTS = {"metainit_steps": 50, "metainit_lr": 0.1, "metainit_momentum": 0.9,
                     "metainit_eps": 1e-5, "metainit_batch_size": 64}


def _options(ctx: InitContext, defaults: dict) -> dict:
    """Merge `ctx.options` over `defaults`; every value must be a positive number."""
    merged = {**defaults, **{k: v for k, v in ctx.options.items() if k in defaults}}
    for name, value in merged.items():
        if not float(value) > 0 and not (name.endswith("_steps") and float(value) == 0):
            raise ValueError(f"{name}={value!r} is invalid: it must be positive "
                             f"(default {defaults[name]}).")
    return merged


def _batches(ctx: InitContext, batch_size: int, purpose: str) -> SeedBatches:
    return SeedBatches(len(ctx.d2_train), int(batch_size), ctx.generators(purpose))


# ---------------------------------------------------------------------------------------
# LSUV
# ---------------------------------------------------------------------------------------


@register("lsuv", needs_teacher=False, compute="≤ 10 forward passes per layer on a D2 batch",
          description="Mishkin & Matas (2016): orthonormal W, b = 0, then each layer rescaled "
          "to unit output variance on a D2 batch (tolerance 0.1, at most 10 passes)")
def lsuv(ctx: InitContext) -> InitResult:
    """Layer-sequential unit-variance initialization.

    Starts from orthonormal weights (gain 1) and zero biases. Layer by layer, from the input,
    it computes the layer's output z = W·h + b (before the ReLU) on one D2 batch and divides W
    by √Var(z) until |Var(z) − 1| < tolerance, at most `lsuv_max_passes` times. Var is over the
    batch and the units together, as in Mishkin & Matas (2016). The output layer is rescaled
    too. Seeds that reach the tolerance stop changing while the others continue.

    Options: lsuv_batch_size (256; capped at D2's training size), lsuv_tolerance (0.1),
    lsuv_max_passes (10). Compute: `forward_passes` counts full-network-equivalent forward
    passes, i.e. layer evaluations divided by the layer count, rounded up.
    """
    tolerance = float(ctx.options.get("lsuv_tolerance", LSUV_TOLERANCE))
    max_passes = int(ctx.options.get("lsuv_max_passes", LSUV_MAX_PASSES))
    batch_size = min(int(ctx.options.get("lsuv_batch_size", LSUV_BATCH_SIZE)), len(ctx.d2_train))
    if tolerance <= 0 or max_passes < 1 or batch_size < 2:
        raise ValueError(f"lsuv_tolerance={tolerance}, lsuv_max_passes={max_passes}, "
                         f"lsuv_batch_size={batch_size}: need tolerance > 0, passes >= 1 and a "
                         f"batch of at least 2 samples.")

    def orthonormal(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.orthogonal_(w, gain=1.0, generator=g)

    params = _draw(ctx.student, ctx.generators("student-init"), orthonormal, _zero_bias)
    index = _batches(ctx, batch_size, "lsuv-batch").next()
    h = ctx.d2_train.x[index]  # (S, batch, features)
    evaluations, variances = 0, []
    for layer in range(ctx.student.num_layers):
        h, passes, variance = _lsuv_layer(ctx.student, params, layer, h, tolerance, max_passes)
        evaluations += passes
        variances.append(variance.tolist())

    compute = Compute(forward_passes=math.ceil(evaluations / ctx.student.num_layers))
    return InitResult(params, compute, {"lsuv_output_variance": variances,
                                        "lsuv_layer_evaluations": evaluations})


def _lsuv_layer(spec: MLPSpec, params: Params, layer: int, h: torch.Tensor, tolerance: float,
                max_passes: int) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Rescale layer `layer` in place; return its activations, the passes run and Var(z)."""
    weight_name, bias_name = spec.weight(layer), spec.bias(layer)
    for passes in range(1, max_passes + 1):
        z = torch.baddbmm(params[bias_name].unsqueeze(1), h,
                          params[weight_name].transpose(1, 2))  # (S, batch, fan_out)
        variance = z.var(dim=(1, 2), correction=0)  # (S,)
        done = (variance - 1.0).abs() < tolerance
        if bool(done.all()) or passes == max_passes:
            break
        scale = torch.where(done, torch.ones_like(variance), variance.rsqrt())
        params[weight_name] = params[weight_name] * scale[:, None, None]
    last = layer == spec.num_layers - 1
    return (z if last else torch.relu(z)), passes, variance


# ---------------------------------------------------------------------------------------
# GradInit
# ---------------------------------------------------------------------------------------


def _scaled(base: Params, scales: Params) -> Params:
    return {name: base[name] * scales[name] for name in base}


def gradinit_objective(spec: MLPSpec, inner_lr: float, max_grad_norm: float):
    """Return one seed's GradInit objective of the per-tensor scales α.

        θ = α ⊙ θ0,  g = ∇L(θ; S1)
        objective = ‖g‖₂                    if ‖g‖₂ > γ (first bring the gradient under γ)
                  = L(θ − η·g; S2)          otherwise (the loss after one SGD step)

    The step is differentiated through (a Hessian-vector product per evaluation).
    """
    loss = cross_entropy_loss(spec)

    def objective(scales: Params, base: Params, x1, y1, x2, y2) -> torch.Tensor:
        params = _scaled(base, scales)
        g = grad(loss)(params, x1, y1)
        norm = torch.sqrt(sum((value ** 2).sum() for value in g.values()))
        stepped = {name: params[name] - inner_lr * g[name] for name in params}
        return torch.where(norm > max_grad_norm, norm, loss(stepped, x2, y2))

    return objective


@register("gradinit", needs_teacher=False,
          compute="K Adam steps on scales (default 50), each 2 D2 passes + 1 HVP",
          description="Zhu et al. (2021): per-tensor scales of the default init chosen so the "
          "loss after one SGD step is lowest, with the gradient norm kept under a bound")
def gradinit(ctx: InitContext) -> InitResult:
    """GradInit, the SGD form, small scale.

    Starts from PyTorch's default init θ0 (the `uniform` weights) with every tensor's scale
    α = 1, and runs Adam on α for K steps on `gradinit_objective` with two fresh D2 minibatches
    S1, S2 per step, clamping α ≥ α_min after each step (as in Zhu et al. 2021).

    Options and defaults: gradinit_steps K = 50, gradinit_lr (Adam on α) = 0.01,
    gradinit_inner_lr η = 0.1, gradinit_max_grad_norm γ = 1.0 (on ‖g‖₂), gradinit_min_scale
    α_min = 0.01, gradinit_batch_size = 64.
    NOTE: the paper also has an Adam form (inner step θ − η·sign(g), bound on ‖g‖₁); only
    the SGD form is implemented, although D2 training uses Adam by default.
    """
    options = _options(ctx, GRADINIT_DEFAULTS)
    steps = int(options["gradinit_steps"])
    base = torch_default(ctx.student, ctx.generators("student-init"))
    names = list(base)
    scales = [torch.ones(ctx.num_seeds, *([1] * (base[name].dim() - 1)), device=base[name].device)
              for name in names]
    optimizer = torch.optim.Adam(scales, lr=float(options["gradinit_lr"]))
    objective = gradinit_objective(ctx.student, float(options["gradinit_inner_lr"]),
                                   float(options["gradinit_max_grad_norm"]))
    step_fn = vmap(grad_and_value(objective))
    batches = _batches(ctx, options["gradinit_batch_size"], "gradinit-order")

    for _ in range(steps):
        first, second = batches.next(), batches.next()
        x, y = ctx.d2_train.x, ctx.d2_train.y
        grads, _ = step_fn(dict(zip(names, scales)), base, x[first], y[first], x[second],
                           y[second])
        for scale, name in zip(scales, names):
            scale.grad = grads[name]
        optimizer.step()
        with torch.no_grad():
            for scale in scales:
                scale.clamp_(min=float(options["gradinit_min_scale"]))

    fitted = dict(zip(names, (scale.detach() for scale in scales)))
    compute = Compute(optimizer_steps=steps, forward_backward_passes=2 * steps,
                      hessian_vector_products=steps)
    info = {"gradinit_scales": {name: value.flatten().tolist() for name, value in fitted.items()},
            **options}
    return InitResult(_scaled(base, fitted), compute, info)


# ---------------------------------------------------------------------------------------
# MetaInit
# ---------------------------------------------------------------------------------------


def gradient_quotient(spec: MLPSpec, eps: float):
    """Return one seed's gradient quotient GQ as a function of the weight norms.

        w_l = n_l · ŵ_l / ‖ŵ_l‖   (weight matrices; biases fixed)
        g = ∇L(w),  Hg = ∇²L(w)·g   (one Hessian-vector product, `bench.hessian.hvp`)
        GQ = mean over all parameters of |(g − Hg) / (g + ε·sign(g)) − 1|

    GQ is 0 when a gradient step changes the gradient only by the step's own size, i.e. when
    the loss is locally close to linear-quadratic with unit curvature along g.
    """
    loss = cross_entropy_loss(spec)

    def quotient(norms: Params, base: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params = dict(base)
        for name, norm in norms.items():
            params[name] = base[name] * (norm / base[name].norm())
        g = grad(loss)(params, x, y)
        hg = hvp(lambda p: loss(p, x, y), params, g)
        total, count = 0.0, 0
        for name in params:
            sign = torch.where(g[name] >= 0, 1.0, -1.0).detach()
            total = total + ((g[name] - hg[name]) / (g[name] + eps * sign) - 1).abs().sum()
            count += g[name].numel()
        return total / count

    return quotient


@register("metainit", needs_teacher=False,
          compute="K sign-momentum steps on weight norms (default 50), each 1 D2 pass + 1 HVP",
          description="Dauphin & Schoenholz (2019): per-tensor weight norms of the default init "
          "tuned to minimize the gradient quotient on D2 batches")
def metainit(ctx: InitContext) -> InitResult:
    """MetaInit: signSGD with momentum on each weight matrix's norm, minimizing GQ.

    Starts from PyTorch's default init (the `uniform` weights). Each step draws a D2 minibatch
    per seed, computes ∂GQ/∂n_l and updates m ← μ·m − lr·sign(∂GQ/∂n_l), n_l ← n_l + m, as
    in Dauphin & Schoenholz's Algorithm 1. Norms are kept ≥ 1% of their start so that no
    layer vanishes.
    The paper tunes on random Gaussian inputs; here the batches are real D2 data.

    Options and defaults: metainit_steps = 50 (the paper uses hundreds), metainit_lr = 0.1,
    metainit_momentum μ = 0.9, metainit_eps ε = 1e-5, metainit_batch_size = 64.
    """
    options = _options(ctx, METAINIT_DEFAULTS)
    steps = int(options["metainit_steps"])
    base = torch_default(ctx.student, ctx.generators("student-init"))
    weights = [ctx.student.weight(layer) for layer in range(ctx.student.num_layers)]
    start = {name: base[name].flatten(1).norm(dim=1) for name in weights}  # each (S,)
    norms = {name: value.clone() for name, value in start.items()}
    memory = {name: torch.zeros_like(value) for name, value in start.items()}
    step_fn = vmap(grad(gradient_quotient(ctx.student, float(options["metainit_eps"]))))
    batches = _batches(ctx, options["metainit_batch_size"], "metainit-order")

    for _ in range(steps):
        index = batches.next()
        grads = step_fn(norms, base, ctx.d2_train.x[index], ctx.d2_train.y[index])
        for name in weights:
            memory[name] = (float(options["metainit_momentum"]) * memory[name]
                            - float(options["metainit_lr"]) * torch.sign(grads[name]))
            norms[name] = torch.maximum(norms[name] + memory[name], 0.01 * start[name])

    params = dict(base)
    for name in weights:
        params[name] = base[name] * (norms[name] / start[name])[:, None, None]
    compute = Compute(optimizer_steps=steps, forward_backward_passes=steps,
                      hessian_vector_products=steps)
    info = {"metainit_norms": {name: value.tolist() for name, value in norms.items()}, **options}
    return InitResult(params, compute, info)
