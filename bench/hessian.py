"""Hessian-vector products and the estimators built on them, for one seed's loss.

All functions take a scalar loss L(w) of a parameter dict w and never form the Hessian H.
Hessian-vector products are forward-over-reverse: Hv = jvp(grad(L), (w,), (v,)). Each
function is written for a single seed; map it over the seed axis with `torch.func.vmap`
and draw the probe vectors outside the mapped function, from per-seed generators.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad, jvp

Params = dict[str, torch.Tensor]
Loss = Callable[[Params], torch.Tensor]


def hvp(loss: Loss, params: Params, vector: Params) -> Params:
    """Return H·v, where H = ∂²L/∂w² at `params` (forward-over-reverse, differentiable)."""
    return jvp(grad(loss), (params,), (vector,))[1]


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[name] * b[name]).sum() for name in a)


def hutchinson_frobenius_sq(loss: Loss, params: Params, probes: list[Params]) -> torch.Tensor:
    """Estimate ‖H‖²_F = E_v ‖Hv‖² with v ~ N(0, I), one Hessian-vector product per probe.

    Unbiased because E[vvᵀ] = I gives E‖Hv‖² = tr(HᵀH). Differentiable in `params`
    (the gradient of this estimate is what the λ4 term of φ needs).
    """
    total = 0.0
    for v in probes:
        hv = hvp(loss, params, v)
        total = total + _dot(hv, hv)
    return total / len(probes)


def hutchinson_trace(loss: Loss, params: Params, probes: list[Params]) -> torch.Tensor:
    """Estimate tr(H) = E_v vᵀHv with Rademacher or Gaussian probes v (Hutchinson 1989)."""
    total = 0.0
    for v in probes:
        total = total + _dot(v, hvp(loss, params, v))
    return total / len(probes)


def power_iteration(loss: Loss, params: Params, start: Params,
                    num_iterations: int = 20) -> torch.Tensor:
    """Return the Rayleigh quotient vᵀHv/vᵀv after `num_iterations` steps of v ← Hv/‖Hv‖.

    Converges to the eigenvalue of largest magnitude (the spectral norm up to sign) when
    it is separated from the next one; the estimate is a lower bound on |λ|max.
    """
    v = start
    for _ in range(num_iterations):
        hv = hvp(loss, params, v)
        norm = torch.sqrt(_dot(hv, hv)).clamp_min(1e-30)
        v = {name: value / norm for name, value in hv.items()}
    return _dot(v, hvp(loss, params, v)) / _dot(v, v)


def gaussian_probes(params: Params, num_probes: int, generator: torch.Generator) -> list[Params]:
    """Draw `num_probes` standard normal vectors shaped like one seed's `params`."""
    return [{name: torch.randn(value.shape, generator=generator, dtype=value.dtype).to(value.device)
             for name, value in params.items()} for _ in range(num_probes)]


def rademacher_probes(params: Params, num_probes: int, generator: torch.Generator) -> list[Params]:
    """Draw `num_probes` vectors of independent ±1 entries shaped like one seed's `params`."""
    return [{name: (torch.randint(0, 2, value.shape, generator=generator) * 2 - 1)
             .to(dtype=value.dtype, device=value.device)
             for name, value in params.items()} for _ in range(num_probes)]
