"""φ: each term against a hand or dense computation, the ablations, seeding and the control."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, hessian, vmap

import initializers
from bench.datasets import Split
from bench.hessian import gaussian_probes
from bench.models import MLPSpec, apply, stack_seeds
from initializers import phi as phi_module
from initializers import phi_terms
from initializers.registry import InitContext
from initializers.standard import torch_default

STUDENT = (6, 12, 10, 6)
TEACHER = (6, 5, 4, 3)
D1_CLASSES = (1, 3, 4)
"""Non-contiguous on purpose: the restricted softmax must pick these student columns."""
FAST = {"phi_steps": 4, "phi_batch_size": 16, "phi_hessian_batch": 8, "phi_draws": 2}


def make_context(seeds=(0, 1), options=None, *, num_samples=64, teacher=True,
                 dtype=torch.float32) -> InitContext:
    """A tiny scenario with random D1 data and random (untrained) teachers."""
    student, teacher_spec = MLPSpec(STUDENT), MLPSpec(TEACHER)
    data = torch.Generator().manual_seed(7)
    x = torch.randn(num_samples, STUDENT[0], generator=data, dtype=dtype)
    y = torch.randint(0, len(D1_CLASSES), (num_samples,), generator=data)
    # Teacher seed i is drawn from its own generator, like every per-seed quantity.
    teachers = stack_seeds([
        {k: v[0].to(dtype) for k, v in torch_default(
            teacher_spec, [torch.Generator().manual_seed(100 + i)]).items()}
        for i in seeds])
    return InitContext(
        student=student, teacher=teacher_spec, teacher_params=teachers if teacher else None,
        d1_classes=D1_CLASSES, d1_train=Split(x, y), d2_train=Split(x, y),
        seed_indices=tuple(seeds), suite_seed=0, scenario="tiny", options=dict(options or {}))


def one_seed(params, index=0):
    return {k: v[index] for k, v in params.items()}


def flat_loss(spec, classes, x, y, template):
    """The restricted cross-entropy as a function of one flat parameter vector."""
    shapes = {k: v.shape for k, v in template.items()}
    sizes = [v.numel() for v in template.values()]

    def unflatten(flat):
        return {k: part.reshape(shapes[k]) for k, part in zip(shapes, flat.split(sizes))}

    def loss(flat):
        return phi_terms.d1_cross_entropy(spec, classes, unflatten(flat), x, y)

    return loss, unflatten


def tiny_problem(dtype=torch.float64, seed=0, batch=12):
    spec = MLPSpec((4, 5, 3))
    g = torch.Generator().manual_seed(seed)
    params = {k: v[0].to(dtype) for k, v in torch_default(spec, [g]).items()}
    x = torch.randn(batch, 4, generator=g, dtype=dtype)
    classes = torch.tensor([0, 2])
    y = torch.randint(0, 2, (batch,), generator=g)
    return spec, params, x, classes, y


# ---------------------------------------------------------------------------------------
# λ4: Hutchinson against the dense Hessian, and its gradient against finite differences
# ---------------------------------------------------------------------------------------


def test_hutchinson_matches_dense_hessian_within_its_standard_error():
    spec, params, x, classes, y = tiny_problem()
    flat = torch.cat([v.reshape(-1) for v in params.values()])
    loss, _ = flat_loss(spec, classes, x, y, params)
    H = hessian(loss)(flat)
    exact = float((H ** 2).sum())
    assert exact > 0

    num_probes = 4000
    g = torch.Generator().manual_seed(1)
    probes = stack_seeds(gaussian_probes(params, num_probes, g))  # each (N, *shape)
    # One single-probe estimate per probe, mapped over the probes; their mean is the
    # N-probe estimate (the term averages its probes).
    single = {k: v.unsqueeze(1) for k, v in probes.items()}  # each (N, 1, *shape)
    estimates = vmap(lambda v: phi_terms.hessian_frobenius_term(
        spec, classes, params, x, y, v))(single)
    estimate = float(estimates.mean())
    first_ten = float(phi_terms.hessian_frobenius_term(
        spec, classes, params, x, y, {k: v[:10] for k, v in probes.items()}))
    assert first_ten == pytest.approx(float(estimates[:10].mean()), rel=1e-10)

    # ‖Hv‖² = vᵀ(H²)v with v ~ N(0, I) has variance 2‖H²‖²_F, so the mean of N probes has
    # standard error sqrt(2 tr(H⁴) / N). A 4-SE band fails by chance with probability < 1e-4.
    H2 = H @ H
    standard_error = math.sqrt(2 * float((H2 ** 2).sum()) / num_probes)
    assert float(estimates.var()) == pytest.approx(standard_error ** 2 * num_probes, rel=0.2)
    assert abs(estimate - exact) < 4 * standard_error, (estimate, exact, standard_error)
    assert standard_error < 0.1 * exact  # the test has power: the band is narrow


def test_spectral_option_matches_dense_top_eigenvalue():
    spec, params, x, classes, y = tiny_problem()
    flat = torch.cat([v.reshape(-1) for v in params.values()])
    loss, _ = flat_loss(spec, classes, x, y, params)
    top = float(torch.linalg.eigvalsh(hessian(loss)(flat)).abs().max())
    start = gaussian_probes(params, 1, torch.Generator().manual_seed(3))[0]
    value = float(phi_terms.hessian_spectral_term(spec, classes, params, x, y, start, 200))
    assert value == pytest.approx(top ** 2, rel=1e-4)


def test_gradient_of_hessian_term_matches_finite_differences():
    spec, params, x, classes, y = tiny_problem()
    probes = stack_seeds(gaussian_probes(params, 3, torch.Generator().manual_seed(2)))

    def term(p):
        return phi_terms.hessian_frobenius_term(spec, classes, p, x, y, probes)

    analytic = grad(term)(params)
    g = torch.Generator().manual_seed(4)
    for _ in range(3):
        direction = {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}
        eps = 1e-6
        plus = term({k: v + eps * direction[k] for k, v in params.items()})
        minus = term({k: v - eps * direction[k] for k, v in params.items()})
        numeric = float((plus - minus) / (2 * eps))
        directional = float(sum((analytic[k] * direction[k]).sum() for k in params))
        assert directional == pytest.approx(numeric, rel=1e-5, abs=1e-8)


# ---------------------------------------------------------------------------------------
# λ1, λ2, λ3
# ---------------------------------------------------------------------------------------


def test_ce_term_is_the_softmax_restricted_to_d1_classes():
    ctx = make_context()
    params = one_seed(torch_default(ctx.student, [torch.Generator().manual_seed(0)]))
    x = ctx.d1_train.x[:10]
    y_local = ctx.d1_train.y[:10]
    classes = torch.tensor(D1_CLASSES)

    logits = apply(ctx.student, params, x)
    by_hand = []
    for i in range(10):
        target = logits[i, D1_CLASSES[int(y_local[i])]]
        normalizer = torch.log(sum(torch.exp(logits[i, c]) for c in D1_CLASSES))
        by_hand.append(normalizer - target)
    expected = torch.stack(by_hand).mean()

    value = phi_terms.ce_term(ctx.student, classes, params, x, y_local)
    assert float(value) == pytest.approx(float(expected), rel=1e-6)
    full = F.cross_entropy(logits, torch.tensor(D1_CLASSES)[y_local])
    assert abs(float(full) - float(value)) > 1e-3  # the restriction changes the value

    # The classes D1 never shows get no gradient: their biases are not driven down.
    g = grad(lambda p: phi_terms.ce_term(ctx.student, classes, p, x, y_local))(params)
    unseen = [k for k in range(STUDENT[-1]) if k not in D1_CLASSES]
    last = ctx.student.num_layers - 1
    assert torch.all(g[ctx.student.bias(last)][unseen] == 0)
    assert torch.all(g[ctx.student.weight(last)][unseen] == 0)


def test_phi_maps_d1_star_labels_into_the_restricted_softmax():
    ctx = make_context()
    x, y_local, classes = phi_module._d1_data(ctx, ctx.d1_classes)
    assert torch.equal(classes[y_local], ctx.d1_star().y)


@pytest.mark.parametrize("squared", [True, False])
def test_l2_term_is_zero_at_the_copy(squared):
    ctx = make_context()
    copy = initializers.get("copy-exact")(ctx).params
    blocks = phi_terms.teacher_blocks(ctx.student, ctx.teacher, ctx.d1_classes)
    for i in range(ctx.num_seeds):
        value = phi_terms.l2_term(one_seed(copy, i), one_seed(ctx.teacher_params, i), blocks,
                                  squared=squared)
        assert float(value) == 0.0
        g = grad(lambda p: phi_terms.l2_term(p, one_seed(ctx.teacher_params, i), blocks,
                                             squared=squared))(one_seed(copy, i))
        assert all(torch.isfinite(v).all() and torch.all(v == 0) for v in g.values())


def test_l2_term_is_the_squared_distance_of_the_block():
    ctx = make_context(seeds=(0,))
    params = one_seed(torch_default(ctx.student, [torch.Generator().manual_seed(5)]))
    teacher = one_seed(ctx.teacher_params)
    blocks = phi_terms.teacher_blocks(ctx.student, ctx.teacher, ctx.d1_classes)
    expected = 0.0
    for layer in range(3):
        rows = list(D1_CLASSES) if layer == 2 else list(range(TEACHER[layer + 1]))
        w = params[f"layers.{layer}.weight"][rows][:, :TEACHER[layer]]
        b = params[f"layers.{layer}.bias"][rows]
        expected += float(((w - teacher[f"layers.{layer}.weight"]) ** 2).sum())
        expected += float(((b - teacher[f"layers.{layer}.bias"]) ** 2).sum())
    squared = float(phi_terms.l2_term(params, teacher, blocks))
    assert squared == pytest.approx(expected, rel=1e-6)
    norm = float(phi_terms.l2_term(params, teacher, blocks, squared=False))
    assert norm == pytest.approx(math.sqrt(expected), rel=1e-6)


@pytest.mark.parametrize("kind", ["box", "gaussian"])
def test_robust_term_tends_to_the_plain_cross_entropy_as_delta_shrinks(kind):
    spec, params, x, classes, y = tiny_problem(batch=32)
    plain = float(phi_terms.ce_term(spec, classes, params, x, y))
    gaps = []
    for delta in (0.3, 1e-2, 1e-4, 1e-7):
        noise = phi_terms.perturbations(8, tuple(x.shape), delta, kind,
                                        torch.Generator().manual_seed(0), x.dtype)
        gaps.append(abs(float(phi_terms.robust_term(spec, classes, params, x, y, noise)) - plain))
    assert gaps[0] > 1e-4  # a large δ does change the loss
    assert gaps[-1] < 1e-9  # the loss is Lipschitz in x, so the gap is O(δ)
    assert gaps == sorted(gaps, reverse=True)


def test_box_perturbations_lie_in_the_linf_ball():
    noise = phi_terms.perturbations(5, (7, 3), 0.2, "box", torch.Generator().manual_seed(0))
    assert noise.shape == (5, 7, 3)
    assert noise.abs().max() <= 0.2 and noise.abs().max() > 0.15


# ---------------------------------------------------------------------------------------
# Ablations skip their term; the full φ computes all four
# ---------------------------------------------------------------------------------------

TERM_FUNCTIONS = {"ce": "ce_term", "l2": "l2_term", "robust": "robust_term",
                  "hessian": "hessian_frobenius_term"}


@pytest.mark.parametrize("ablation, term", [("phi-no-ce", "ce"), ("phi-no-l2", "l2"),
                                            ("phi-no-robust", "robust"),
                                            ("phi-no-hessian", "hessian")])
def test_ablation_never_evaluates_its_term(monkeypatch, ablation, term):
    calls = {name: 0 for name in TERM_FUNCTIONS}
    for name, attribute in TERM_FUNCTIONS.items():
        original = getattr(phi_terms, attribute)

        def counted(*args, _name=name, _original=original, **kwargs):
            if _name == term:
                raise AssertionError(f"{ablation} evaluated the {term} term")
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(phi_terms, attribute, counted)

    ctx = make_context(options=FAST)
    result = initializers.get(ablation)(ctx)
    assert calls[term] == 0
    assert all(count > 0 for name, count in calls.items() if name != term)
    assert term not in result.info["phi_trace"]
    assert result.info["phi_config"]["lambdas"][term] == 0.0


def test_full_phi_evaluates_every_term_and_traces_it():
    ctx = make_context(options={**FAST, "phi_trace_points": 3})
    result = initializers.get("phi")(ctx)
    trace = result.info["phi_trace"]
    assert trace["step"] == [1, 3, 4] or trace["step"] == [1, 2, 4]
    for term in phi_module.TERMS:
        assert len(trace[term]) == len(trace["step"])
        assert all(v is not None and math.isfinite(v) for v in trace[term])
    assert trace["lambdas"] == dict(zip(phi_module.TERMS, phi_module.PHI_DEFAULTS["phi_lambdas"]))
    assert result.info["phi_start"] == "copy-exact"
    assert trace["l2"][0] == 0.0  # λ2 vanishes at the copy-exact start


def test_phi_logs_every_term_per_step(caplog):
    ctx = make_context(options={**FAST, "phi_steps": 2})
    with caplog.at_level("DEBUG", logger="initializers.phi"):
        initializers.get("phi")(ctx)
    lines = [r.getMessage() for r in caplog.records if r.name == "initializers.phi"]
    assert len(lines) == 2
    for term in phi_module.TERMS:
        assert f"{term}=" in lines[0] and "λ=" in lines[0]


# ---------------------------------------------------------------------------------------
# Seeding: a seed's result does not depend on its chunk
# ---------------------------------------------------------------------------------------


def test_seed_results_do_not_depend_on_chunk_size_or_chunking():
    options = {**FAST, "phi_steps": 4}
    five = initializers.get("phi")(make_context(seeds=(0, 1, 2, 3, 4), options=options)).params
    two = initializers.get("phi")(make_context(seeds=(0, 1), options=options)).params
    rest = initializers.get("phi")(make_context(seeds=(2, 3, 4), options=options)).params
    # Only batch-size-dependent floating-point kernels may differ (float32, 4 Adam steps).
    tolerance = 1e-5
    for name in five:
        assert torch.allclose(five[name][:2], two[name], atol=tolerance, rtol=0), name
        assert torch.allclose(five[name][2:], rest[name], atol=tolerance, rtol=0), name
    # And the seeds did move apart from their start, differently per seed.
    start = initializers.get("copy-exact")(make_context(seeds=(0, 1), options=options)).params
    assert any(not torch.equal(two[n], start[n]) for n in two)


# ---------------------------------------------------------------------------------------
# Options, compute, start, unseen classes, divergence
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, key", [
    ({"phi_steps": -1}, "phi_steps"),
    ({"phi_steps": 2.5}, "phi_steps"),
    ({"phi_lambdas": (1, 1, 1)}, "phi_lambdas"),
    ({"phi_lambdas": (1, -1, 1, 1)}, "phi_lambdas"),
    ({"phi_lambdas": {"hesian": 1.0}}, "phi_lambdas"),
    ({"phi_lambdas": (0, 0, 0, 0)}, "phi_lambdas"),
    ({"phi_delta": float("nan")}, "phi_delta"),
    ({"phi_lr": 0}, "phi_lr"),
    ({"phi_draws": 0}, "phi_draws"),
    ({"phi_probes": 0}, "phi_probes"),
    ({"phi_neighbourhood": "ball"}, "phi_neighbourhood"),
    ({"phi_hessian_norm": "nuclear"}, "phi_hessian_norm"),
    ({"phi_l2": "cubed"}, "phi_l2"),
    ({"phi_start": "phi"}, "phi_start"),
    ({"phi_step": 10}, "phi_step"),
])
def test_invalid_options_raise_a_clear_value_error(options, key):
    with pytest.raises(ValueError, match=key):
        phi_module.phi_config(options)


def test_unknown_start_is_an_unknown_initializer():
    with pytest.raises(KeyError, match="no-such-init"):
        initializers.get("phi")(make_context(options={**FAST, "phi_start": "no-such-init"}))


def test_lambdas_accept_a_partial_dict():
    config = phi_module.phi_config({"phi_lambdas": {"hessian": 0.5}})
    defaults = phi_module.PHI_DEFAULTS["phi_lambdas"]
    assert config.lambdas == (*defaults[:3], 0.5)


def test_compute_counts_steps_draws_and_hvps():
    options = {**FAST, "phi_steps": 3, "phi_probes": 2}
    result = initializers.get("phi")(make_context(options=options))
    # Per step: λ1 one pass, λ3 m = 2 passes; λ4 2 probes' HVPs, each differentiated
    # (counted twice), on 8 of the 16 samples: 2 × 2 × 8/16 = 2 HVPs.
    assert result.compute.optimizer_steps == 3
    assert result.compute.forward_backward_passes == 3 * (1 + 2)
    assert result.compute.hessian_vector_products == 3 * 2
    assert phi_module.pass_equivalents(result.compute) == 9 + 2 * 6
    assert result.info["phi_compute"]["hvps_per_step"] == 2
    assert result.info["phi_compute"]["draws_per_step"] == 2
    assert result.info["phi_compute"]["hvp_batch_size"] == 8
    assert result.compute.seconds > 0

    ablated = initializers.get("phi-no-hessian")(make_context(options=options))
    assert ablated.compute.forward_backward_passes == 3 * (1 + 2)
    assert ablated.compute.hessian_vector_products == 0
    assert ablated.info["phi_compute"]["hvps_per_step"] == 0

    spectral = phi_module.phi_config({**options, "phi_hessian_norm": "spectral",
                                      "phi_power_iterations": 5})
    # 5 undifferentiated HVPs and one differentiated (counted twice), on half the batch.
    assert phi_module._compute(spectral)[0].hessian_vector_products == math.ceil(3 * 7 * 0.5)


def test_zero_steps_returns_the_start_and_start_is_configurable():
    ctx = make_context(options={**FAST, "phi_steps": 0})
    copy = initializers.get("copy-exact")(ctx).params
    result = initializers.get("phi")(ctx)
    assert all(torch.equal(result.params[n], copy[n]) for n in copy)

    ctx = make_context(options={**FAST, "phi_steps": 0, "phi_start": "uniform"})
    result = initializers.get("phi")(ctx)
    uniform = initializers.get("uniform")(ctx).params
    assert result.info["phi_start"] == "uniform"
    assert all(torch.equal(result.params[n], uniform[n]) for n in uniform)


def test_unseen_class_rows_keep_the_copy_rule():
    ctx = make_context(options=FAST)
    result = initializers.get("phi")(ctx)
    last = ctx.student.num_layers - 1
    unseen = [k for k in range(STUDENT[-1]) if k not in D1_CLASSES]
    assert torch.all(result.params[ctx.student.weight(last)][:, unseen] == 0)
    assert torch.all(result.params[ctx.student.bias(last)][:, unseen] == -10.0)
    assert result.info["unseen_classes"].startswith("zero weights")


@pytest.mark.parametrize("options", [
    {"phi_hessian_norm": "spectral", "phi_power_iterations": 3},
    {"phi_l2": "norm"},
    {"phi_neighbourhood": "gaussian"},
])
def test_options_run_and_stay_finite(options):
    result = initializers.get("phi")(make_context(options={**FAST, **options}))
    assert all(torch.isfinite(v).all() for v in result.params.values())
    assert result.info["phi_diverged_step"] == [-1, -1]


def test_a_diverging_seed_is_frozen_without_touching_the_others():
    options = {**FAST, "phi_start": "uniform"}  # a finite start whatever the teacher holds
    ctx = make_context(seeds=(0, 1), options=options)
    clean = initializers.get("phi")(ctx).params
    poisoned = {k: v.clone() for k, v in ctx.teacher_params.items()}
    poisoned["layers.0.weight"][1, 0, 0] = float("nan")  # seed 1's λ2 term is NaN
    ctx = make_context(seeds=(0, 1), options=options)
    ctx.teacher_params = poisoned
    result = initializers.get("phi")(ctx)
    assert result.info["phi_diverged_step"] == [-1, 0]
    for name in clean:
        assert torch.equal(result.params[name][0], clean[name][0])
        assert torch.isfinite(result.params[name][1]).all()


def test_phi_needs_a_teacher():
    with pytest.raises(ValueError, match="needs a teacher"):
        initializers.get("phi")(make_context(teacher=False, options=FAST))


# ---------------------------------------------------------------------------------------
# pretrain: the compute-matched control
# ---------------------------------------------------------------------------------------


def test_pretrain_is_default_init_trained_for_phis_steps_without_a_teacher():
    options = {**FAST, "phi_steps": 5}
    ctx = make_context(options=options, teacher=False)
    entry = initializers.available()["pretrain"]
    assert entry.needs_teacher is False
    result = entry(ctx)
    assert result.compute.optimizer_steps == 5
    assert result.compute.forward_backward_passes == 5
    assert result.info["pretrain_softmax"] == "d1"

    start = initializers.get("uniform")(ctx).params
    assert any(not torch.equal(result.params[n], start[n]) for n in start)
    zero = entry(make_context(options={**options, "phi_steps": 0}, teacher=False)).params
    assert all(torch.equal(zero[n], start[n]) for n in start)  # "student-init" generators

    phi_result = initializers.get("phi")(make_context(options=options))
    assert phi_result.compute.optimizer_steps == result.compute.optimizer_steps


def test_pretrain_can_match_phis_passes_and_use_the_full_softmax():
    options = {**FAST, "phi_steps": 2, "pretrain_match": "passes", "pretrain_softmax": "all"}
    result = initializers.get("pretrain")(make_context(options=options, teacher=False))
    phi_compute = initializers.get("phi")(make_context(options=options)).compute
    assert result.compute.optimizer_steps == phi_module.pass_equivalents(phi_compute)
    with pytest.raises(ValueError, match="pretrain_softmax"):
        initializers.get("pretrain")(make_context(options={"pretrain_softmax": "some"}))


def test_registry_lists_phi_its_ablations_grid_and_pretrain_with_costs():
    registry = initializers.available()
    for name in ("phi", "phi-no-ce", "phi-no-l2", "phi-no-robust", "phi-no-hessian", "pretrain",
                 *phi_module.LAMBDA_GRID):
        assert name in registry
        assert "Adam steps on D1*" in registry[name].compute


def test_grid_variant_scales_one_lambda():
    ctx = make_context(options={**FAST, "phi_steps": 1})
    result = initializers.get("phi-l4x10")(ctx)
    defaults = phi_module.PHI_DEFAULTS["phi_lambdas"]
    assert result.info["phi_config"]["lambdas"]["hessian"] == pytest.approx(10 * defaults[3])
    assert result.info["phi_variant"] == "phi-l4x10"


def test_phi_step_cost_reports_a_ratio():
    cost = phi_module.phi_step_cost(2, 2, student_sizes=STUDENT, teacher_sizes=TEACHER,
                                    d1_classes=D1_CLASSES, num_samples=64)
    assert cost["ratio"] > 0 and cost["phi_ms"] > 0 and cost["plain_ms"] > 0
    assert all(v != 0 for v in cost["config"]["lambdas"].values())
