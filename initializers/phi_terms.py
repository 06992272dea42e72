"""The four terms of φ's objective, each written for one seed's weights.

    φ(u) = argmin_w  λ1·L_f(w, D1*)                  `ce_term`
                   + λ2·‖E(w) − u‖²                  `l2_term`
                   + λ3·E_{x'∈U_δ(x)} L_f(w, x', y)  `robust_term`
                   + λ4·‖∂²L_f/∂w²‖²_F               `hessian_frobenius_term`
                                                     (or `hessian_spectral_term`)

L_f is the student's cross-entropy on D1 with the softmax restricted to D1's classes (the
student's logits at columns `d1_classes`, targets the position of the label among them);
over all student classes, the cross-entropy on D1 would drive the new classes' biases far
negative. Every function here takes one seed's parameters (no seed axis) and is mapped over
the seed axis with `torch.func.vmap` by `initializers.phi`. Random inputs (the perturbations
of λ3, the probe vectors of λ4) are arguments: they are drawn per seed, outside the mapped
function, so that a seed's result does not depend on the other seeds of its chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.hessian import hutchinson_frobenius_sq, hvp
from bench.models import MLPSpec, Params, apply
from initializers.transfer import block_columns, block_rows, check_compatible

NEIGHBOURHOODS = ("box", "gaussian")
"""λ3's U_δ(x): uniform in the L∞ ball of radius δ, or Gaussian with standard deviation δ."""


def d1_cross_entropy(spec: MLPSpec, classes: torch.Tensor, params: Params, x: torch.Tensor,
                     y_local: torch.Tensor) -> torch.Tensor:
    """Return the mean cross-entropy with the softmax restricted to D1's classes.

    Args:
        spec: the student architecture.
        classes: the student columns of D1's classes, (num_d1_classes,), int64.
        params: one seed's student weights.
        x: inputs, (batch, features).
        y_local: each label's position in `classes`, (batch,), int64.
    """
    logits = apply(spec, params, x).index_select(-1, classes)
    return F.cross_entropy(logits, y_local)


def ce_term(spec: MLPSpec, classes: torch.Tensor, params: Params, x: torch.Tensor,
            y_local: torch.Tensor) -> torch.Tensor:
    """λ1's term: L_f(w, D1*) on a minibatch, softmax restricted to D1's classes."""
    return d1_cross_entropy(spec, classes, params, x, y_local)


@dataclass(frozen=True)
class Block:
    """One layer's teacher-shaped block E(w): student rows × columns ↔ a teacher layer."""

    student_weight: str
    student_bias: str
    teacher_weight: str
    teacher_bias: str
    rows: torch.Tensor
    cols: torch.Tensor


def teacher_blocks(student: MLPSpec, teacher: MLPSpec, d1_classes: tuple[int, ...],
                   device: str | torch.device = "cpu") -> list[Block]:
    """Return E's blocks, one per layer, from the block helpers of `initializers.transfer`."""
    check_compatible(student, teacher, d1_classes)
    return [Block(student.weight(layer), student.bias(layer),
                  teacher.weight(layer), teacher.bias(layer),
                  block_rows(student, teacher, layer, d1_classes).to(device),
                  block_columns(teacher, layer).to(device))
            for layer in range(student.num_layers)]


def block_distance_sq(params: Params, teacher_params: Params, blocks: list[Block]) -> torch.Tensor:
    """Return ‖E(w) − u‖² summed over every layer's weight and bias block."""
    total = 0.0
    for block in blocks:
        weight = params[block.student_weight].index_select(0, block.rows)
        weight = weight.index_select(1, block.cols)
        bias = params[block.student_bias].index_select(0, block.rows)
        total = total + ((weight - teacher_params[block.teacher_weight]) ** 2).sum()
        total = total + ((bias - teacher_params[block.teacher_bias]) ** 2).sum()
    return total


def l2_term(params: Params, teacher_params: Params, blocks: list[Block],
            squared: bool = True) -> torch.Tensor:
    """λ2's term: ‖E(w) − u‖² (or the unsquared Euclidean norm when `squared` is False).

    The unsquared norm has no gradient at the copy; its gradient there is taken as 0
    (the minimal subgradient), which keeps every seed finite at a copy-exact start.
    """
    distance_sq = block_distance_sq(params, teacher_params, blocks)
    if squared:
        return distance_sq
    positive = distance_sq > 0
    safe = torch.where(positive, distance_sq, torch.ones_like(distance_sq))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(distance_sq))


def perturbations(num_draws: int, batch_shape: tuple[int, ...], delta: float, kind: str,
                  generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw one seed's input perturbations for λ3, shape (num_draws, *batch_shape).

    "box": uniform in the L∞ ball [−δ, δ]^d; "gaussian": N(0, δ²) per coordinate.
    """
    shape = (num_draws, *batch_shape)
    if kind == "box":
        return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * delta
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype) * delta
    raise ValueError(f"neighbourhood={kind!r} is invalid: use one of {NEIGHBOURHOODS}.")


def robust_term(spec: MLPSpec, classes: torch.Tensor, params: Params, x: torch.Tensor,
                y_local: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """λ3's term: the Monte Carlo mean of L_f(w, x + ε, y) over m draws ε.

    Args:
        noise: (m, batch, features), already scaled (see `perturbations`). The m draws are
            evaluated as one batch of m·batch samples; with equal batch sizes, the mean over
            that batch equals the mean over draws of each draw's mean loss.
    """
    num_draws = noise.shape[0]
    perturbed = (x.unsqueeze(0) + noise).reshape(-1, x.shape[-1])
    return d1_cross_entropy(spec, classes, params, perturbed, y_local.repeat(num_draws))


def hessian_frobenius_term(spec: MLPSpec, classes: torch.Tensor, params: Params, x: torch.Tensor,
                           y_local: torch.Tensor, probes: Params) -> torch.Tensor:
    """λ4's term: Hutchinson's estimate of ‖∂²L_f/∂w²‖²_F on the minibatch.

    Args:
        probes: each (num_probes, *shape), v ~ N(0, I); one Hessian-vector product
            (forward-over-reverse) per probe, differentiable in `params`.
    """
    num_probes = next(iter(probes.values())).shape[0]
    probe_list = [{name: value[j] for name, value in probes.items()} for j in range(num_probes)]
    return hutchinson_frobenius_sq(_loss_of(spec, classes, x, y_local), params, probe_list)


def hessian_spectral_term(spec: MLPSpec, classes: torch.Tensor, params: Params, x: torch.Tensor,
                          y_local: torch.Tensor, start: Params, iterations: int) -> torch.Tensor:
    """λ4's alternative: the squared spectral norm of the Hessian by power iteration.

    The power iteration runs on detached weights; the eigenvalue is then the Rayleigh
    quotient vᵀHv/vᵀv at the live weights, whose gradient is vᵀ(∂H)v (Hellmann–Feynman)
    for a converged v. Costs `iterations` + 1 Hessian-vector products, of which only the
    last is differentiated.

    Args:
        start: the starting vector, shaped like `params` (drawn per seed outside vmap).
    """
    loss = _loss_of(spec, classes, x, y_local)
    frozen = {name: value.detach() for name, value in params.items()}
    v = start
    for _ in range(iterations):
        hv = hvp(loss, frozen, v)
        norm = torch.sqrt(_dot(hv, hv)).clamp_min(1e-30)
        v = {name: value.detach() / norm.detach() for name, value in hv.items()}
    eigenvalue = _dot(v, hvp(loss, params, v)) / _dot(v, v)
    return eigenvalue ** 2


def _loss_of(spec: MLPSpec, classes: torch.Tensor, x: torch.Tensor, y_local: torch.Tensor):
    def loss(params: Params) -> torch.Tensor:
        return d1_cross_entropy(spec, classes, params, x, y_local)

    return loss


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[name] * b[name]).sum() for name in a)
