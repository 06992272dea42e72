"""The initializer registry: a name maps to a function from an `InitContext` to weights.

A new initializer is one decorated function:

    @register("my-init", description="...", needs_teacher=False, compute="none")
    def my_init(ctx: InitContext) -> InitResult:
        ...

Third-party packages add theirs through the `bench.initializers` entry-point group; each
entry point names a module (or callable) whose import registers its initializers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

import torch

from bench import seeding
from bench.datasets import Split
from bench.engine import TrainingLoss
from bench.errors import unknown_name_error
from bench.models import MLPSpec, Params

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bench.initializers"


@dataclass(frozen=True)
class Compute:
    """Work an initializer spends before D2 training starts."""

    optimizer_steps: int = 0
    forward_backward_passes: int = 0
    """Minibatch forward + backward passes, per seed."""
    forward_passes: int = 0
    """Minibatch forward-only passes, per seed."""
    seconds: float = 0.0
    """Wall-clock time for all seeds of the call."""
    hessian_vector_products: int = 0
    """Minibatch Hessian-vector products (each costs about two forward-backward passes), per
    seed; not included in `forward_backward_passes`."""


@dataclass
class InitContext:
    """Everything an initializer may use, for one chunk of seeds.

    The student and teacher weights are stacked along a leading seed axis; `teacher_params`
    is None for scenarios or calls without a teacher.
    """

    student: MLPSpec
    teacher: MLPSpec
    teacher_params: Params | None
    d1_classes: tuple[int, ...]
    """Student label of each teacher class: teacher output k is student class d1_classes[k]."""
    d1_train: Split
    """D1's training split, labels in the teacher's label space (0..len(d1_classes)-1)."""
    d2_train: Split
    seed_indices: tuple[int, ...]
    suite_seed: int
    scenario: str
    device: str = "cpu"
    options: dict = field(default_factory=dict)
    """Per-initializer options from the configuration (e.g. the bias c for unseen classes)."""

    @property
    def num_seeds(self) -> int:
        return len(self.seed_indices)

    def generators(self, purpose: str) -> list[torch.Generator]:
        """Return one generator per seed for `purpose`, derived from the seed index."""
        return seeding.generators(self.suite_seed, self.scenario, self.seed_indices, purpose)

    def d1_star(self) -> Split:
        """Return D1's training split with labels mapped into the student's label space."""
        mapping = torch.tensor(self.d1_classes, dtype=torch.int64, device=self.d1_train.y.device)
        return Split(self.d1_train.x, mapping[self.d1_train.y])


@dataclass
class InitResult:
    """Student weights, each (num_seeds, *shape), the compute spent and recorded choices."""

    params: Params
    compute: Compute = field(default_factory=Compute)
    info: dict = field(default_factory=dict)
    training_loss: TrainingLoss | None = None
    """A term the D2 training adds to its loss (training-time peers such as `ki`); None for
    initializers that only set the starting weights."""


InitFunction = Callable[[InitContext], InitResult]


@dataclass(frozen=True)
class Initializer:
    """A registered initializer with what `bench list` shows about it."""

    name: str
    function: InitFunction
    description: str
    needs_teacher: bool
    compute: str
    """Extra compute before D2 training, in words (e.g. "none", "K Adam steps on D1*")."""

    def __call__(self, ctx: InitContext) -> InitResult:
        if self.needs_teacher and ctx.teacher_params is None:
            raise ValueError(f"initializer {self.name!r} needs a teacher, but none was given.")

        start = time.perf_counter()
        result = self.function(ctx)
        elapsed = time.perf_counter() - start

        result.compute = dataclasses.replace(result.compute, seconds=elapsed)
        return result


_REGISTRY: dict[str, Initializer] = {}
_plugins_loaded = False


def register(name: str, *, description: str, needs_teacher: bool, compute: str = "none"):
    """Register the decorated function under `name`.

    Args:
        name: the lower-case name users type, e.g. "copy-exact".
        description: one line for `bench list`.
        needs_teacher: whether the function reads `ctx.teacher_params`.
        compute: the extra compute it spends before D2 training, in words.
    """
    def decorate(function: InitFunction) -> InitFunction:
        if name in _REGISTRY and _REGISTRY[name].function is not function:
            raise ValueError(f"initializer {name!r} is already registered; choose another name.")
        _REGISTRY[name] = Initializer(name, function, description, needs_teacher, compute)
        return function

    return decorate


def load_plugins() -> None:
    """Import every module named in the `bench.initializers` entry-point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception as error:  # A broken plugin must not break the built-in ones.
            log.warning("failed to load initializer plugin %s: %s", entry_point.value, error)


def available() -> dict[str, Initializer]:
    """Return every registered initializer, built-in and plugin, by name."""
    load_plugins()
    return dict(_REGISTRY)


def get(name: str) -> Initializer:
    """Return the initializer registered under `name`; unknown names raise with the choices."""
    registry = available()
    if name not in registry:
        raise unknown_name_error("initializer", name, registry)
    return registry[name]
