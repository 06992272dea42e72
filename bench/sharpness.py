"""Curvature and gradient size of the training loss, per seed, on a fixed batch.

The single-seed estimators of `bench.hessian` are mapped over the seed axis with vmap.
Their probe vectors are drawn one seed at a time from each seed's generator, outside the
mapped function, so seed i's estimate does not depend on how many seeds run together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from bench.datasets import Split
from bench.hessian import hutchinson_trace, power_iteration, rademacher_probes
from bench.models import MLPSpec, Params, apply, num_seeds, stack_seeds

PROBE_PURPOSE = "sharpness-probes"
"""Generator purpose of the Hutchinson probes and the power-iteration start vector.

The same probes serve at initialization and after training, so the two estimates of a seed
differ by the curvature, not by the probes.
"""


def _training_loss(spec: MLPSpec, batch: Split):
    def loss(params: Params) -> torch.Tensor:
        return F.cross_entropy(apply(spec, params, batch.x), batch.y)

    return loss


def draw_probes(params: Params, num_probes: int,
                generators: list[torch.Generator]) -> tuple[list[Params], Params]:
    """Draw each seed's Rademacher probes and a Gaussian power-iteration start vector.

    Returns:
        `num_probes` stacked probes and one stacked start vector, each tensor (S, *shape).
    """
    if len(generators) != num_seeds(params):
        raise ValueError(f"got {len(generators)} generators for {num_seeds(params)} seeds: "
                         f"pass one generator per seed.")
    probes, starts = [], []
    for index, generator in enumerate(generators):
        one_seed = {name: value[index] for name, value in params.items()}
        probes.append(rademacher_probes(one_seed, num_probes, generator))
        starts.append({name: torch.randn(value.shape, generator=generator, dtype=value.dtype)
                       .to(value.device) for name, value in one_seed.items()})
    stacked = [stack_seeds([seed_probes[k] for seed_probes in probes]) for k in range(num_probes)]
    return stacked, stack_seeds(starts)


def hessian_trace(spec: MLPSpec, params: Params, batch: Split,
                  probes: list[Params]) -> torch.Tensor:
    """Estimate tr(H) of the mean cross-entropy on `batch`, per seed, (1/k)·Σ_j v_jᵀ H v_j.

    Args:
        params: stacked, each (S, *shape).
        probes: k stacked probe vectors from `draw_probes`.

    Returns:
        (S,).
    """
    loss = _training_loss(spec, batch)
    return vmap(lambda p, v: hutchinson_trace(loss, p, v))(params, probes)


def top_eigenvalue(spec: MLPSpec, params: Params, batch: Split, start: Params,
                   num_iterations: int) -> torch.Tensor:
    """Estimate the Hessian eigenvalue of largest magnitude, per seed, by power iteration.

    Returns the Rayleigh quotient vᵀHv / vᵀv after `num_iterations` steps v ← Hv/‖Hv‖, shape
    (S,). Its magnitude is a lower bound on |λ|max, and it converges when the top eigenvalue
    is separated from the next one.
    """
    loss = _training_loss(spec, batch)
    return vmap(lambda p, v: power_iteration(loss, p, v, num_iterations))(params, start)


def gradient_norm(spec: MLPSpec, params: Params, batch: Split) -> torch.Tensor:
    """Return ‖∇_w L‖₂ over all parameters of the mean cross-entropy on `batch`, shape (S,)."""
    grads = vmap(grad(_training_loss(spec, batch)))(params)
    return torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads.values()))


def sharpness_metrics(spec: MLPSpec, params: Params, batch: Split, probes: list[Params],
                      start: Params, num_iterations: int, prefix: str) -> dict[str, torch.Tensor]:
    """Return `{prefix}/hessian_trace`, `{prefix}/top_eigenvalue` and `{prefix}/grad_norm`.

    Each value has shape (S,); see `hessian_trace`, `top_eigenvalue` and `gradient_norm`.
    """
    return {
        f"{prefix}/hessian_trace": hessian_trace(spec, params, batch, probes).detach(),
        f"{prefix}/top_eigenvalue":
            top_eigenvalue(spec, params, batch, start, num_iterations).detach(),
        f"{prefix}/grad_norm": gradient_norm(spec, params, batch).detach(),
    }

