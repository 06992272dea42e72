"""Data-free initialization schemes, drawn per seed from that seed's own generator."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bench.models import MLPSpec, Params, stack_seeds
from initializers.registry import InitContext, InitResult, register

WeightFill = Callable[[torch.Tensor, torch.Generator], None]


def _draw(spec: MLPSpec, generators: list[torch.Generator], fill_weight: WeightFill,
          fill_bias: Callable[[torch.Tensor, int, torch.Generator], None]) -> Params:
    """Draw stacked parameters, one seed at a time, each from its own generator."""
    per_seed = []
    for g in generators:
        params = {}
        for layer in range(spec.num_layers):
            fan_in, fan_out = spec.sizes[layer], spec.sizes[layer + 1]
            weight, bias = torch.empty(fan_out, fan_in), torch.empty(fan_out)
            fill_weight(weight, g)
            fill_bias(bias, fan_in, g)
            params[spec.weight(layer)], params[spec.bias(layer)] = weight, bias
        per_seed.append(params)
    return stack_seeds(per_seed)


def _torch_default_bias(bias: torch.Tensor, fan_in: int, g: torch.Generator) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    torch.nn.init.uniform_(bias, -bound, bound, generator=g)


def _zero_bias(bias: torch.Tensor, fan_in: int, g: torch.Generator) -> None:
    torch.nn.init.zeros_(bias)


def torch_default(spec: MLPSpec, generators: list[torch.Generator]) -> Params:
    """Return PyTorch's default Linear initialization for every seed.

    W ~ Kaiming-uniform with a = √5, i.e. U(±1/√fan_in), and b ~ U(±1/√fan_in), as
    `torch.nn.Linear.reset_parameters` does.
    """
    def weight(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)

    return _draw(spec, generators, weight, _torch_default_bias)


@register("uniform", description="PyTorch's default for Linear: W, b ~ U(±1/√fan_in)",
          needs_teacher=False)
def uniform(ctx: InitContext) -> InitResult:
    return InitResult(torch_default(ctx.student, ctx.generators("student-init")))


@register("xavier", description="Glorot & Bengio (2010), uniform: W ~ U(±√(6/(fan_in+fan_out))), b = 0",
          needs_teacher=False)
def xavier(ctx: InitContext) -> InitResult:
    def weight(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.xavier_uniform_(w, generator=g)

    return InitResult(_draw(ctx.student, ctx.generators("student-init"), weight, _zero_bias))
