"""φ, the optimization-based transfer initializer, its ablations and the `pretrain` control.

    φ(u) = argmin_w  λ1·L_f(w, D1*)                  cross-entropy on D1, softmax over D1's classes
                   + λ2·‖E(w) − u‖²                  distance of the teacher-shaped block to u
                   + λ3·E_{x'∈U_δ(x)} L_f(w, x', y)  Monte Carlo mean over m perturbed copies
                   + λ4·‖∂²L_f/∂w²‖²_F               Hutchinson, p probes, one HVP each

The argmin is searched by Adam for K steps on minibatches of D1*, all seeds at once: one
step maps `grad_and_value` of the per-seed objective over the seed axis with `torch.func.vmap`.
Every random draw (minibatch order, the perturbations of λ3, the probes of λ4) comes from the
seed's own generator (purposes "phi-order", "phi-noise", "phi-probes") and is made outside
the mapped function, so seed i's result does not depend on the other seeds in its chunk.
A term whose λ is 0 is neither computed nor drawn for.

Options (`ctx.options`, i.e. `RunConfig.init_options`; defaults in `PHI_DEFAULTS`, chosen
on the validation split as documented in docs/phi-defaults.md):

    phi_steps            K, Adam steps                                   (int >= 0)
    phi_lambdas          (λ1, λ2, λ3, λ4), or a dict with any of the keys
                         "ce", "l2", "robust", "hessian" (the rest default)  (floats >= 0)
    phi_lr               Adam learning rate                              (float > 0)
    phi_batch_size       D1* minibatch size                              (int >= 1)
    phi_delta            δ, radius of U_δ (box) or standard deviation (gaussian)  (float >= 0)
    phi_draws            m, perturbed copies per example and step        (int >= 1)
    phi_neighbourhood    "box" (uniform in the L∞ ball) or "gaussian"
    phi_probes           p, Hutchinson probes per step                   (int >= 1)
    phi_hessian_batch    samples of the minibatch λ4 is computed on, the first ones of the
                         seed's shuffled minibatch (int >= 1; capped at phi_batch_size).
                         λ4 costs ~7 plain steps per probe at the full minibatch; a
                         sub-batch keeps φ's step within ~8 plain steps.
    phi_hessian_norm     "frobenius" (Hutchinson) or "spectral" (power iteration, squared)
    phi_power_iterations power-iteration steps of the "spectral" option  (int >= 1)
    phi_l2               "squared" (‖E(w) − u‖²) or "norm" (‖E(w) − u‖)
    phi_start            registered initializer the search starts from   ("copy-exact")
    phi_trace_points     steps at which the per-term trace is kept       (int >= 2)

`pretrain` reads phi_steps, phi_lr and phi_batch_size too (it is compute-matched to φ), and
    pretrain_softmax     "d1" (softmax over D1's classes, as φ's λ1) or "all"
    pretrain_match       "steps" (K steps, the design's control) or "passes" (as many steps
                         as φ's forward-backward pass count, a stricter control)
"""

from __future__ import annotations

import difflib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch.func import grad_and_value, vmap

from bench.datasets import Split
from bench.engine import SeedBatches, cross_entropy_loss, step_unless_diverged
from bench.hessian import gaussian_probes
from bench.models import MLPSpec, Params, stack_seeds
from initializers import phi_terms, transfer
from initializers.registry import Compute, InitContext, InitResult, get, register
from initializers.standard import torch_default

log = logging.getLogger(__name__)

TERMS = ("ce", "l2", "robust", "hessian")
"""The objective's terms in λ order: λ1 … λ4."""

PHI_DEFAULTS: dict = {
    "phi_steps": 200,
    "phi_lambdas": (1.0, 1.0, 1.0, 1e-5),
    "phi_lr": 3e-4,
    "phi_batch_size": 128,
    "phi_delta": 0.1,
    "phi_draws": 2,
    "phi_neighbourhood": "box",
    "phi_probes": 1,
    "phi_hessian_batch": 32,
    "phi_hessian_norm": "frobenius",
    "phi_power_iterations": 10,
    "phi_l2": "squared",
    "phi_start": "copy-exact",
    "phi_trace_points": 11,
}
"""Defaults of every φ option; see docs/phi-defaults.md for the sweep that chose them."""

PRETRAIN_DEFAULTS: dict = {"pretrain_softmax": "d1", "pretrain_match": "steps"}

HVP_PASSES = 2
"""Forward-backward pass equivalents of one Hessian-vector product (forward-over-reverse:
a gradient evaluation plus its tangent), as `Compute.hessian_vector_products` counts them."""


# ---------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhiConfig:
    """φ's resolved options (see the module docstring for each field's meaning)."""

    steps: int
    lambdas: tuple[float, float, float, float]
    lr: float
    batch_size: int
    delta: float
    draws: int
    neighbourhood: str
    probes: int
    hessian_batch: int
    hessian_norm: str
    power_iterations: int
    l2: str
    start: str
    trace_points: int

    def active(self, term: str) -> bool:
        """Return whether `term`'s λ is nonzero (a zero λ skips the term entirely)."""
        return self.lambdas[TERMS.index(term)] != 0.0

    def passes_per_step(self) -> dict[str, float]:
        """Return one step's per-seed data passes: minibatch forward-backward passes.

        λ1: one pass; λ2: none (no data); λ3: m passes (m perturbed copies of the batch);
        λ4's Hessian-vector products are counted by `hvp_equivalents_per_step`.
        """
        return {"ce": float(self.active("ce")), "l2": 0.0,
                "robust": float(self.draws if self.active("robust") else 0)}

    def hvps_per_step(self) -> int:
        """Return the Hessian-vector products one step computes (on `hessian_batch` samples)."""
        if not self.active("hessian"):
            return 0
        return self.probes if self.hessian_norm == "frobenius" else self.power_iterations + 1

    def hvp_equivalents_per_step(self) -> float:
        """Return λ4's cost in minibatch Hessian-vector products per step and seed.

        Each of the p probes' HVP is differentiated through (the gradient of ‖Hv‖²), which
        costs about one more HVP, so 2p; the spectral option's `power_iterations` HVPs are
        not differentiated and its last one is (iterations + 2). All scaled by
        hessian_batch / batch_size, the share of the minibatch λ4 runs on.
        """
        if not self.active("hessian"):
            return 0.0
        count = 2 * self.probes if self.hessian_norm == "frobenius" else self.power_iterations + 2
        return count * min(self.hessian_batch, self.batch_size) / self.batch_size

    def to_dict(self) -> dict:
        data = asdict(self)
        data["lambdas"] = dict(zip(TERMS, self.lambdas))
        return data


def _int_option(key: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{key}={value!r} is invalid: it must be an integer >= {low}.")
    return value


def _float_option(key: str, value, *, positive: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (
            positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{key}={value!r} is invalid: it must be a finite number {bound}.")
    return number


def _choice_option(key: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{key}={value!r} is invalid: use one of {', '.join(map(repr, choices))}.")
    return value


def _lambdas_option(value) -> tuple[float, float, float, float]:
    key = "phi_lambdas"
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(TERMS))
        if unknown:
            raise ValueError(f"{key} has unknown term(s) {unknown}: use the keys {list(TERMS)}.")
        base = dict(zip(TERMS, PHI_DEFAULTS[key]))
        base.update(value)
        value = [base[term] for term in TERMS]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 4:
        raise ValueError(f"{key}={value!r} is invalid: give four weights (λ1, λ2, λ3, λ4) or a "
                         f"dict with keys {list(TERMS)}.")
    lambdas = tuple(_float_option(f"{key}[{i}]", v, positive=False) for i, v in enumerate(value))
    return lambdas  # type: ignore[return-value]


def phi_config(options: dict, lambdas: Callable[[tuple], tuple] | None = None) -> PhiConfig:
    """Resolve φ's options from `options` (unknown `phi_*` keys are an error).

    Args:
        options: the context's options; keys not starting with "phi_" are ignored.
        lambdas: a map applied to the configured λs (how the ablations zero one term).

    Raises:
        ValueError: for an unknown `phi_*` key or an invalid value, naming the key.
    """
    unknown = sorted(k for k in options if k.startswith("phi_") and k not in PHI_DEFAULTS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], PHI_DEFAULTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown φ option(s) {unknown}.{hint} Valid options are "
                         f"{', '.join(sorted(PHI_DEFAULTS))}.")
    merged = {**PHI_DEFAULTS, **{k: v for k, v in options.items() if k in PHI_DEFAULTS}}
    weights = _lambdas_option(merged["phi_lambdas"])
    if lambdas is not None:
        weights = tuple(float(w) for w in lambdas(weights))
    if not any(weights):
        raise ValueError("phi_lambdas are all zero: φ needs at least one nonzero term.")
    start = merged["phi_start"]
    if not isinstance(start, str) or start.startswith("phi"):
        raise ValueError(f"phi_start={start!r} is invalid: name a registered initializer that "
                         f"is not a φ variant, e.g. 'copy-exact' or 'uniform'.")
    return PhiConfig(
        steps=_int_option("phi_steps", merged["phi_steps"], 0),
        lambdas=weights,  # type: ignore[arg-type]
        lr=_float_option("phi_lr", merged["phi_lr"], positive=True),
        batch_size=_int_option("phi_batch_size", merged["phi_batch_size"], 1),
        delta=_float_option("phi_delta", merged["phi_delta"], positive=False),
        draws=_int_option("phi_draws", merged["phi_draws"], 1),
        neighbourhood=_choice_option("phi_neighbourhood", merged["phi_neighbourhood"],
                                     phi_terms.NEIGHBOURHOODS),
        probes=_int_option("phi_probes", merged["phi_probes"], 1),
        hessian_batch=_int_option("phi_hessian_batch", merged["phi_hessian_batch"], 1),
        hessian_norm=_choice_option("phi_hessian_norm", merged["phi_hessian_norm"],
                                    ("frobenius", "spectral")),
        power_iterations=_int_option("phi_power_iterations", merged["phi_power_iterations"], 1),
        l2=_choice_option("phi_l2", merged["phi_l2"], ("squared", "norm")),
        start=start,
        trace_points=_int_option("phi_trace_points", merged["phi_trace_points"], 2),
    )


# ---------------------------------------------------------------------------------------
# The objective and its minimization
# ---------------------------------------------------------------------------------------


def make_objective(student: MLPSpec, classes: torch.Tensor, blocks: list | None,
                   config: PhiConfig) -> Callable:
    """Return the per-seed objective (params, teacher, x, y, extras) → (total, terms).

    `terms` holds the unweighted value of every active term; inactive terms are never
    evaluated. `extras` carries the seed's draws: "noise" (m, batch, features) for λ3,
    "probes" (each (p, *shape)) or "start" (shaped like params) for λ4.
    """
    lambdas = dict(zip(TERMS, config.lambdas))

    def objective(params: Params, teacher: Params, x: torch.Tensor, y: torch.Tensor,
                  extras: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = {}
        if lambdas["ce"] != 0.0:
            terms["ce"] = phi_terms.ce_term(student, classes, params, x, y)
        if lambdas["l2"] != 0.0:
            terms["l2"] = phi_terms.l2_term(params, teacher, blocks,
                                            squared=config.l2 == "squared")
        if lambdas["robust"] != 0.0:
            terms["robust"] = phi_terms.robust_term(student, classes, params, x, y,
                                                    extras["noise"])
        if lambdas["hessian"] != 0.0:
            xh, yh = x[:config.hessian_batch], y[:config.hessian_batch]
            if config.hessian_norm == "frobenius":
                terms["hessian"] = phi_terms.hessian_frobenius_term(
                    student, classes, params, xh, yh, extras["probes"])
            else:
                terms["hessian"] = phi_terms.hessian_spectral_term(
                    student, classes, params, xh, yh, extras["start"], config.power_iterations)
        total = sum(lambdas[name] * value for name, value in terms.items())
        return total, terms

    return objective


class Draws:
    """Each seed's random inputs of one step, drawn from its own generators, then stacked."""

    def __init__(self, ctx: InitContext, config: PhiConfig, template: Params, features: int):
        self.config, self.features = config, features
        self.template = {name: value[0] for name, value in template.items()}
        self.noise = ctx.generators("phi-noise") if config.active("robust") else None
        self.probes = ctx.generators("phi-probes") if config.active("hessian") else None

    def next(self, batch_size: int, dtype: torch.dtype, device) -> dict:
        extras = {}
        if self.noise is not None:
            extras["noise"] = torch.stack([
                phi_terms.perturbations(self.config.draws, (batch_size, self.features),
                                        self.config.delta, self.config.neighbourhood, g, dtype)
                for g in self.noise]).to(device)
        if self.probes is not None:
            count = self.config.probes if self.config.hessian_norm == "frobenius" else 1
            per_seed = [stack_seeds(gaussian_probes(self.template, count, g)) for g in self.probes]
            probes = {k: v.to(device) for k, v in stack_seeds(per_seed).items()}  # (S, count, …)
            if self.config.hessian_norm == "frobenius":
                extras["probes"] = probes
            else:
                extras["start"] = {name: value[:, 0] for name, value in probes.items()}
        return extras


@dataclass
class Optimized:
    """The result of `minimize`: final weights, the trace and each seed's divergence step."""

    params: Params
    trace: dict
    diverged_step: list[int]


def minimize(ctx: InitContext, config: PhiConfig, start: Params, *,
             classes: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             teacher: Params | None) -> Optimized:
    """Run Adam on the φ objective for `config.steps` steps, all seeds at once.

    Args:
        start: stacked starting weights, each (S, *shape); not modified.
        classes: student columns over which the softmax of L_f runs.
        x, y: D1* inputs (N, features) and each label's position in `classes` (N,).
        teacher: stacked teacher weights (needed when λ2 > 0).

    A seed whose objective becomes non-finite is frozen at its last finite weights from
    that step on; the other seeds are unaffected.
    """
    device = x.device
    names = list(start)
    tensors = [start[name].detach().clone().to(device) for name in names]
    S = tensors[0].shape[0]
    blocks = None
    if config.active("l2"):
        if teacher is None:
            raise ValueError("φ's λ2 term needs the teacher's weights, but none were given.")
        teacher_spec, teacher = _matched_teacher(ctx, teacher)
        blocks = phi_terms.teacher_blocks(ctx.student, teacher_spec, ctx.d1_classes, device)
    teacher = {k: v.to(device) for k, v in teacher.items()} if blocks is not None else {}

    objective = make_objective(ctx.student, classes, blocks, config)
    step_fn = vmap(grad_and_value(objective, has_aux=True))
    optimizer = torch.optim.Adam(tensors, lr=config.lr, foreach=True)
    batches = SeedBatches(len(y), config.batch_size, ctx.generators("phi-order"))
    draws = Draws(ctx, config, start, x.shape[-1])

    active = [t for t in TERMS if config.active(t)]
    history = torch.zeros(config.steps, len(active) + 1, dtype=torch.float64, device=device)
    diverged_step = torch.full((S,), -1, dtype=torch.int64, device=device)
    debug = log.isEnabledFor(logging.DEBUG)

    for step in range(config.steps):
        index = batches.next().to(device)
        extras = draws.next(index.shape[1], x.dtype, device)
        params = dict(zip(names, tensors))
        grads, (total, terms) = step_fn(params, teacher, x[index], y[index], extras)

        diverged_step = step_unless_diverged(optimizer, names, tensors, grads, total,
                                             diverged_step, step)
        frozen = diverged_step >= 0

        live = ~frozen
        with torch.no_grad():
            row = [terms[t][live].double().mean() for t in active] + [total[live].double().mean()]
            history[step] = torch.stack(row) if live.any() else float("nan")
        if debug:
            parts = ", ".join(
                f"{t}={history[step, i].item():.5g} (λ={config.lambdas[TERMS.index(t)]:g})"
                for i, t in enumerate(active))
            log.debug("phi step %d/%d: %s, total=%.5g, diverged seeds %d", step + 1,
                      config.steps, parts, history[step, -1].item(), int(frozen.sum()))

    final = {name: tensor.detach() for name, tensor in zip(names, tensors)}
    return Optimized(final, _trace(history, active, config), diverged_step.tolist())


def _matched_teacher(ctx: InitContext, teacher: Params) -> tuple[MLPSpec, Params]:
    """Return the teacher as `copy-exact` embeds it: deepened to the student's depth when
    `initializers.transfer` provides `matched_teacher` (Net2DeeperNet identity layers)."""
    matched = getattr(transfer, "matched_teacher", None)
    if matched is None:
        return ctx.teacher, teacher
    return matched(replace(ctx, teacher_params=teacher))


def _trace(history: torch.Tensor, active: list[str], config: PhiConfig) -> dict:
    """Return the mean over live seeds of each term at `trace_points` evenly spaced steps."""
    trace = {"step": [], "lambdas": dict(zip(TERMS, config.lambdas)),
             **{t: [] for t in active}, "total": []}
    if config.steps == 0:
        return trace
    points = sorted({round(i * (config.steps - 1) / (config.trace_points - 1))
                     for i in range(config.trace_points)})
    values = history[points].cpu()
    trace["step"] = [p + 1 for p in points]  # the objective at the start of step p+1
    for column, name in enumerate([*active, "total"]):
        trace[name] = [_finite(v) for v in values[:, column].tolist()]
    return trace


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _d1_data(ctx: InitContext,
             classes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return D1*'s inputs, each label's position in `classes`, and `classes` as a tensor."""
    d1 = ctx.d1_train
    mapping = torch.tensor(ctx.d1_classes, dtype=torch.int64, device=d1.y.device)
    d1_star = Split(d1.x, mapping[d1.y])  # ctx.d1_star(), safe on any device
    lookup = torch.full((ctx.student.sizes[-1],), -1, dtype=torch.int64, device=d1.y.device)
    lookup[torch.tensor(classes, device=d1.y.device)] = torch.arange(len(classes),
                                                                     device=d1.y.device)
    local = lookup[d1_star.y]
    if bool((local < 0).any()):
        raise ValueError(f"D1* has labels outside the softmax classes {classes}.")
    device = ctx.device
    return (d1_star.x.to(device), local.to(device),
            torch.tensor(classes, dtype=torch.int64, device=device))


def _compute(config: PhiConfig, steps: int | None = None) -> tuple[Compute, dict]:
    """Return the per-seed compute of `steps` (default K) steps and its breakdown.

    forward_backward_passes counts λ1's and λ3's minibatch passes (1 + m a step);
    λ4's Hessian-vector products go to `Compute.hessian_vector_products` (differentiated
    ones counted twice, sub-batches pro rata), or, with a `Compute` that lacks that field,
    into the passes at `HVP_PASSES` passes each.
    """
    steps = config.steps if steps is None else steps
    per_step = config.passes_per_step()
    passes = math.ceil(steps * sum(per_step.values()) - 1e-9)
    hvps = math.ceil(steps * config.hvp_equivalents_per_step() - 1e-9)
    breakdown = {
        "optimizer_steps": steps,
        "passes_per_step": per_step,
        "draws_per_step": config.draws if config.active("robust") else 0,
        "hvps_per_step": config.hvps_per_step(),
        "hvp_batch_size": min(config.hessian_batch, config.batch_size),
        "hvp_equivalents_per_step": config.hvp_equivalents_per_step(),
    }
    if "hessian_vector_products" in {f.name for f in fields(Compute)}:
        compute = Compute(optimizer_steps=steps, forward_backward_passes=passes,
                          hessian_vector_products=hvps)
    else:
        compute = Compute(optimizer_steps=steps, forward_backward_passes=passes + HVP_PASSES * hvps)
    return compute, breakdown


def pass_equivalents(compute: Compute) -> int:
    """Return forward-backward passes plus `HVP_PASSES` per Hessian-vector product."""
    return compute.forward_backward_passes + HVP_PASSES * getattr(
        compute, "hessian_vector_products", 0)


# ---------------------------------------------------------------------------------------
# The initializers
# ---------------------------------------------------------------------------------------


def run_phi(ctx: InitContext, lambdas: Callable[[tuple], tuple] | None = None) -> InitResult:
    """Compute φ(u) for every seed of `ctx`; `lambdas` maps the configured λs (ablations)."""

    config = phi_config(ctx.options, lambdas)
    starter = get(config.start)
    started = starter(ctx)
    x, y, classes = _d1_data(ctx, ctx.d1_classes)
    result = minimize(ctx, config, started.params, classes=classes, x=x, y=y,
                      teacher=ctx.teacher_params)

    compute, breakdown = _compute(config)
    compute = replace(compute, **{  # Add what the start spent (none for copy-exact).
        f.name: getattr(compute, f.name) + getattr(started.compute, f.name)
        for f in fields(Compute) if f.name != "seconds"})
    info = {
        "phi_start": config.start,
        "start_info": started.info,
        "phi_config": config.to_dict(),
        "phi_trace": result.trace,
        "phi_compute": breakdown,
        "phi_diverged_step": result.diverged_step,
    }
    if "unseen_classes" in started.info:  # The restricted softmax leaves those rows alone.
        info["unseen_classes"] = started.info["unseen_classes"]
    return InitResult(result.params, compute, info)


def cost_text(transform: Callable[[tuple], tuple] | None = None) -> str:
    """Describe a φ variant's extra compute at the default options, for `bench list`."""
    config = phi_config({}, transform)
    compute = _compute(config)[0]
    hvps = getattr(compute, "hessian_vector_products", 0)
    text = f"K={config.steps} Adam steps on D1*: {compute.forward_backward_passes} passes"
    if config.active("hessian"):
        text += f" + {hvps} HVPs"
    return text + " per seed (defaults)"


@register("phi", needs_teacher=True, compute=cost_text(),
          description="φ: Adam from copy-exact on λ1·CE(D1*) + λ2·‖E(w)−u‖² + "
          "λ3·E CE(U_δ) + λ4·‖H‖²_F")
def phi(ctx: InitContext) -> InitResult:
    return run_phi(ctx)


def _zero(index: int) -> Callable[[tuple], tuple]:
    return lambda weights: tuple(0.0 if i == index else w for i, w in enumerate(weights))


def _scale(index: int, factor: float) -> Callable[[tuple], tuple]:
    return lambda weights: tuple(w * factor if i == index else w for i, w in enumerate(weights))


def _register_variant(name: str, description: str, transform: Callable[[tuple], tuple]) -> None:
    def variant(ctx: InitContext) -> InitResult:
        result = run_phi(ctx, transform)
        result.info["phi_variant"] = name
        return result

    variant.__name__ = variant.__qualname__ = name.replace("-", "_").replace(".", "_")
    register(name, needs_teacher=True, compute=cost_text(transform),
             description=description)(variant)


ABLATIONS = {
    "phi-no-ce": (0, "φ without λ1 (cross-entropy on D1*)"),
    "phi-no-l2": (1, "φ without λ2 (distance to the teacher)"),
    "phi-no-robust": (2, "φ without λ3 (perturbed-input loss)"),
    "phi-no-hessian": (3, "φ without λ4 (Hessian norm)"),
}
"""Each ablation sets one λ to 0 (by index), whatever the configured λs are."""

LAMBDA_GRID = {
    "phi-l2x0.1": (1, 0.1),
    "phi-l2x10": (1, 10.0),
    "phi-l4x0.1": (3, 0.1),
    "phi-l4x10": (3, 10.0),
}
"""The ablation suite's λ grid: one configured λ multiplied by a factor (index, factor)."""

for _name, (_index, _description) in ABLATIONS.items():
    _register_variant(_name, _description, _zero(_index))
for _name, (_index, _factor) in LAMBDA_GRID.items():
    _register_variant(_name, f"φ with λ{_index + 1} × {_factor:g} (the ablation suite's λ grid)",
                      _scale(_index, _factor))


def pretrain_options(options: dict) -> tuple[str, str]:
    unknown = sorted(k for k in options if k.startswith("pretrain_") and k not in PRETRAIN_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown pretrain option(s) {unknown}: valid options are "
                         f"{', '.join(sorted(PRETRAIN_DEFAULTS))}.")
    merged = {**PRETRAIN_DEFAULTS, **options}
    return (_choice_option("pretrain_softmax", merged["pretrain_softmax"], ("d1", "all")),
            _choice_option("pretrain_match", merged["pretrain_match"], ("steps", "passes")))


@register("pretrain", needs_teacher=False,
          compute=f"K={PHI_DEFAULTS['phi_steps']} Adam steps on D1*: "
          f"{PHI_DEFAULTS['phi_steps']} passes per seed (defaults)",
          description="compute-matched control: default init trained on D1* for φ's K steps "
          "with φ's optimizer")
def pretrain(ctx: InitContext) -> InitResult:
    """The student from `torch_default` ("student-init"), trained on D1* like φ's λ1 alone.

    Same optimizer (Adam, phi_lr), minibatch size and per-seed minibatch order ("phi-order")
    as φ; K = phi_steps, or φ's forward-backward pass count with pretrain_match="passes".
    """
    softmax, match = pretrain_options(ctx.options)
    phi_cfg = phi_config(ctx.options)
    steps = phi_cfg.steps
    if match == "passes":
        steps = pass_equivalents(_compute(phi_cfg)[0])
    config = replace(phi_cfg, steps=steps, lambdas=(1.0, 0.0, 0.0, 0.0), start="uniform")
    classes = ctx.d1_classes if softmax == "d1" else tuple(range(ctx.student.sizes[-1]))

    start = torch_default(ctx.student, ctx.generators("student-init"))
    x, y, classes_t = _d1_data(ctx, classes)
    result = minimize(ctx, config, start, classes=classes_t, x=x, y=y, teacher=None)
    compute, breakdown = _compute(config)
    info = {"pretrain_softmax": softmax, "pretrain_match": match, "phi_steps": phi_cfg.steps,
            "pretrain_trace": result.trace, "pretrain_compute": breakdown,
            "pretrain_diverged_step": result.diverged_step}
    return InitResult(result.params, compute, info)


# ---------------------------------------------------------------------------------------
# Cost of one step
# ---------------------------------------------------------------------------------------


def phi_step_cost(num_seeds: int, num_steps: int, *, options: dict | None = None,
                  all_terms: bool = True,
                  student_sizes: tuple[int, ...] = (40, 256, 128, 64, 10),
                  teacher_sizes: tuple[int, ...] = (40, 128, 64, 32, 5),
                  d1_classes: tuple[int, ...] = (0, 1, 2, 3, 4),
                  num_samples: int = 2048, device: str = "cpu") -> dict:
    """Time one φ step (all four terms active) against one plain training step.

    Both act on the same student, seeds and minibatch size (mnist1d-subset's shapes by
    default, synthetic data: the cost does not depend on the values). The two kinds of step
    alternate in one process, `num_steps` each after one warm-up each, so that drift in the
    machine's speed affects both alike. A φ step includes its draws, the vmapped gradient of
    the full objective and the Adam update; a plain step is the engine's: the vmapped
    cross-entropy gradient and the Adam update.

    Returns:
        {"phi_ms", "plain_ms" (medians per step), "ratio", "num_seeds", "num_steps",
         "config"} — "config" holds the φ options timed (defaults unless `options` is given;
         with `all_terms`, a zero λ there is replaced by 1 so that all four terms run).
    """
    if num_seeds < 1 or num_steps < 1:
        raise ValueError(f"num_seeds={num_seeds}, num_steps={num_steps}: both must be >= 1.")
    config = phi_config(options or {})
    if all_terms:
        config = replace(config, lambdas=tuple(w if w != 0 else 1.0 for w in config.lambdas))
    student, teacher = MLPSpec(tuple(student_sizes)), MLPSpec(tuple(teacher_sizes))
    data_gen = torch.Generator().manual_seed(0)
    x = torch.randn(num_samples, student.sizes[0], generator=data_gen).to(device)
    y_local = torch.randint(0, len(d1_classes), (num_samples,), generator=data_gen).to(device)
    y_student = torch.tensor(d1_classes)[y_local.cpu()].to(device)
    seeds = tuple(range(num_seeds))
    gens = [torch.Generator().manual_seed(1000 + s) for s in seeds]
    teacher_params = {k: v.to(device) for k, v in torch_default(teacher, gens).items()}
    ctx = InitContext(student=student, teacher=teacher, teacher_params=teacher_params,
                      d1_classes=tuple(d1_classes), d1_train=Split(x, y_local),
                      d2_train=Split(x, y_student), seed_indices=seeds, suite_seed=0,
                      scenario="phi-step-cost", device=device)
    start = {k: v.to(device) for k, v in torch_default(student, gens).items()}
    classes = torch.tensor(d1_classes, device=device)
    blocks = phi_terms.teacher_blocks(student, teacher, tuple(d1_classes), device)

    names = list(start)
    phi_tensors = [start[n].clone() for n in names]
    plain_tensors = [start[n].clone() for n in names]
    phi_opt = torch.optim.Adam(phi_tensors, lr=config.lr, foreach=True)
    plain_opt = torch.optim.Adam(plain_tensors, lr=config.lr, foreach=True)
    phi_fn = vmap(grad_and_value(make_objective(student, classes, blocks, config), has_aux=True))
    plain_fn = vmap(grad_and_value(cross_entropy_loss(student)))
    draws = Draws(ctx, config, start, student.sizes[0])
    phi_batches = SeedBatches(num_samples, config.batch_size, ctx.generators("phi-order"))
    plain_batches = SeedBatches(num_samples, config.batch_size, ctx.generators("d2-order"))

    def phi_step():
        index = phi_batches.next().to(device)
        extras = draws.next(index.shape[1], x.dtype, device)
        grads, _ = phi_fn(dict(zip(names, phi_tensors)), teacher_params, x[index],
                          y_local[index], extras)
        for tensor, name in zip(phi_tensors, names):
            tensor.grad = grads[name]
        phi_opt.step()

    def plain_step():
        index = plain_batches.next().to(device)
        grads, _ = plain_fn(dict(zip(names, plain_tensors)), x[index], y_student[index])
        for tensor, name in zip(plain_tensors, names):
            tensor.grad = grads[name]
        plain_opt.step()

    def timed(step) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        begin = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - begin

    timed(phi_step), timed(plain_step)  # warm-up
    phi_times, plain_times = [], []
    for _ in range(num_steps):
        phi_times.append(timed(phi_step))
        plain_times.append(timed(plain_step))
    phi_ms = 1e3 * float(torch.tensor(phi_times).median())
    plain_ms = 1e3 * float(torch.tensor(plain_times).median())
    return {"phi_ms": phi_ms, "plain_ms": plain_ms, "ratio": phi_ms / plain_ms,
            "num_seeds": num_seeds, "num_steps": num_steps, "config": config.to_dict()}
