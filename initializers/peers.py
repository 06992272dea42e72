"""Data-free peers of the transfer initializers: Kaiming, Xavier-normal and orthogonal.

Each draws every seed's weights from that seed's own "student-init" generator with the
`torch.nn.init` functions, so seed i gets the same weights whatever the number of seeds.
Biases start at zero, as in the papers that define these schemes.
"""

from __future__ import annotations

import torch

from initializers.registry import InitContext, InitResult, register
from initializers.standard import _draw, _zero_bias

RELU_GAIN = torch.nn.init.calculate_gain("relu")
"""√2: the gain that keeps the second moment of ReLU activations constant across layers."""


@register("kaiming", needs_teacher=False,
          description="He et al. (2015), normal, ReLU gain: W ~ N(0, 2/fan_in), b = 0")
def kaiming(ctx: InitContext) -> InitResult:
    def weight(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=g)

    return InitResult(_draw(ctx.student, ctx.generators("student-init"), weight, _zero_bias))


@register("kaiming-uniform", needs_teacher=False,
          description="He et al. (2015), uniform, ReLU gain: W ~ U(±√(6/fan_in)), b = 0")
def kaiming_uniform(ctx: InitContext) -> InitResult:
    def weight(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu", generator=g)

    return InitResult(_draw(ctx.student, ctx.generators("student-init"), weight, _zero_bias))


@register("xavier-normal", needs_teacher=False,
          description="Glorot & Bengio (2010), normal: W ~ N(0, 2/(fan_in+fan_out)), b = 0")
def xavier_normal(ctx: InitContext) -> InitResult:
    def weight(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.xavier_normal_(w, generator=g)

    return InitResult(_draw(ctx.student, ctx.generators("student-init"), weight, _zero_bias))


@register("orthogonal", needs_teacher=False,
          description="Saxe et al. (2014): W = √2·Q with Q a random (semi-)orthogonal matrix, "
          "b = 0")
def orthogonal(ctx: InitContext) -> InitResult:
    def weight(w: torch.Tensor, g: torch.Generator) -> None:
        torch.nn.init.orthogonal_(w, gain=RELU_GAIN, generator=g)

    return InitResult(_draw(ctx.student, ctx.generators("student-init"), weight, _zero_bias))
