"""A functional ReLU MLP whose parameters carry a leading seed dimension.

Parameters are a dict `{name: tensor}` with names as in `torch.nn.Sequential` of Linear
layers (`layers.0.weight`, `layers.0.bias`, ...). Stacked parameters have shape
(num_seeds, *shape); `apply` runs one seed, `apply_seeds` vmaps it over the seed axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

Params = dict[str, torch.Tensor]


class MLP(nn.Module):
    """ReLU MLP `sizes[0] → sizes[1] → … → sizes[-1]`, no activation on the output."""

    def __init__(self, sizes: tuple[int, ...]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = torch.relu(x)
        return x


@dataclass(frozen=True)
class MLPSpec:
    """The architecture: layer widths, input first and number of classes last."""

    sizes: tuple[int, ...]

    def __post_init__(self):
        # Build the template now: a first build inside vmap would trip vmap's check on the
        # random operations of nn.Linear.reset_parameters.
        _template(tuple(self.sizes))

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def num_parameters(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def weight(self, layer: int) -> str:
        return f"layers.{layer}.weight"

    def bias(self, layer: int) -> str:
        return f"layers.{layer}.bias"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Return each parameter's shape without the seed dimension."""
        shapes = {}
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            shapes[self.weight(layer)] = (fan_out, fan_in)
            shapes[self.bias(layer)] = (fan_out,)
        return shapes

    def module(self) -> MLP:
        """Return a stateless template module on the meta device, for `functional_call`."""
        return _template(self.sizes)


_TEMPLATES: dict[tuple[int, ...], MLP] = {}


def _template(sizes: tuple[int, ...]) -> MLP:
    if sizes not in _TEMPLATES:
        with torch.device("meta"):
            _TEMPLATES[sizes] = MLP(sizes)
    return _TEMPLATES[sizes]


def apply(spec: MLPSpec, params: Params, x: torch.Tensor) -> torch.Tensor:
    """Return the logits of one seed: params without seed axis, x (batch, in) → (batch, classes)."""
    return functional_call(spec.module(), params, (x,))


def apply_seeds(spec: MLPSpec, params: Params, x: torch.Tensor) -> torch.Tensor:
    """Return logits for every seed.

    Args:
        params: stacked, each (num_seeds, *shape).
        x: (num_seeds, batch, in) for per-seed inputs or (batch, in) shared by all seeds.

    Returns:
        (num_seeds, batch, num_classes).
    """
    x_dim = 0 if x.dim() == 3 else None
    return vmap(lambda p, xb: apply(spec, p, xb), in_dims=(0, x_dim))(params, x)


def hidden_activations(spec: MLPSpec, params: Params, x: torch.Tensor) -> list[torch.Tensor]:
    """Return the post-ReLU activations of every hidden layer for stacked params.

    x is (batch, in), shared by all seeds; each output is (num_seeds, batch, width).
    """
    activations = []
    h = x.unsqueeze(0).expand(next(iter(params.values())).shape[0], *x.shape)
    for layer in range(spec.num_layers - 1):
        w, b = params[spec.weight(layer)], params[spec.bias(layer)]
        h = torch.relu(torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2)))
        activations.append(h)
    return activations


def num_seeds(params: Params) -> int:
    """Return the size of the leading seed axis."""
    return int(next(iter(params.values())).shape[0])


def select_seeds(params: Params, index: torch.Tensor | list[int]) -> Params:
    """Return the parameters of a subset of seeds."""
    return {name: value[index] for name, value in params.items()}


def stack_seeds(per_seed: list[Params]) -> Params:
    """Stack a list of single-seed parameter dicts along a new seed axis."""
    return {name: torch.stack([p[name] for p in per_seed]) for name in per_seed[0]}
