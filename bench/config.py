"""Run configuration: frozen dataclasses and the named suites.

A `RunConfig` is fully resolved before any training starts: every name is checked and every
number validated here, so a typo fails in a second instead of after an hour of training.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from bench.datasets import SCENARIOS, get_scenario, validate_d2_train_size
from bench.engine import Recipe
from bench.errors import unknown_name_error
from bench.robustness import RobustnessConfig

MAX_SEEDS = 10_000
"""Upper bound on seeds per run, far above any study's need; it keeps a typo from filling memory."""

SUITES = ("smoke", "quick", "full", "ablation")

SMOKE_ROBUSTNESS = RobustnessConfig(
    gaussian_levels=(0.25,), uniform_levels=(0.25,), weight_noise_levels=(0.1,),
    weight_noise_draws=1, adversarial_epsilons=(0.1,), adversarial_samples=200, pgd_steps=3,
    pgd_step_fraction=0.5, hutchinson_probes=2, power_iterations=5)
"""One level of each kind and small estimators, so that the smoke suite stays fast."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers (the output folder and device aside)."""

    suite: str
    """Name of the preset this configuration started from."""
    scenarios: tuple[str, ...]
    initializers: tuple[str, ...]
    num_seeds: int
    """Seeds 0 .. num_seeds-1 are trained, paired across initializers."""
    learning_rates: tuple[float, ...]
    """D2 learning-rate grid; each initializer is reported at its best validation rate."""
    student: Recipe
    """D2 training recipe; its learning_rate is replaced by each value of the grid."""
    teacher: Recipe
    """D1 training recipe of the teachers."""
    d2_train_sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """D2 training sizes per scenario; a scenario not listed uses its default size."""
    chunk_size: int = 32
    """Seeds trained together in one cell; results depend on it only through float rounding."""
    suite_seed: int = 0
    """Root of every per-seed random generator."""
    device: str = "cpu"
    reference: str = "uniform"
    """Initializer the statistics compare against."""
    compile_step: bool = False
    """Run the per-seed gradient under torch.compile: about 1.3-1.5x the eager throughput on
    CPU, after 15-30 s of compilation per distinct (seed count, batch) shape."""
    init_options: dict = field(default_factory=dict)
    """Options passed to every initializer (e.g. unseen_classes, unseen_class_bias)."""
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    """Noise levels, attack radii and estimator sizes of the robustness and sharpness metrics."""

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @staticmethod
    def from_dict(data: dict) -> "RunConfig":
        data = dict(data)
        data["student"], data["teacher"] = Recipe(**data["student"]), Recipe(**data["teacher"])
        for key in ("scenarios", "initializers", "learning_rates"):
            data[key] = tuple(data[key])
        data["d2_train_sizes"] = {k: tuple(v) for k, v in data["d2_train_sizes"].items()}
        if "robustness" in data:
            data["robustness"] = RobustnessConfig.from_dict(data["robustness"])
        return RunConfig(**data)

    def sizes_for(self, scenario: str) -> tuple[int, ...]:
        """Return the D2 training sizes run for `scenario`."""
        default = get_scenario(scenario).default_d2_train_size
        return self.d2_train_sizes.get(scenario, (default,))


def scenario_label(scenario: str, d2_train_size: int) -> str:
    """Return the label of a scenario instance: the name, plus "@n<size>" off the default."""
    if d2_train_size == get_scenario(scenario).default_d2_train_size:
        return scenario
    return f"{scenario}@n{d2_train_size}"


ABLATION_INITIALIZERS = ("phi", "phi-no-ce", "phi-no-l2", "phi-no-robust", "phi-no-hessian",
                         "phi-l2x0.1", "phi-l2x10", "phi-l4x0.1", "phi-l4x10",
                         "pretrain", "copy-exact", "uniform")
"""The ablation suite's arms: full φ, one λ zeroed each, the λ grid and the controls."""


def suite_config(suite: str, available_initializers: list[str]) -> RunConfig:
    """Return the preset named `suite`.

    smoke: one scenario, three initializers, 4 seeds, short budgets (seconds).
    quick: mnist1d-subset, every registered initializer, 16 seeds, three learning rates.
    full: every scenario, every initializer, 32 seeds, D2 sizes 500-4000 on MNIST-1D.
    ablation: mnist1d-subset, φ with its four ablations, its λ grid (`phi-l2x0.1` …, see
        `initializers.phi.LAMBDA_GRID`), `pretrain`, `copy-exact` and `uniform`; 10 seeds (at 8, a
        Holm-corrected Wilcoxon test over 11 arms cannot reach p < 0.05), one
        learning rate and short budgets so that it runs in minutes on two cores
        (docs/phi-defaults.md).
    """
    if suite not in SUITES:
        raise unknown_name_error("suite", suite, SUITES)

    if suite == "smoke":
        return RunConfig(
            suite=suite, scenarios=("mnist1d-subset",),
            initializers=("uniform", "xavier", "copy-exact"), num_seeds=4,
            learning_rates=(1e-3,),
            student=Recipe("adam", 1e-3, num_steps=200, eval_every=25),
            teacher=Recipe("adam", 3e-3, num_steps=200, eval_every=100),
            robustness=SMOKE_ROBUSTNESS,
        )
    if suite == "quick":
        return RunConfig(
            suite=suite, scenarios=("mnist1d-subset",),
            initializers=tuple(available_initializers), num_seeds=16,
            learning_rates=(3e-4, 1e-3, 3e-3),
            student=Recipe("adam", 1e-3, num_steps=1000, eval_every=50),
            teacher=Recipe("adam", 3e-3, num_steps=1500, eval_every=250),
            compile_step=True,
        )
    if suite == "ablation":
        return RunConfig(
            suite=suite, scenarios=("mnist1d-subset",),
            initializers=ABLATION_INITIALIZERS, num_seeds=10,
            learning_rates=(1e-3,),
            student=Recipe("adam", 1e-3, num_steps=500, eval_every=50),
            teacher=Recipe("adam", 3e-3, num_steps=1000, eval_every=250),
            robustness=SMOKE_ROBUSTNESS,
        )
    return RunConfig(
        suite=suite, scenarios=tuple(SCENARIOS),
        initializers=tuple(available_initializers), num_seeds=32,
        learning_rates=(3e-4, 1e-3, 3e-3),
        student=Recipe("adam", 1e-3, num_steps=2000, eval_every=50),
        teacher=Recipe("adam", 3e-3, num_steps=2000, eval_every=250),
        d2_train_sizes={"mnist1d-subset": (500, 1000, 2000, 4000)},
        compile_step=True,
    )


def validate(config: RunConfig, available_initializers: list[str]) -> None:
    """Raise a clear error for any unknown name or impossible number in `config`."""
    for scenario in config.scenarios:
        spec = get_scenario(scenario)
        for size in config.sizes_for(scenario):
            validate_d2_train_size(spec, size)
    for name in config.initializers:
        if name not in available_initializers:
            raise unknown_name_error("initializer", name, available_initializers)
    if config.reference not in available_initializers:
        raise unknown_name_error("reference initializer", config.reference,
                                 available_initializers)

    _positive_int("num_seeds", config.num_seeds, "the number of seeds, e.g. --seeds 16")
    if config.num_seeds > MAX_SEEDS:
        raise ValueError(f"num_seeds={config.num_seeds} is invalid: at most {MAX_SEEDS} seeds per "
                         f"run (each has its own teacher). Split larger studies into runs with "
                         f"another suite_seed.")
    _positive_int("chunk_size", config.chunk_size, "seeds per cell, e.g. --chunk-size 32")
    if config.suite_seed < 0:
        raise ValueError(f"suite_seed={config.suite_seed} is invalid: use a non-negative integer.")
    if len(set(config.learning_rates)) != len(config.learning_rates):
        raise ValueError(f"learning_rates={config.learning_rates} lists a rate twice; list each "
                         f"once.")
    if not config.learning_rates or any(not (0 < lr < math.inf) for lr in config.learning_rates):
        raise ValueError(f"learning_rates={config.learning_rates} is invalid: give one or more "
                         f"positive numbers, e.g. --learning-rates 3e-4,1e-3.")
    if len(set(config.initializers)) != len(config.initializers):
        raise ValueError(f"initializers={config.initializers} lists a name twice; list each once.")
    if config.device not in ("cpu", "cuda") and not config.device.startswith("cuda:"):
        raise ValueError(f"device={config.device!r} is invalid: use 'cpu' or 'cuda'.")
    _validate_init_options(config.init_options)


# Initializer options other than φ's and pretrain's (those modules check their own):
# key → (type, smallest value, largest value, allowed words).
_INT, _FLOAT, _WORD = "integer", "number", "word"
INIT_OPTIONS = {
    "unseen_classes": (_WORD, None, None, ("bias", "default")),
    "unseen_class_bias": (_FLOAT, 0.0, 1e6, ()),
    "lsuv_tolerance": (_FLOAT, 1e-6, 1.0, ()),
    "lsuv_max_passes": (_INT, 1, 1000, ()),
    "lsuv_batch_size": (_INT, 1, 10**9, ()),
    "gradinit_steps": (_INT, 0, 10**6, ()),
    "gradinit_lr": (_FLOAT, 1e-12, 10.0, ()),
    "gradinit_inner_lr": (_FLOAT, 1e-12, 10.0, ()),
    "gradinit_max_grad_norm": (_FLOAT, 1e-12, 1e6, ()),
    "gradinit_min_scale": (_FLOAT, 1e-12, 1.0, ()),
    "gradinit_batch_size": (_INT, 1, 10**9, ()),
    "metainit_steps": (_INT, 0, 10**6, ()),
    "metainit_lr": (_FLOAT, 1e-12, 10.0, ()),
    "metainit_momentum": (_FLOAT, 1e-12, 0.999999, ()),
    "metainit_eps": (_FLOAT, 1e-12, 1.0, ()),
    "metainit_batch_size": (_INT, 1, 10**9, ()),
    "ligo_steps": (_INT, 0, 10**6, ()),
    "ligo_lr": (_FLOAT, 1e-12, 10.0, ()),
    "ligo_batch_size": (_INT, 1, 10**9, ()),
    "ligo_split": (_WORD, None, None, ("dirichlet", "count")),
    "net2net_noise": (_FLOAT, 0.0, 10.0, ()),
    "ki_weight": (_FLOAT, 0.0, 1.0, ()),
    "ki_fraction": (_FLOAT, 0.0, 1.0, ()),
    "ki_temperature": (_FLOAT, 1e-3, 1e3, ()),
}
"""Every initializer option outside the phi_* and pretrain_* families, with its valid range."""


def _validate_init_options(options: dict) -> None:
    """Check every initializer option before any training, so a typo fails in a second."""
    from initializers.phi import phi_config, pretrain_options

    phi_config(options)
    pretrain_options(options)
    for key, value in options.items():
        if key.startswith(("phi_", "pretrain_")):
            continue
        if key not in INIT_OPTIONS:
            raise unknown_name_error("initializer option", key,
                                     [*INIT_OPTIONS, "phi_* (docs/phi-defaults.md)",
                                      "pretrain_*"])
        _check_option(key, value, *INIT_OPTIONS[key])


def _check_option(key: str, value, kind: str, low, high, words: tuple) -> None:
    if kind == _WORD:
        if value not in words:
            raise ValueError(f"{key}={value!r} is invalid: use one of {', '.join(words)}.")
        return
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    valid = number is not None and math.isfinite(number) and low <= number <= high
    if kind == _INT and valid:
        valid = float(number).is_integer()
    if not valid:
        raise ValueError(f"{key}={value!r} is invalid: it must be a{'n' if kind == _INT else ''} "
                         f"{kind} in [{low:g}, {high:g}], e.g. --init-option {key}={low:g}.")


def _positive_int(name: str, value, meaning: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: it must be a positive integer ({meaning}).")
