"""Robustness of trained students: corrupted inputs, noisy weights and adversarial inputs.

Every function works on stacked parameters (leading seed axis S) and returns one value per
seed. Random draws (input noise, weight noise, PGD random starts) are made one seed at a
time from that seed's own generator, outside any vmapped function, and then stacked. Seed
i's numbers therefore do not depend on how many seeds run together. Noise levels and attack
radii are multiples of the standard deviation of D2's training inputs, so the same
defaults mean the same thing on every scenario.

Sharpness and the initialization diagnostics live in `bench.sharpness`; the stored test-set
probabilities and the across-seed prediction statistics live in `bench.predictions`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from bench.datasets import Split, TaskData
from bench.engine import EVAL_BATCH_SIZE, evaluate
from bench.models import MLPSpec, Params, apply, apply_seeds, num_seeds
from bench.sharpness import PROBE_PURPOSE, draw_probes, sharpness_metrics

log = logging.getLogger(__name__)

GeneratorSource = Callable[[str], list[torch.Generator]]
"""Maps a purpose to one generator per seed of the cell, e.g. a partial of seeding.generators."""

NOISE_PURPOSE = "eval-noise"
"""Generator purpose of the input noise added to the test split."""
WEIGHT_NOISE_PURPOSE = "weight-noise"
PGD_START_PURPOSE = "pgd-start"


@dataclass(frozen=True)
class RobustnessConfig:
    """Settings of the robustness, sharpness and extra initialization measurements."""

    enabled: bool = True
    """Compute the robustness, sharpness and extra initialization metrics at all."""
    gaussian_levels: tuple[float, ...] = (0.1, 0.25, 0.5)
    """Standard deviations of Gaussian input noise, in units of the D2 input std."""
    uniform_levels: tuple[float, ...] = (0.1, 0.25, 0.5)
    """Half-widths δ of uniform input noise U(−δ, δ) per feature, in units of the input std."""
    weight_noise_levels: tuple[float, ...] = (0.05, 0.1, 0.2)
    """σ of Gaussian weight noise, relative to the RMS of each parameter tensor of each seed."""
    weight_noise_draws: int = 3
    """Independent weight-noise draws per level; the accuracy is their mean."""
    adversarial_epsilons: tuple[float, ...] = (0.025, 0.05, 0.1)
    """L∞ radii ε of FGSM and PGD, in units of the input std."""
    adversarial_samples: int = 500
    """First test samples attacked (the test split is already in random order)."""
    pgd_steps: int = 10
    pgd_step_fraction: float = 0.25
    """PGD step size as a fraction of ε."""
    pgd_random_start: bool = False
    """Start PGD from a per-seed uniform draw in the ε-box instead of the clean input."""
    sharpness_batch_size: int = 256
    """First samples of the diagnostic D2 training batch used by the curvature estimates."""
    hutchinson_probes: int = 4
    """Rademacher probes of the Hessian-trace estimate."""
    power_iterations: int = 10
    """Hessian-vector products of the top-eigenvalue power iteration."""
    save_predictions: bool = True
    """Write each cell's test-set class probabilities to RUN_DIR/predictions/."""

    def __post_init__(self):
        levels = {"gaussian_levels": self.gaussian_levels, "uniform_levels": self.uniform_levels,
                  "weight_noise_levels": self.weight_noise_levels,
                  "adversarial_epsilons": self.adversarial_epsilons}
        for name, values in levels.items():
            if any(not (value >= 0) for value in values):
                raise ValueError(f"{name}={values!r} is invalid: every level must be a "
                                 f"non-negative number (a multiple of the input or weight scale).")
        counts = {"weight_noise_draws": self.weight_noise_draws, "pgd_steps": self.pgd_steps,
                  "adversarial_samples": self.adversarial_samples,
                  "sharpness_batch_size": self.sharpness_batch_size,
                  "hutchinson_probes": self.hutchinson_probes,
                  "power_iterations": self.power_iterations}
        for name, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid: it must be a positive integer.")
        if not 0 < self.pgd_step_fraction <= 1:
            raise ValueError(f"pgd_step_fraction={self.pgd_step_fraction!r} is invalid: it must "
                             f"lie in (0, 1]; e.g. 0.25 gives steps of ε/4.")

    @staticmethod
    def from_dict(data: dict) -> "RobustnessConfig":
        """Rebuild a config stored as JSON, where tuples came back as lists."""
        return RobustnessConfig(**{key: tuple(value) if isinstance(value, list) else value
                                   for key, value in data.items()})


def input_scale(x: torch.Tensor) -> float:
    """Return the standard deviation of all entries of the inputs `x`, the unit of every level."""
    return float(x.std())


# ---------------------------------------------------------------------------------------
# Evaluation on per-seed inputs
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_inputs(spec: MLPSpec, params: Params, x: torch.Tensor,
                    y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return every seed's mean cross-entropy and accuracy on its own inputs.

    Args:
        params: stacked, each (S, *shape).
        x: (S, N, features), seed i's inputs in x[i].
        y: (N,) labels shared by all seeds.

    Returns:
        Loss and accuracy, each (S,).
    """
    if x.dim() != 3 or x.shape[0] != num_seeds(params) or x.shape[1] != y.shape[0]:
        raise ValueError(f"x has shape {tuple(x.shape)}: expected (num_seeds="
                         f"{num_seeds(params)}, num_samples={y.shape[0]}, features).")
    total_loss = torch.zeros(x.shape[0], device=x.device)
    total_correct = torch.zeros_like(total_loss)
    for start in range(0, x.shape[1], EVAL_BATCH_SIZE):
        logits = apply_seeds(spec, params, x[:, start:start + EVAL_BATCH_SIZE])
        labels = y[start:start + EVAL_BATCH_SIZE].expand(logits.shape[0], -1)
        total_loss += F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").sum(1)
        total_correct += (logits.argmax(-1) == labels).sum(1)
    return total_loss / x.shape[1], total_correct / x.shape[1]


def _per_seed(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Broadcast shared inputs (N, features) to (S, N, features) without copying."""
    return x.unsqueeze(0).expand(num_seeds(params), *x.shape)


# ---------------------------------------------------------------------------------------
# Corrupted inputs
# ---------------------------------------------------------------------------------------


def draw_input_noise(generators: list[torch.Generator], shape: tuple[int, ...],
                     device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw each seed's standard normal and U(−1, 1) noise for inputs of `shape`.

    Each generator draws the normal noise first, then the uniform noise. Both are reused at
    every level (scaled), so the curves over levels share their randomness.

    Returns:
        Normal and uniform noise, each (S, *shape).
    """
    normal, uniform = [], []
    for generator in generators:
        normal.append(torch.randn(shape, generator=generator))
        uniform.append(torch.rand(shape, generator=generator) * 2 - 1)
    return torch.stack(normal).to(device), torch.stack(uniform).to(device)


def corrupted_metrics(spec: MLPSpec, params: Params, test: Split, config: RobustnessConfig,
                      generators: list[torch.Generator], scale: float) -> dict[str, torch.Tensor]:
    """Measure loss and accuracy on test inputs with Gaussian and uniform noise added.

    Seed i is evaluated on x + level·scale·n_i, where n_i ~ N(0, I) or U(−1, 1) per feature is drawn
    from generators[i].

    Returns:
        `robust/gaussian@{level}/loss`, `.../accuracy`, and the same for `uniform`, each (S,).
    """
    normal, uniform = draw_input_noise(generators, tuple(test.x.shape), test.x.device)
    clean = _per_seed(params, test.x)
    metrics = {}
    for kind, noise, levels in (("gaussian", normal, config.gaussian_levels),
                                ("uniform", uniform, config.uniform_levels)):
        for level in levels:
            loss, accuracy = evaluate_inputs(spec, params, clean + (level * scale) * noise,
                                             test.y)
            metrics[f"robust/{kind}@{level:g}/loss"] = loss
            metrics[f"robust/{kind}@{level:g}/accuracy"] = accuracy
    return metrics


# ---------------------------------------------------------------------------------------
# Weight noise
# ---------------------------------------------------------------------------------------


def draw_weight_noise(params: Params, num_draws: int,
                      generators: list[torch.Generator]) -> list[Params]:
    """Draw `num_draws` standard normal perturbations shaped like the stacked `params`.

    Each generator draws its seed's tensors in the order draw, then parameter name.
    """
    if len(generators) != num_seeds(params):
        raise ValueError(f"got {len(generators)} generators for {num_seeds(params)} seeds: "
                         f"pass one generator per seed.")
    per_seed = [[{name: torch.randn(value.shape[1:], generator=generator, dtype=value.dtype)
                  for name, value in params.items()} for _ in range(num_draws)]
                for generator in generators]
    return [{name: torch.stack([draws[d][name] for draws in per_seed]).to(value.device)
             for name, value in params.items()} for d in range(num_draws)]


def perturb_weights(params: Params, noise: Params, level: float) -> Params:
    """Return w + level·RMS(w)·n for every parameter tensor w of every seed.

    RMS(w) = sqrt(mean(w²)) over one seed's tensor, so each layer's weights and biases are
    perturbed relative to their own scale.
    """
    perturbed = {}
    for name, value in params.items():
        rms = value.pow(2).flatten(1).mean(1).sqrt()  # (S,)
        rms = rms.view(-1, *([1] * (value.dim() - 1)))
        perturbed[name] = value + (level * rms) * noise[name]
    return perturbed


def weight_noise_metrics(spec: MLPSpec, params: Params, test: Split, config: RobustnessConfig,
                         generators: list[torch.Generator]) -> dict[str, torch.Tensor]:
    """Measure test accuracy and loss with Gaussian noise added to the weights.

    Returns:
        `robust/weight_noise@{level}/accuracy` and `.../loss`, each (S,), the mean over
        `config.weight_noise_draws` draws (the same draws at every level).
    """
    draws = draw_weight_noise(params, config.weight_noise_draws, generators)
    metrics = {}
    for level in config.weight_noise_levels:
        # The inputs are shared, so the clean evaluation applies and level 0 reproduces it.
        results = [evaluate(spec, perturb_weights(params, noise, level), test) for noise in draws]
        losses, accuracies = (torch.stack(values) for values in zip(*results))  # (draws, S)
        metrics[f"robust/weight_noise@{level:g}/loss"] = _mean_over_draws(losses)
        metrics[f"robust/weight_noise@{level:g}/accuracy"] = _mean_over_draws(accuracies)
    return metrics


def _mean_over_draws(values: torch.Tensor) -> torch.Tensor:
    # A plain mean of three equal numbers can round differently from them. The first value
    # plus the mean offset returns identical draws (level 0) bit for bit.
    return values[0] + (values - values[0]).mean(0)


# ---------------------------------------------------------------------------------------
# Adversarial inputs
# ---------------------------------------------------------------------------------------


def input_gradients(spec: MLPSpec, params: Params, x: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    """Return ∂L/∂x of the summed cross-entropy L = Σ_n CE(f(x_n), y_n) for every seed.

    The sum (not the mean) keeps each sample's gradient independent of the batch size.

    Args:
        params: stacked, each (S, *shape).
        x: (S, N, features), y: (N,).

    Returns:
        (S, N, features).
    """
    def loss(p: Params, inputs: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(apply(spec, p, inputs), y, reduction="sum")

    return vmap(grad(loss, argnums=1))(params, x)


def fgsm(spec: MLPSpec, params: Params, x: torch.Tensor, y: torch.Tensor,
         epsilon: float) -> torch.Tensor:
    """Return the fast gradient sign inputs x + ε·sign(∂L/∂x) (Goodfellow et al. 2015).

    Args:
        x: (S, N, features); epsilon: the L∞ radius in input units.

    Returns:
        (S, N, features).
    """
    return x + epsilon * input_gradients(spec, params, x, y).sign()


def pgd(spec: MLPSpec, params: Params, x: torch.Tensor, y: torch.Tensor, epsilon: float,
        num_steps: int, step_size: float, start: torch.Tensor | None = None) -> torch.Tensor:
    """Return projected gradient descent inputs in the L∞ ball of radius ε (Madry et al. 2018).

    x_{t+1} = clip(x_t + α·sign(∂L/∂x_t), x − ε, x + ε), starting from x_0 = x, or from
    x + `start` when a random start (each entry in [−ε, ε]) is given. Inputs are not clipped
    to a data range because the scenarios' inputs are standardized and unbounded.

    Args:
        x: (S, N, features); y: (N,); epsilon: radius; step_size: α, both in input units.
        start: optional (S, N, features) offset drawn per seed outside this function.
    """
    low, high = x - epsilon, x + epsilon
    adversarial = x if start is None else torch.clamp(x + start, low, high)
    for _ in range(num_steps):
        step = step_size * input_gradients(spec, params, adversarial, y).sign()
        adversarial = torch.clamp(adversarial + step, low, high)
    return adversarial


def adversarial_metrics(spec: MLPSpec, params: Params, test: Split, config: RobustnessConfig,
                        generators: list[torch.Generator], scale: float) -> dict[str, torch.Tensor]:
    """Measure accuracy and loss under FGSM and PGD on the first test samples.

    Returns:
        `robust/fgsm@{ε}/accuracy`, `robust/pgd@{ε}/accuracy` and their `/loss`, each (S,),
        with ε in units of `scale` (the input std), and `robust/attacked_clean/accuracy` and
        `/loss`: the clean numbers on the same samples, the attacks' reference at ε = 0.
    """
    count = min(config.adversarial_samples, len(test))
    x, y = _per_seed(params, test.x[:count]), test.y[:count]
    unit_start = None
    if config.pgd_random_start:
        unit_start = torch.stack([torch.rand(x.shape[1:], generator=g) * 2 - 1
                                  for g in generators]).to(x.device)

    loss, accuracy = evaluate_inputs(spec, params, x, y)
    metrics = {"robust/attacked_clean/loss": loss, "robust/attacked_clean/accuracy": accuracy}
    for level in config.adversarial_epsilons:
        epsilon = level * scale
        start = None if unit_start is None else epsilon * unit_start
        attacks = {
            "fgsm": fgsm(spec, params, x, y, epsilon),
            "pgd": pgd(spec, params, x, y, epsilon, config.pgd_steps,
                       config.pgd_step_fraction * epsilon, start),
        }
        for name, inputs in attacks.items():
            loss, accuracy = evaluate_inputs(spec, params, inputs, y)
            metrics[f"robust/{name}@{level:g}/loss"] = loss
            metrics[f"robust/{name}@{level:g}/accuracy"] = accuracy
    return metrics


# ---------------------------------------------------------------------------------------
# Entry points for a cell
# ---------------------------------------------------------------------------------------


def _sharpness_batch(batch: Split, config: RobustnessConfig) -> Split:
    size = config.sharpness_batch_size
    return Split(batch.x[:size], batch.y[:size])


def initial_diagnostics(spec: MLPSpec, params: Params, batch: Split, config: RobustnessConfig,
                        generators: GeneratorSource) -> dict[str, torch.Tensor]:
    """Measure the initialized student on the first samples of the fixed diagnostic batch.

    Returns (each (S,)): `init/hessian_trace`, `init/top_eigenvalue` and `init/grad_norm` of
    the mean cross-entropy; see `bench.sharpness`.
    """
    probes, start = draw_probes(params, config.hutchinson_probes, generators(PROBE_PURPOSE))
    return sharpness_metrics(spec, params, _sharpness_batch(batch, config), probes, start,
                             config.power_iterations, "init")


def final_diagnostics(spec: MLPSpec, params: Params, data: TaskData, batch: Split,
                      config: RobustnessConfig, generators: GeneratorSource,
                      diverged: torch.Tensor) -> dict[str, torch.Tensor]:
    """Measure the trained students' robustness and sharpness; diverged seeds get NaN.

    Args:
        params: trained weights, stacked (S, *shape).
        data: D2; its training inputs set the noise unit, its test split is corrupted.
        batch: the fixed D2 training batch; the curvature estimates use its first
            `config.sharpness_batch_size` samples, as at initialization.
        generators: per-seed generators by purpose.
        diverged: (S,) bool.

    Returns:
        The `robust/...` metrics of `corrupted_metrics`, `weight_noise_metrics` and
        `adversarial_metrics`, and `sharpness/hessian_trace`, `sharpness/top_eigenvalue`,
        `sharpness/grad_norm`, each (S,).
    """
    start_time = time.perf_counter()
    scale = input_scale(data.train.x)
    metrics = corrupted_metrics(spec, params, data.test, config, generators(NOISE_PURPOSE), scale)
    metrics.update(weight_noise_metrics(spec, params, data.test, config,
                                        generators(WEIGHT_NOISE_PURPOSE)))
    metrics.update(adversarial_metrics(spec, params, data.test, config,
                                       generators(PGD_START_PURPOSE), scale))

    probes, start = draw_probes(params, config.hutchinson_probes, generators(PROBE_PURPOSE))
    metrics.update(sharpness_metrics(spec, params, _sharpness_batch(batch, config), probes,
                                     start, config.power_iterations, "sharpness"))

    nan = torch.full(diverged.shape, float("nan"), device=diverged.device)
    metrics = {name: torch.where(diverged, nan, value.float()) for name, value in metrics.items()}
    log.debug("robustness and sharpness of %d seeds took %.1f s", len(diverged),
              time.perf_counter() - start_time)
    return metrics
