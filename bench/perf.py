"""Training throughput of the seed-parallel engine against two baselines (`python -m bench perf`).

The workload is the student MLP of mnist1d-subset (40-256-128-64-10, 52,298 parameters),
batch 128, Adam (lr 1e-3) through `engine.make_optimizer` for every engine. Data are random
inputs of the shape of mnist1d-subset's default D2 training split (800 x 40, 10 classes):
throughput does not depend on the values, and generating MNIST-1D takes seconds.

Engines, each measured at every seed count S:

- engine: `engine.make_step`, the step that `engine.train` runs, with its batch sampling;
- engine compiled: the same with `compile_step=True`;
- bmm reference: a hand-batched baddbmm MLP with a leading seed dimension, autograd on the
  sum of the per-seed losses;
- loop: one nn.Module and one optimizer per seed, trained one seed after another;
- loop processes: the loop split over one single-threaded spawned process per core.

Each engine first runs `WARMUP_STEPS` steps, timed as one-time setup (torch.func set-up,
compilation, process start). Then `repeats` rounds run `num_steps` steps of every engine in
turn, and the table reports the median round.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tabulate import tabulate

from bench import seeding
from bench.datasets import SCENARIOS
from bench.engine import Recipe, SeedBatches, make_optimizer, make_step, tune_allocator
from bench.models import MLP, MLPSpec, Params, select_seeds
from initializers.standard import torch_default

SCENARIO = "mnist1d-subset"
NUM_SAMPLES = 800
"""Training samples: mnist1d-subset's default D2 size, 1000, less the 20% validation split."""
BATCH_SIZE = 128
RECIPE = Recipe("adam", 1e-3, num_steps=1, batch_size=BATCH_SIZE)
WARMUP_STEPS = 2
SUITE_SEED = 0
ENGINE = "engine"
COMPILED = "engine compiled"
BMM = "bmm reference"
LOOP = "loop, 1 process"
PROCESSES = "loop, processes"


@dataclass
class Problem:
    """One workload: initial weights, training data and every seed's batch order."""

    spec: MLPSpec
    params: Params
    """Initial weights, each (S, *shape)."""
    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    """Sample indices, (S, total steps, batch), in the order `engine.SeedBatches` draws them."""
    seeds: list[int]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return every seed's minibatch of `step`: (S, batch, features) and (S, batch)."""
        index = self.index[:, step]
        return self.x[index], self.y[index]

    def subset(self, positions: list[int]) -> "Problem":
        """Return the problem restricted to the seeds at `positions`."""
        return Problem(self.spec, select_seeds(self.params, positions), self.x, self.y,
                       self.index[positions], [self.seeds[i] for i in positions])


def make_problem(num_seeds: int, total_steps: int) -> Problem:
    """Build the benchmark workload for `num_seeds` seeds and `total_steps` steps."""
    spec = MLPSpec(SCENARIOS[SCENARIO].student_sizes)
    seeds = list(range(num_seeds))
    params = torch_default(spec, seeding.generators(SUITE_SEED, "perf", seeds, "student-init"))

    data_generator = torch.Generator().manual_seed(SUITE_SEED)
    x = torch.randn(NUM_SAMPLES, spec.sizes[0], generator=data_generator)
    y = torch.randint(0, spec.sizes[-1], (NUM_SAMPLES,), generator=data_generator)

    batches = SeedBatches(NUM_SAMPLES, BATCH_SIZE, _order_generators(seeds))
    index = torch.stack([batches.next() for _ in range(total_steps)], dim=1)
    return Problem(spec, params, x, y, index, seeds)


def _order_generators(seeds: list[int]) -> list[torch.Generator]:
    return seeding.generators(SUITE_SEED, "perf", seeds, "data-order")


class VmapEngine:
    """The project's engine: `engine.make_step` plus the batch sampling of `engine.train`."""

    def __init__(self, problem: Problem, compile_step: bool = False):
        self.problem = problem
        names = list(problem.params)
        self.tensors = [problem.params[name].clone() for name in names]
        self.train_step = make_step(problem.spec, RECIPE, names, self.tensors,
                                    compile_step=compile_step)
        self.batches = SeedBatches(NUM_SAMPLES, BATCH_SIZE, _order_generators(problem.seeds))
        self.diverged_step = torch.full((len(problem.seeds),), -1, dtype=torch.int64)
        self.steps_done = 0
        self.losses = []

    def advance(self, num_steps: int) -> float:
        """Train `num_steps` steps; return the seconds taken."""
        start = time.perf_counter()
        for _ in range(num_steps):
            index = self.batches.next()
            x, y = self.problem.x[index], self.problem.y[index]
            losses, self.diverged_step = self.train_step(x, y, self.diverged_step,
                                                         self.steps_done)
            self.losses.append(losses)
            self.steps_done += 1
        return time.perf_counter() - start


class BmmEngine:
    """Hand-batched reference: baddbmm layers with a leading seed dimension, plain autograd."""

    def __init__(self, problem: Problem):
        self.problem = problem
        spec = problem.spec
        self.layers = [(problem.params[spec.weight(i)].clone().requires_grad_(),
                        problem.params[spec.bias(i)].clone().requires_grad_())
                       for i in range(spec.num_layers)]
        self.optimizer = make_optimizer(RECIPE, [t for layer in self.layers for t in layer])
        self.steps_done = 0
        self.losses = []

    def advance(self, num_steps: int) -> float:
        """Train `num_steps` steps; return the seconds taken."""
        start = time.perf_counter()
        for _ in range(num_steps):
            x, y = self.problem.batch(self.steps_done)
            h = x  # (S, batch, features)
            for i, (weight, bias) in enumerate(self.layers):
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
                h = torch.relu(h) if i < len(self.layers) - 1 else h

            # Per-seed mean over the batch, summed over seeds so no gradient is scaled by 1/S.
            losses = F.cross_entropy(h.transpose(1, 2), y, reduction="none").mean(1)
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            self.optimizer.step()
            self.losses.append(losses.detach())
            self.steps_done += 1
        return time.perf_counter() - start


class LoopEngine:
    """Sequential baseline: one nn.Module and torch.optim optimizer per seed, seed by seed."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.models, self.optimizers = [], []
        for i in range(len(problem.seeds)):
            model = MLP(problem.spec.sizes)
            model.load_state_dict({name: value[i] for name, value in problem.params.items()})
            self.models.append(model)
            self.optimizers.append(make_optimizer(RECIPE, list(model.parameters())))
        self.steps_done = 0
        self.losses = []

    def advance(self, num_steps: int) -> float:
        """Train `num_steps` steps of every seed; return the seconds taken."""
        steps = range(self.steps_done, self.steps_done + num_steps)
        per_seed = []
        start = time.perf_counter()
        for i, (model, optimizer) in enumerate(zip(self.models, self.optimizers)):
            per_seed.append([])
            for step in steps:
                index = self.problem.index[i, step]
                loss = F.cross_entropy(model(self.problem.x[index]), self.problem.y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                per_seed[-1].append(loss.detach())
        elapsed = time.perf_counter() - start
        self.losses.extend(torch.stack(values) for values in zip(*per_seed))
        self.steps_done += num_steps
        return elapsed


def _worker_main(connection) -> None:
    """Serve LoopEngine requests in a single-threaded worker process until a stop request."""
    torch.set_num_threads(1)
    tune_allocator()
    engines = {}
    while True:
        request, key, argument = connection.recv()
        if request == "stop":
            return
        if request == "setup":
            engines[key] = LoopEngine(argument)
            connection.send(None)
        else:
            start = time.perf_counter()
            engines[key].advance(argument)
            end = time.perf_counter()
            connection.send((start, end, torch.stack(engines[key].losses[-argument:])))


class ProcessPool:
    """Spawned single-threaded worker processes that keep their engines between requests."""

    def __init__(self, num_processes: int):
        context = multiprocessing.get_context("spawn")
        self.connections, self.processes = [], []
        for _ in range(num_processes):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end,), daemon=True)
            process.start()
            self.connections.append(parent_end)
            self.processes.append(process)

    def close(self) -> None:
        """Stop the workers and wait for them to exit."""
        for connection in self.connections:
            connection.send(("stop", None, None))
        for process in self.processes:
            process.join(timeout=30)


class ProcessLoopEngine:
    """The loop baseline with the seeds split evenly over the workers of `pool`."""

    def __init__(self, pool: ProcessPool, problem: Problem, key: int):
        num_seeds, num_workers = len(problem.seeds), len(pool.connections)
        parts = [list(range(num_seeds))[w::num_workers] for w in range(num_workers)]
        self.parts = [part for part in parts if part]
        self.connections = pool.connections[:len(self.parts)]
        self.key = key
        self.losses = []
        for connection, part in zip(self.connections, self.parts):
            connection.send(("setup", key, problem.subset(part)))
        for connection in self.connections:
            connection.recv()

    def advance(self, num_steps: int) -> float:
        """Train `num_steps` steps in every worker at once; return the wall-clock seconds."""
        for connection in self.connections:
            connection.send(("advance", self.key, num_steps))
        replies = [connection.recv() for connection in self.connections]

        # Workers time themselves, so process start and messaging stay outside the interval.
        # time.perf_counter is the system-wide monotonic clock on Linux, comparable across them.
        elapsed = max(end for _, end, _ in replies) - min(start for start, _, _ in replies)
        num_seeds = sum(len(part) for part in self.parts)
        losses = torch.empty(num_steps, num_seeds)
        for part, (_, _, part_losses) in zip(self.parts, replies):
            losses[:, part] = part_losses
        self.losses.extend(losses)
        return elapsed


def num_cores() -> int:
    """Return the number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return f"{os.getloadavg()[0]:.1f}"


def build_engines(problem: Problem, pool: ProcessPool | None, compile_step: bool) -> dict:
    """Return a constructor per engine name for `problem`; they are called one at a time."""
    builders = {ENGINE: lambda: VmapEngine(problem)}
    if compile_step:
        builders[COMPILED] = lambda: VmapEngine(problem, compile_step=True)
    builders[BMM] = lambda: BmmEngine(problem)
    builders[LOOP] = lambda: LoopEngine(problem)
    if pool is not None:
        builders[PROCESSES] = lambda: ProcessLoopEngine(pool, problem, len(problem.seeds))
    return builders


def _validate(seed_counts: list[int], num_steps: int, repeats: int) -> None:
    if not seed_counts or any(int(count) < 1 for count in seed_counts):
        raise ValueError(f"seed_counts={seed_counts!r} is invalid: give one or more seed "
                         f"counts, each at least 1, e.g. [8, 32, 128].")
    if len(set(seed_counts)) != len(seed_counts):
        raise ValueError(f"seed_counts={seed_counts!r} is invalid: remove the repeated counts.")
    for name, value in (("num_steps", num_steps), ("repeats", repeats)):
        if int(value) < 1:
            raise ValueError(f"{name}={value!r} is invalid: it must be at least 1.")


@dataclass
class Measurement:
    """Timings of one engine at one seed count."""

    num_seeds: int
    setup_seconds: float
    """Construction plus the first `WARMUP_STEPS` steps: set-up, compilation, first touches."""
    round_seconds: list[float]
    """Seconds of each timed round of `num_steps` steps."""


def measure(seed_counts: list[int], num_steps: int, repeats: int, processes: bool,
            compile_step: bool = True) -> dict[tuple[int, str], Measurement]:
    """Run every engine at every seed count, alternating them within each of `repeats` rounds.

    Returns:
        The measurements keyed by (seed count, engine name).
    """
    tune_allocator()
    pool = ProcessPool(num_cores()) if processes else None
    try:
        engines, results = {}, {}
        for count in seed_counts:
            problem = make_problem(count, WARMUP_STEPS + repeats * num_steps)
            for name, build in build_engines(problem, pool, compile_step).items():
                start = time.perf_counter()
                engine = build()
                engine.advance(WARMUP_STEPS)
                engines[count, name] = engine
                results[count, name] = Measurement(count, time.perf_counter() - start, [])

        # Each round starts one engine later, so no engine always runs right after another.
        keys = list(engines)
        for round_index in range(repeats):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                results[key].round_seconds.append(engines[key].advance(num_steps))
        return results
    finally:
        if pool is not None:
            pool.close()


def run_perf(seed_counts: list[int], num_steps: int, repeats: int, processes: bool,
             compile_step: bool = True) -> str:
    """Measure training throughput of every engine and return the table and the ratios.

    Args:
        seed_counts: numbers of seeds S trained together, e.g. [8, 32, 128].
        num_steps: timed steps per engine and round.
        repeats: rounds over all engines; the table reports each engine's median round.
        processes: also time the loop baseline split over one process per core.
        compile_step: also time the engine with `compile_step=True`; compiling costs
            tens of seconds per seed count.

    Returns:
        Printable text: set-up, one table row per (S, engine), and the ratios to the targets.
    """
    _validate(seed_counts, num_steps, repeats)
    results = measure(seed_counts, num_steps, repeats, processes, compile_step)
    spec = MLPSpec(SCENARIOS[SCENARIO].student_sizes)
    flop = 6 * spec.num_parameters * BATCH_SIZE
    throughput = {key: m.num_seeds * num_steps / statistics.median(m.round_seconds)
                  for key, m in results.items()}

    header = (f"{SCENARIO} student {'-'.join(map(str, spec.sizes))} "
              f"({spec.num_parameters:,} parameters), batch {BATCH_SIZE}, Adam lr "
              f"{RECIPE.learning_rate:g}; {num_steps} timed steps, median of {repeats} "
              f"alternating rounds.\ntorch {torch.__version__}, {torch.get_num_threads()} "
              f"threads, {num_cores()} cores, {platform.processor() or platform.machine()}. "
              f"GFLOP/s counts 6 x parameters x batch = {flop / 1e6:.1f} MFLOP per seed-step."
              f"\nLoad average (1 min) at the end: {_load_average()}; above the core count, "
              f"other processes slowed this run and multi-threaded engines the most.")
    rows = [(count, name, f"{1e3 * statistics.median(m.round_seconds) / num_steps:.2f}",
             f"{throughput[count, name]:,.0f}", f"{throughput[count, name] * flop / 1e9:.1f}",
             f"{m.setup_seconds:.1f}")
            for (count, name), m in results.items()]
    table = tabulate(rows, headers=["S", "engine", "ms/step", "seed-steps/s", "GFLOP/s",
                                    "setup s"], disable_numparse=True)
    return "\n\n".join([header, table, format_ratios(throughput, seed_counts),
                        format_phi_cost(seed_counts, num_steps)])


PHI_STEP_TARGET = 8.0
"""Largest accepted cost of one φ step (all four terms) relative to one plain training step."""


def format_phi_cost(seed_counts: list[int], num_steps: int) -> str:
    """Time one φ step against one plain step at S = 8 and 32 and compare with the target."""
    from initializers.phi import phi_step_cost

    counts = [count for count in (8, 32) if count in seed_counts] or [seed_counts[0]]
    rows, lines = [], []
    for count in counts:
        cost = phi_step_cost(count, num_steps)
        rows.append((count, f"{cost['phi_ms']:.2f}", f"{cost['plain_ms']:.2f}",
                     f"{cost['ratio']:.2f}"))
        verdict = "met" if cost["ratio"] <= PHI_STEP_TARGET else "missed"
        lines.append(f"  S = {count}: phi step / plain step = {cost['ratio']:.2f} "
                     f"(target <= {PHI_STEP_TARGET:g}): {verdict}")
    table = tabulate(rows, headers=["S", "phi ms/step", "plain ms/step", "ratio"],
                     disable_numparse=True)
    return ("Cost of one phi step (all four terms, default options) against one plain training "
            "step, alternated in this process\n" + table + "\n\n" + "\n".join(lines))


def format_ratios(throughput: dict[tuple[int, str], float], seed_counts: list[int]) -> str:
    """Return the engine-to-baseline ratios per S and whether each target was met."""
    loops = [name for name in (LOOP, PROCESSES) if (seed_counts[0], name) in throughput]
    engines = [name for name in (ENGINE, COMPILED) if (seed_counts[0], name) in throughput]
    rows = []
    for count in seed_counts:
        best_loop = max(throughput[count, name] for name in loops)
        for name in engines:
            rows.append((count, name, f"{throughput[count, name] / throughput[count, BMM]:.2f}",
                         f"{throughput[count, name] / best_loop:.2f}"))
    table = tabulate(rows, headers=["S", "engine", "/ bmm reference", "/ best loop"],
                     disable_numparse=True)

    lines = ["Targets (ratios of seed-steps/s in this run):"]
    targets = [(8, BMM, 1.0), (32, BMM, 1.1), (32, "best loop", 1.3)]
    for count, baseline, target in targets:
        if count not in seed_counts:
            continue
        base = throughput[count, BMM] if baseline == BMM else max(
            throughput[count, name] for name in loops)
        for name in engines:
            ratio = throughput[count, name] / base
            verdict = "met" if ratio >= target else "missed"
            lines.append(f"  S = {count}: {name} / {baseline} = {ratio:.2f} "
                         f"(target >= {target}): {verdict}")
    return "Ratios of seed-steps/s\n" + table + "\n\n" + "\n".join(lines)
