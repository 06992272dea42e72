"""Seed-parallel training: S seeds of one MLP trained at once with torch.func.

One training step, for all seeds together:

    1. draw each seed's minibatch indices from its own data-order generator;
    2. loss_i, g_i = grad_and_value(L)(w_i, x_i, y_i), mapped over the seed axis by vmap;
    3. mark seeds whose loss is non-finite as diverged (from then on frozen);
    4. take an optimizer step on the stacked tensors (Adam and SGD-momentum act elementwise,
       so each seed's update depends on its own gradients only);
    5. put the frozen seeds' weights back.

Evaluation on the train, validation and test splits happens at step 0, every `eval_every`
steps and after the last step.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import grad_and_value, vmap

from bench.datasets import Split, TaskData
from bench.models import MLPSpec, Params, apply, apply_seeds, num_seeds

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
CURVE_METRICS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy",
                 "test/loss", "test/accuracy")
EVAL_BATCH_SIZE = 1024
"""Samples per evaluation forward pass; bounds activation memory at large S."""
FUSED_DEVICES = ("cpu", "cuda")
"""Devices on which the optimizers use torch's fused kernels; others use foreach."""


@dataclass(frozen=True)
class Recipe:
    """The training recipe: optimizer, learning rate and the fixed step budget."""

    optimizer: str = "adam"
    """"adam" or "sgd" (SGD with momentum)."""
    learning_rate: float = 1e-3
    num_steps: int = 1000
    batch_size: int = 128
    momentum: float = 0.9
    """Momentum of "sgd"; ignored by "adam"."""
    eval_every: int = 50
    """Steps between evaluations on the train, validation and test splits."""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is invalid: use one of {OPTIMIZERS}.")
        for name in ("learning_rate", "num_steps", "batch_size", "eval_every"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name}={value!r} is invalid: it must be positive.")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum={self.momentum!r} is invalid: it must lie in [0, 1).")


@dataclass
class TrainResult:
    """Trained weights and per-seed curves.

    `curves[name]` has shape (num_seeds, len(eval_steps)); after a seed diverges its curve
    values are NaN. `diverged_step[i]` is the step whose loss was non-finite, or -1.
    """

    params: Params
    eval_steps: list[int]
    curves: dict[str, torch.Tensor]
    diverged_step: torch.Tensor
    seconds: float

    @property
    def diverged(self) -> torch.Tensor:
        return self.diverged_step >= 0


def tune_allocator() -> None:
    """Keep glibc from returning activation buffers to the OS after every step.

    Without this, buffers above the mmap threshold are unmapped and faulted back in each
    step (thousands of page faults per step at S = 128), which costs up to 20% throughput.
    M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3 (malloc.h).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # Not glibc (macOS, musl): nothing to tune.
        return
    limit = 32 * 1024 * 1024  # The largest mmap threshold glibc accepts on 64-bit.
    libc.mallopt(-3, limit)
    libc.mallopt(-1, 2 * limit)
    libc.mallopt(-2, limit)


class SeedBatches:
    """Per-seed minibatch indices: each seed shuffles with its own generator every epoch.

    An epoch yields `num_samples // batch_size` full batches; the remainder is dropped so
    that every step has the same shape.
    """

    def __init__(self, num_samples: int, batch_size: int, generators: list[torch.Generator]):
        self.batch_size = min(batch_size, num_samples)
        self.batches_per_epoch = num_samples // self.batch_size
        self.num_samples = num_samples
        self.generators = generators
        self.position = self.batches_per_epoch
        self.order = None

    def next(self) -> torch.Tensor:
        """Return the next indices, shape (num_seeds, batch_size)."""
        if self.position == self.batches_per_epoch:
            self.order = torch.stack(
                [torch.randperm(self.num_samples, generator=g) for g in self.generators]
            )
            self.position = 0
        start = self.position * self.batch_size
        self.position += 1
        return self.order[:, start:start + self.batch_size]


def cross_entropy_loss(spec: MLPSpec) -> Callable:
    """Return L(w, x, y) = mean cross-entropy of one seed's logits on a minibatch."""
    def loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(apply(spec, params, x), y)

    return loss


def make_optimizer(recipe: Recipe, tensors: list[torch.Tensor]) -> torch.optim.Optimizer:
    """Build the optimizer on stacked tensors; both choices act elementwise, hence per seed."""
    # The fused kernels take one call per step for all tensors. Fused Adam took about 0.5 ms
    # a step against 1.7 ms for foreach at 32 seeds of the 40-256-128-64-10 student (2 cores).
    fused = tensors[0].device.type in FUSED_DEVICES
    implementation = {"fused": True} if fused else {"foreach": True}
    if recipe.optimizer == "adam":
        return torch.optim.Adam(tensors, lr=recipe.learning_rate, **implementation)
    return torch.optim.SGD(tensors, lr=recipe.learning_rate, momentum=recipe.momentum,
                           **implementation)


@torch.no_grad()
def evaluate(spec: MLPSpec, params: Params, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the mean cross-entropy and the accuracy of every seed on `split`, each (S,)."""
    total_loss = torch.zeros(num_seeds(params), device=split.x.device)
    total_correct = torch.zeros_like(total_loss)
    for start in range(0, len(split), EVAL_BATCH_SIZE):
        x, y = split.x[start:start + EVAL_BATCH_SIZE], split.y[start:start + EVAL_BATCH_SIZE]
        logits = apply_seeds(spec, params, x)  # (S, batch, classes)
        y_seeds = y.expand(logits.shape[0], -1)
        losses = F.cross_entropy(logits.transpose(1, 2), y_seeds, reduction="none")
        total_loss += losses.sum(1)
        total_correct += (logits.argmax(-1) == y_seeds).sum(1)
    return total_loss / len(split), total_correct / len(split)


def _record(spec: MLPSpec, params: Params, data: TaskData, curves: dict, diverged: torch.Tensor):
    for split_name in ("train", "val", "test"):
        loss, accuracy = evaluate(spec, params, getattr(data, split_name))
        nan = torch.full_like(loss, float("nan"))
        curves[f"{split_name}/loss"].append(torch.where(diverged, nan, loss))
        curves[f"{split_name}/accuracy"].append(torch.where(diverged, nan, accuracy))


def gradient_function(spec: MLPSpec, loss_fn: Callable | None = None,
                      compile_step: bool = False) -> Callable:
    """Return vmap(grad_and_value(L)): (stacked params, x, y) → (grads, losses), per seed.

    With `compile_step`, the mapped function, backward pass included, runs under
    torch.compile(fullgraph=True, dynamic=False). Its gradients match the eager ones to float
    rounding (the kernels differ). Every new input shape, such as another seed count, compiles
    again. That took 17-30 s per shape for the mnist1d-subset student on 2 cores.
    """
    if compile_step:
        return _compiled_gradient(spec, loss_fn)
    return vmap(grad_and_value(loss_fn or cross_entropy_loss(spec)))


@functools.lru_cache(maxsize=None)
def _compiled_gradient(spec: MLPSpec, loss_fn: Callable | None) -> Callable:
    # Cached so that later `train` calls with the same spec and shapes reuse the compiled code.
    # NOTE: torch.compile keeps at most torch._dynamo.config.recompile_limit (8) compiled
    # versions per function and falls back to eager beyond that, e.g. past 8 seed counts.
    mapped = vmap(grad_and_value(loss_fn or cross_entropy_loss(spec)))
    compiled = torch.compile(mapped, fullgraph=True, dynamic=False)
    state = {"fallback": False}

    def step(*args):
        if state["fallback"]:
            return mapped(*args)
        try:
            return compiled(*args)
        except Exception as error:  # No C++ compiler, an unsupported backend, ...: run eager.
            log.warning("torch.compile failed (%s: %s); training continues eagerly, about 1.5x "
                        "slower", type(error).__name__, str(error).splitlines()[0][:200])
            state["fallback"] = True
            return mapped(*args)

    return step


@dataclass(frozen=True)
class TrainingLoss:
    """A per-seed term that training adds to the loss: L(w, x, y) + λ(t) · term(w, a, x, y).

    This is how a training-time method (e.g. distillation toward the teacher) changes the D2
    loss. The engine maps `term` over the seed axis together with the weights, so `aux` contains
    per-seed tensors the term needs (e.g. the teacher's weights), each (num_seeds, *shape).
    λ(t) = weight(step, num_steps) is the same for every seed and reaches the mapped function
    as a 0-dim tensor. Steps with λ(t) = 0 run the plain step, so a zero weight trains exactly
    as without the term and spends nothing on it.
    """

    term: Callable[[Params, Params, torch.Tensor, torch.Tensor], torch.Tensor]
    """One seed's term(params, aux, x, y) → scalar; x (batch, features), y (batch,)."""
    aux: Params
    """Per-seed tensors passed to `term`, each (num_seeds, *shape)."""
    weight: Callable[[int, int], float]
    """λ(step, num_steps): the term's weight at 0-based `step` of a `num_steps` budget."""
    forward_passes_per_step: int = 0
    """Extra minibatch forward passes (e.g. the teacher's) per step with a nonzero weight."""

    def active_steps(self, num_steps: int) -> int:
        """Return how many of `num_steps` steps compute the term (nonzero weight)."""
        return sum(self.weight(step, num_steps) != 0.0 for step in range(num_steps))

    def gradient_function(self, spec: MLPSpec, loss_fn: Callable | None = None) -> Callable:
        """Return (params, aux, x, y, λ) → (grads, losses) of L + λ·term, mapped over seeds."""
        base = loss_fn or cross_entropy_loss(spec)

        def mixed(params: Params, aux: Params, x: torch.Tensor, y: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
            return base(params, x, y) + weight * self.term(params, aux, x, y)

        return vmap(grad_and_value(mixed), in_dims=(0, 0, 0, 0, None))


def step_unless_diverged(optimizer: torch.optim.Optimizer, names: list[str],
                         tensors: list[torch.Tensor], grads: dict[str, torch.Tensor],
                         losses: torch.Tensor, diverged_step: torch.Tensor,
                         step: int) -> torch.Tensor:
    """Take one optimizer step on stacked `tensors`, leaving diverged seeds frozen.

    A seed whose loss (S,) is non-finite at `step` is marked diverged there. Frozen seeds get
    a zero gradient, which keeps their optimizer state finite, and their weights are put back
    after the step, so no seed's update depends on another seed. Returns the updated
    divergence steps, shape (S,), -1 for seeds that have not diverged.
    """
    newly = ~torch.isfinite(losses) & (diverged_step < 0)
    diverged_step = torch.where(newly, torch.full_like(diverged_step, step), diverged_step)
    frozen = diverged_step >= 0
    any_frozen = bool(frozen.any())
    before = [t.clone() for t in tensors] if any_frozen else None

    for tensor, name in zip(tensors, names):
        grad = grads[name]
        if any_frozen:
            mask = frozen.view(-1, *([1] * (grad.dim() - 1)))
            grad = torch.where(mask, torch.zeros_like(grad), grad)
        tensor.grad = grad
    optimizer.step()

    if any_frozen:
        with torch.no_grad():
            for tensor, old in zip(tensors, before):
                mask = frozen.view(-1, *([1] * (tensor.dim() - 1)))
                tensor.copy_(torch.where(mask, old, tensor))
    return diverged_step


def make_step(
    spec: MLPSpec,
    recipe: Recipe,
    names: list[str],
    tensors: list[torch.Tensor],
    *,
    loss_fn: Callable | None = None,
    compile_step: bool = False,
    training_loss: TrainingLoss | None = None,
) -> Callable:
    """Return the training step of `train` for stacked `tensors`, which it updates in place.

    The returned `train_step(x, y, diverged_step, step)` takes per-seed minibatches x
    (S, batch, features) and y (S, batch), and the step at which each seed diverged (-1 if
    none), shape (S,). It returns this step's per-seed losses and the updated divergence steps.

    Args:
        spec: the architecture.
        recipe: the optimizer and its hyperparameters.
        names: parameter names, in the order of `tensors`.
        tensors: stacked parameters, each (S, *shape).
        loss_fn: per-seed L(w, x, y) → scalar; mean cross-entropy when None.
        compile_step: compile the gradient computation (see `gradient_function`).
        training_loss: a term added to the loss while its weight is nonzero (see
            `TrainingLoss`); those steps run eagerly even with `compile_step`.
    """
    optimizer = make_optimizer(recipe, tensors)
    step_fn = gradient_function(spec, loss_fn, compile_step)
    mixed_fn = None if training_loss is None else training_loss.gradient_function(spec, loss_fn)

    def train_step(x: torch.Tensor, y: torch.Tensor, diverged_step: torch.Tensor,
                   step: int) -> tuple[torch.Tensor, torch.Tensor]:
        # 2. Per-seed gradients and losses, mapped over the seed axis.
        weight = 0.0 if training_loss is None else training_loss.weight(step, recipe.num_steps)
        if weight == 0.0:
            grads, losses = step_fn(dict(zip(names, tensors)), x, y)
        else:
            grads, losses = mixed_fn(dict(zip(names, tensors)), training_loss.aux, x, y,
                                     torch.tensor(weight, dtype=x.dtype, device=x.device))

        # 3-5. Mark and freeze diverged seeds, then step the optimizer for the others.
        diverged_step = step_unless_diverged(optimizer, names, tensors, grads, losses,
                                             diverged_step, step)
        return losses, diverged_step

    return train_step


def train(
    spec: MLPSpec,
    params: Params,
    data: TaskData,
    recipe: Recipe,
    order_generators: list[torch.Generator],
    *,
    loss_fn: Callable | None = None,
    progress: Callable[[int], None] | None = None,
    compile_step: bool = False,
    training_loss: TrainingLoss | None = None,
) -> TrainResult:
    """Train every seed of `params` on `data.train` for `recipe.num_steps` steps.

    Args:
        spec: the architecture.
        params: initial weights, each (num_seeds, *shape); not modified.
        data: train / validation / test splits on the same device as `params`.
        recipe: optimizer, learning rate, budget, batch size, evaluation interval.
        order_generators: one generator per seed for the data order.
        loss_fn: per-seed L(w, x, y) → scalar; mean cross-entropy when None.
        progress: called with the number of steps done since its last call.
        compile_step: compile the per-seed gradient computation with torch.compile (see
            `gradient_function`): faster per step, but the first call per seed count costs
            tens of seconds of compilation.
        training_loss: a term added to the loss while its weight is nonzero (see
            `TrainingLoss`); None trains on `loss_fn` alone.

    Returns:
        The final weights (diverged seeds frozen at their last finite step), the curves and
        the step at which each seed diverged.
    """
    start_time = time.perf_counter()
    S = num_seeds(params)
    if len(order_generators) != S:
        raise ValueError(f"got {len(order_generators)} data-order generators for {S} seeds.")

    names = list(params)
    tensors = [params[name].detach().clone() for name in names]
    train_step = make_step(spec, recipe, names, tensors, loss_fn=loss_fn,
                           compile_step=compile_step, training_loss=training_loss)
    batches = SeedBatches(len(data.train), recipe.batch_size, order_generators)

    device = tensors[0].device
    diverged_step = torch.full((S,), -1, dtype=torch.int64, device=device)
    curves = {name: [] for name in CURVE_METRICS}
    eval_steps = [0]
    _record(spec, dict(zip(names, tensors)), data, curves, diverged_step >= 0)

    for step in range(recipe.num_steps):
        # 1. Per-seed minibatches: (S, batch, features) and (S, batch).
        index = batches.next().to(device)
        x, y = data.train.x[index], data.train.y[index]

        # 2.-5. Gradients, divergence check, optimizer step, frozen seeds restored.
        losses, diverged_step = train_step(x, y, diverged_step, step)
        frozen = diverged_step >= 0

        done = step + 1
        if done % recipe.eval_every == 0 or done == recipe.num_steps:
            eval_steps.append(done)
            _record(spec, dict(zip(names, tensors)), data, curves, frozen)
        if progress is not None:
            progress(1)

    final = {name: tensor.detach() for name, tensor in zip(names, tensors)}
    stacked = {name: torch.stack(values, dim=1) for name, values in curves.items()}
    return TrainResult(final, eval_steps, stacked, diverged_step,
                       time.perf_counter() - start_time)
