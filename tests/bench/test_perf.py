"""The perf harness: its table lists every engine, and all engines train the same seeds alike.

No test asserts a timing: the harness runs on shared machines where speed varies by 2x.
"""

from __future__ import annotations

import pytest
import torch

from bench import perf

# Float kernels differ between engines (batched vs per-seed matrix products, fused vs
# autograd cross-entropy), so losses agree to rounding, amplified a little by Adam's steps.
LOSS_TOLERANCE = 1e-5
NUM_STEPS = 4


def _losses(engine) -> torch.Tensor:
    engine.advance(NUM_STEPS)
    return torch.stack(engine.losses)  # (steps, seeds)


@pytest.fixture(scope="module")
def problem():
    return perf.make_problem(num_seeds=3, total_steps=NUM_STEPS)


@pytest.fixture(scope="module")
def engine_losses(problem):
    return _losses(perf.VmapEngine(problem))


def test_run_perf_lists_every_engine():
    # The process baseline is left out here: its workers are tested below, and spawning them
    # twice would double this file's run time.
    text = perf.run_perf([2], num_steps=1, repeats=1, processes=False, compile_step=False)

    for name in (perf.ENGINE, perf.BMM, perf.LOOP):
        assert name in text
    assert perf.PROCESSES not in text
    assert perf.COMPILED not in text
    assert "GFLOP/s" in text
    assert "/ best loop" in text


def test_problem_order_matches_seed_batches(problem, engine_losses):
    engine = perf.VmapEngine(problem)

    for step in range(NUM_STEPS):
        assert torch.equal(engine.batches.next(), problem.index[:, step])


def test_bmm_reference_matches_engine(problem, engine_losses):
    losses = _losses(perf.BmmEngine(problem))

    assert losses.shape == (NUM_STEPS, 3)
    torch.testing.assert_close(losses, engine_losses, atol=LOSS_TOLERANCE, rtol=0)


def test_loop_matches_engine(problem, engine_losses):
    losses = _losses(perf.LoopEngine(problem))

    torch.testing.assert_close(losses, engine_losses, atol=LOSS_TOLERANCE, rtol=0)


def test_process_loop_matches_engine(problem, engine_losses):
    pool = perf.ProcessPool(2)
    try:
        losses = _losses(perf.ProcessLoopEngine(pool, problem, key=3))
    finally:
        pool.close()

    torch.testing.assert_close(losses, engine_losses, atol=LOSS_TOLERANCE, rtol=0)


def test_engine_losses_change(engine_losses):
    # Guards the equivalence tests against engines that agree because none of them trains.
    assert not torch.equal(engine_losses[0], engine_losses[-1])


def test_seed_losses_independent_of_count(problem, engine_losses):
    alone = perf.make_problem(num_seeds=1, total_steps=NUM_STEPS)
    losses = _losses(perf.VmapEngine(alone))

    torch.testing.assert_close(losses[:, 0], engine_losses[:, 0], atol=LOSS_TOLERANCE, rtol=0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_engine_matches_eager(problem, engine_losses):
    # torch.compile takes 15-30 s here, once per seed count.
    losses = _losses(perf.VmapEngine(problem, compile_step=True))

    torch.testing.assert_close(losses, engine_losses, atol=LOSS_TOLERANCE, rtol=0)


@pytest.mark.parametrize("arguments, match", [
    (([], 1, 1), "seed_counts"),
    (([0], 1, 1), "seed_counts"),
    (([8, 8], 1, 1), "repeated"),
    (([8], 0, 1), "num_steps"),
    (([8], 1, 0), "repeats"),
])
def test_run_perf_rejects_bad_arguments(arguments, match):
    seed_counts, num_steps, repeats = arguments

    with pytest.raises(ValueError, match=match):
        perf.run_perf(seed_counts, num_steps, repeats, processes=False)
