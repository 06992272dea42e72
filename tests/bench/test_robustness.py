"""Tests of the robustness, sharpness and prediction-variance measurements."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch
from torch.func import functional_call, hessian

from bench import seeding
from bench.config import RunConfig, suite_config
from bench.datasets import Split
from bench.engine import Recipe, evaluate, train
from bench.models import MLPSpec, select_seeds
from bench.predictions import (disagreement_rate, load_predictions, pairwise_disagreement,
                               pairwise_variance, predict_probabilities, prediction_variance,
                               predictions_path, save_predictions, seed_bootstrap_ci)
from bench.robustness import (RobustnessConfig, final_diagnostics, fgsm, initial_diagnostics,
                              pgd)
from bench.sharpness import draw_probes, hessian_trace, top_eigenvalue
from bench.store import CellKey
from initializers.standard import torch_default

SMALL = RobustnessConfig(gaussian_levels=(0.25,), uniform_levels=(0.5,),
                         weight_noise_levels=(0.1,), weight_noise_draws=2,
                         adversarial_epsilons=(0.1,), adversarial_samples=100, pgd_steps=3,
                         pgd_random_start=True, hutchinson_probes=2, power_iterations=4)


def _generators(seeds, purpose):
    return seeding.generators(0, "digits-subset", seeds, purpose)


def _init(spec, seeds, dtype=torch.float32):
    params = torch_default(spec, _generators(seeds, "student-init"))
    return {name: value.to(dtype) for name, value in params.items()}


@pytest.fixture(scope="module")
def trained(digits):
    """Five digits-subset students (seeds 0-4), briefly trained on D2."""
    spec = MLPSpec(digits.spec.student_sizes)
    seeds = range(5)
    result = train(spec, _init(spec, seeds), digits.d2,
                   Recipe("adam", 3e-3, num_steps=60, eval_every=60),
                   _generators(seeds, "d2-order"))
    return spec, result.params


@pytest.fixture(scope="module")
def small_metrics(trained, digits):
    """The SMALL diagnostics of the five trained students, computed together."""
    spec, params = trained
    return _diagnostics(spec, params, digits.d2, range(5), SMALL)


def _diagnostics(spec, params, data, seeds, config, diverged=None):
    generators = functools.partial(seeding.generators, 0, "digits-subset", tuple(seeds))
    batch = Split(data.train.x[:64], data.train.y[:64])
    diverged = torch.zeros(len(seeds), dtype=torch.bool) if diverged is None else diverged
    metrics = final_diagnostics(spec, params, data, batch, config, generators, diverged)
    metrics.update(initial_diagnostics(spec, params, batch, config, generators))
    return metrics


# ---------------------------------------------------------------------------------------
# Adversarial inputs
# ---------------------------------------------------------------------------------------


def test_fgsm_linear_softmax_closed_form():
    """Check FGSM on logits Wx + b against the hand gradient ∂CE/∂x = Wᵀ(softmax(Wx + b) − e_y)."""
    torch.manual_seed(0)
    spec = MLPSpec((5, 4))
    params = {"layers.0.weight": torch.randn(3, 4, 5, dtype=torch.float64),
              "layers.0.bias": torch.randn(3, 4, dtype=torch.float64)}
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    y = torch.randint(0, 4, (7,))
    epsilon = 0.3

    weight, bias = params["layers.0.weight"], params["layers.0.bias"]
    logits = torch.einsum("sof,snf->sno", weight, x) + bias[:, None, :]
    residual = torch.softmax(logits, -1) - torch.nn.functional.one_hot(y, 4).double()
    gradient = torch.einsum("sno,sof->snf", residual, weight)
    expected = x + epsilon * gradient.sign()

    assert gradient.abs().min() > 1e-9, "a zero gradient entry makes the sign ambiguous"
    torch.testing.assert_close(fgsm(spec, params, x, y, epsilon), expected, rtol=0, atol=1e-12)


def test_pgd_one_step_of_epsilon_equals_fgsm(trained, digits):
    """Check that PGD with one step of size ε and no random start gives the FGSM inputs."""
    spec, params = trained
    x = digits.d2.test.x[:50].expand(5, -1, -1)
    y = digits.d2.test.y[:50]
    one_step = pgd(spec, params, x, y, epsilon=0.2, num_steps=1, step_size=0.2)
    assert torch.equal(one_step, fgsm(spec, params, x, y, 0.2))


def test_pgd_stays_in_epsilon_box_and_beats_clean(trained, digits):
    """Check that PGD inputs lie within ε of x in L∞ and raise the loss above the clean loss."""
    spec, params = trained
    x = digits.d2.test.x[:50].expand(5, -1, -1)
    y = digits.d2.test.y[:50]
    adversarial = pgd(spec, params, x, y, epsilon=0.2, num_steps=5, step_size=0.05)

    assert (adversarial - x).abs().max() <= 0.2 + 1e-6
    clean = evaluate(spec, params, Split(x[0], y))[0]
    attacked = evaluate(spec, params, Split(adversarial[0], y))[0]
    assert attacked[0] > clean[0]


# ---------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------


def test_zero_noise_gives_clean_numbers(trained, digits):
    """Check that noise level 0 and ε = 0 reproduce the clean test loss and accuracy exactly."""
    spec, params = trained
    config = RobustnessConfig(gaussian_levels=(0.0,), uniform_levels=(0.0,),
                              weight_noise_levels=(0.0,), adversarial_epsilons=(0.0,),
                              adversarial_samples=10_000, hutchinson_probes=1, power_iterations=1)
    metrics = _diagnostics(spec, params, digits.d2, range(5), config)
    loss, accuracy = evaluate(spec, params, digits.d2.test)

    for kind in ("gaussian", "uniform", "weight_noise", "fgsm", "pgd"):
        assert torch.equal(metrics[f"robust/{kind}@0/accuracy"], accuracy), kind
        assert torch.equal(metrics[f"robust/{kind}@0/loss"], loss), kind


def test_noise_lowers_accuracy(trained, digits):
    """Check that strong input and weight noise lower the mean accuracy below the clean one."""
    spec, params = trained
    config = RobustnessConfig(gaussian_levels=(2.0,), uniform_levels=(3.0,),
                              weight_noise_levels=(1.0,), adversarial_epsilons=(0.5,),
                              hutchinson_probes=1, power_iterations=1)
    metrics = _diagnostics(spec, params, digits.d2, range(5), config)
    clean = evaluate(spec, params, digits.d2.test)[1].mean()
    for name in ("gaussian@2", "uniform@3", "weight_noise@1", "fgsm@0.5", "pgd@0.5"):
        assert metrics[f"robust/{name}/accuracy"].mean() < clean - 0.05, name


def test_seed_numbers_independent_of_chunking(trained, digits, small_metrics):
    """Check that seed i's numbers are the same when run among 5 seeds or in chunks of 2 and 3."""
    spec, params = trained
    together = small_metrics
    first = _diagnostics(spec, select_seeds(params, [0, 1]), digits.d2, range(2), SMALL)
    rest = _diagnostics(spec, select_seeds(params, [2, 3, 4]), digits.d2, range(2, 5), SMALL)

    assert set(together) == set(first)
    for name, value in together.items():
        # Accuracies are multiples of 1/699, so 1e-5 still detects one changed prediction.
        torch.testing.assert_close(torch.cat([first[name], rest[name]]), value,
                                   rtol=1e-4, atol=1e-5, msg=name)


def test_diverged_seeds_get_nan(trained, digits):
    """Check that a diverged seed's robustness numbers are NaN and the others' are finite."""
    spec, params = trained
    diverged = torch.tensor([False, True, False, False, False])
    metrics = _diagnostics(spec, params, digits.d2, range(5), SMALL, diverged)
    for name, value in metrics.items():
        if name.startswith("init/"):
            assert torch.isfinite(value).all(), name
            continue
        assert torch.isnan(value[1]), name
        assert torch.isfinite(value[[0, 2, 3, 4]]).all(), name


# ---------------------------------------------------------------------------------------
# Sharpness
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_hessian():
    """A 3-4-3 network in float64 for two seeds, its batch and the dense Hessians."""
    spec = MLPSpec((3, 4, 3))
    params = _init(spec, range(2), torch.float64)
    generator = torch.Generator().manual_seed(0)
    batch = Split(torch.randn(20, 3, generator=generator, dtype=torch.float64),
                  torch.randint(0, 3, (20,), generator=generator))
    dense = [_dense_hessian(spec, select_seeds(params, [s]), batch) for s in range(2)]
    return spec, params, batch, dense


def _dense_hessian(spec, params, batch):
    names = list(params)
    shapes = [params[name].shape[1:] for name in names]
    flat = torch.cat([params[name][0].flatten() for name in names])

    def loss(vector):
        pieces = torch.split(vector, [int(np.prod(shape)) for shape in shapes])
        one_seed = {name: piece.view(shape) for name, piece, shape in zip(names, pieces, shapes)}
        logits = functional_call(spec.module(), one_seed, (batch.x,))
        return torch.nn.functional.cross_entropy(logits, batch.y)

    return hessian(loss)(flat)


def _flatten(vector, seed):
    return torch.cat([value[seed].flatten() for value in vector.values()])


def test_hutchinson_trace_matches_dense_hessian(tiny_hessian):
    """Check the trace estimate against vᵀHv of the dense Hessian (same probes) and tr(H)."""
    spec, params, batch, dense = tiny_hessian
    probes, _ = draw_probes(params, 400, _generators(range(2), "probes"))
    estimate = hessian_trace(spec, params, batch, probes)

    for seed, matrix in enumerate(dense):
        quadratic = torch.stack([_flatten(v, seed) @ matrix @ _flatten(v, seed) for v in probes])
        torch.testing.assert_close(estimate[seed], quadratic.mean(), rtol=1e-10, atol=1e-10)

        # Rademacher probes: Var(vᵀHv) = 2·Σ_{i≠j} H_ij², so 5 standard errors bound the error.
        off_diagonal = matrix.pow(2).sum() - matrix.diagonal().pow(2).sum()
        standard_error = torch.sqrt(2 * off_diagonal / len(probes))
        assert abs(estimate[seed] - matrix.trace()) < 5 * standard_error + 1e-12


def test_power_iteration_matches_dense_top_eigenvalue(tiny_hessian):
    """Check the power-iteration eigenvalue against the dense eigenvalue of largest magnitude."""
    spec, params, batch, dense = tiny_hessian
    _, start = draw_probes(params, 1, _generators(range(2), "probes"))
    estimate = top_eigenvalue(spec, params, batch, start, num_iterations=300)

    for seed, matrix in enumerate(dense):
        eigenvalues = torch.linalg.eigvalsh(matrix)
        magnitudes = eigenvalues.abs().sort(descending=True).values
        assert magnitudes[1] < 0.95 * magnitudes[0], "too small an eigengap for the tolerance"
        top = eigenvalues[eigenvalues.abs().argmax()]
        torch.testing.assert_close(estimate[seed], top, rtol=1e-6, atol=1e-10)


def test_initial_gradient_norm_matches_per_seed_autograd(trained, digits, small_metrics):
    """Check init/grad_norm against torch.autograd on each seed's own copy of the weights."""
    spec, params = trained
    metrics = small_metrics
    batch_x, batch_y = digits.d2.train.x[:64], digits.d2.train.y[:64]
    for seed in range(5):
        one_seed = {name: value[seed].clone().requires_grad_() for name, value in params.items()}
        loss = torch.nn.functional.cross_entropy(
            functional_call(spec.module(), one_seed, (batch_x,)), batch_y)
        gradients = torch.autograd.grad(loss, list(one_seed.values()))
        expected = torch.sqrt(sum(g.pow(2).sum() for g in gradients))
        torch.testing.assert_close(metrics["init/grad_norm"][seed], expected, rtol=1e-5, atol=0)


# ---------------------------------------------------------------------------------------
# Prediction variance and disagreement
# ---------------------------------------------------------------------------------------


def test_prediction_variance_zero_for_identical_seeds():
    """Check that copies of one seed's probabilities have zero variance and disagreement."""
    probabilities = np.random.default_rng(0).dirichlet(np.ones(4), size=(1, 30)).repeat(6, 0)
    assert prediction_variance(probabilities) == pytest.approx(0.0, abs=1e-15)
    assert disagreement_rate(probabilities.argmax(-1)) == 0.0
    assert seed_bootstrap_ci(pairwise_variance(probabilities)) is None


def test_prediction_variance_hand_example():
    """Check a two-seed example by hand and a random example against NumPy's variance."""
    probabilities = np.array([[[0.2, 0.8], [1.0, 0.0]],
                              [[0.6, 0.4], [1.0, 0.0]]])
    # Sample 0: each class varies by 0.4, so Var = 0.4²/2 = 0.08 per class and 0.16 summed.
    # Sample 1: no variance. Mean over the two samples: 0.08.
    assert prediction_variance(probabilities) == pytest.approx(0.08, abs=1e-12)

    random = np.random.default_rng(1).dirichlet(np.ones(5), size=(7, 40))
    expected = random.var(axis=0, ddof=1).sum(-1).mean()
    assert prediction_variance(random) == pytest.approx(expected, rel=1e-10)


def test_disagreement_matches_brute_force_pair_count():
    """Check the disagreement rate against a loop over seed pairs and test samples."""
    labels = np.random.default_rng(2).integers(0, 3, size=(6, 25))
    different, total = 0, 0
    for i, j in itertools.combinations(range(6), 2):
        for n in range(25):
            different += labels[i, n] != labels[j, n]
            total += 1
    assert disagreement_rate(labels) == pytest.approx(different / total, abs=1e-12)
    assert np.allclose(np.diag(pairwise_disagreement(labels)), 0.0)


def test_seed_bootstrap_ci_brackets_estimate():
    """Check that the seed-resampling interval contains the estimate and has positive width."""
    probabilities = np.random.default_rng(3).dirichlet(np.ones(4), size=(8, 30))
    pairwise = pairwise_variance(probabilities)
    low, high = seed_bootstrap_ci(pairwise, n_resamples=999)
    assert low < prediction_variance(probabilities) < high
    assert seed_bootstrap_ci(pairwise[:4, :4]) is None, "4 seeds are too few for an interval"


def test_prediction_statistics_reject_one_seed():
    """Check that one seed raises a ValueError naming the shape and the fix."""
    with pytest.raises(ValueError, match=r"at least 2 seeds.*two or more seeds"):
        prediction_variance(np.ones((1, 3, 2)) / 2)
    with pytest.raises(ValueError, match=r"expected \(num_seeds, num_samples\)"):
        disagreement_rate(np.zeros(4, dtype=int))


def test_predictions_chunks_stack_in_seed_order(tmp_path, trained, digits):
    """Check that chunk files written out of order load back as one stack in seed order."""
    spec, params = trained
    probabilities, labels = predict_probabilities(spec, params, digits.d2.test.x)
    diverged = torch.tensor([False, False, True, False, False])
    for chunk, seeds in ((1, [3, 4]), (0, [0, 1, 2])):
        key = CellKey("digits-subset", "xavier", 1e-3, chunk)
        save_predictions(predictions_path(tmp_path, key), seeds, probabilities[seeds],
                         labels[seeds], diverged[seeds])

    loaded = load_predictions(tmp_path, "digits-subset", "xavier", 1e-3)
    assert loaded.seeds.tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(loaded.labels, labels.numpy())
    assert np.allclose(loaded.probabilities, probabilities.numpy(), atol=1e-3)
    assert loaded.diverged.tolist() == diverged.tolist()
    assert load_predictions(tmp_path, "digits-subset", "xavier", 3e-3) is None


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"gaussian_levels": (0.1, -0.2)}, r"gaussian_levels=.*non-negative"),
    ({"pgd_steps": 0}, r"pgd_steps=0 is invalid: it must be a positive integer"),
    ({"pgd_step_fraction": 1.5}, r"pgd_step_fraction=1.5 is invalid: it must lie in \(0, 1\]"),
    ({"weight_noise_draws": 2.5}, r"weight_noise_draws=2.5 is invalid"),
])
def test_robustness_config_rejects_bad_values(change, message):
    """Check that impossible levels and counts raise a ValueError naming value and range."""
    with pytest.raises(ValueError, match=message):
        RobustnessConfig(**change)


def test_run_config_round_trip_keeps_robustness():
    """Check that the robustness settings survive the JSON round trip of a stored config."""
    config = suite_config("smoke", ["uniform", "xavier", "copy-exact"])
    restored = RunConfig.from_dict(config.to_dict())
    assert restored.robustness == config.robustness
    assert restored == config
