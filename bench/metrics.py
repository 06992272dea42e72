"""Per-seed metrics: at initialization, from the training curves, and convergence.

Every function takes stacked parameters (leading seed axis) and returns one value per seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from bench.datasets import Split
from bench.engine import TrainResult
from bench.models import MLPSpec, Params, apply, apply_seeds

DIAGNOSTIC_BATCH_SIZE = 512
"""D2 training samples used for the gradient-based diagnostics at initialization."""

LOSS_FRACTIONS = (0.10, 0.25, 1.00)
"""Fractions of the step budget at which the training loss is reported."""


@torch.no_grad()
def teacher_preservation(
    student: MLPSpec, student_params: Params, teacher: MLPSpec, teacher_params: Params | None,
    d1_classes: tuple[int, ...], d1_test: Split,
) -> dict[str, torch.Tensor]:
    """Measure how much of the teacher's function the initialized student keeps on D1.

    Returns, per seed (each (S,)):
        init/d1_accuracy: accuracy of the student's full argmax on D1's test split, labels
            mapped into the student's label space;
        init/teacher_agreement: share of D1 test inputs where the student's argmax over the
            teacher's classes equals the teacher's argmax (NaN without a teacher);
        init/teacher_logit_max_abs_diff: max |student logit − teacher logit| over D1 test
            inputs and the teacher's classes (NaN without a teacher).
    """
    classes = torch.tensor(d1_classes, device=d1_test.x.device)
    logits = apply_seeds(student, student_params, d1_test.x)  # (S, N, student classes)
    result = {"init/d1_accuracy": (logits.argmax(-1) == classes[d1_test.y]).float().mean(1)}

    nan = torch.full_like(result["init/d1_accuracy"], float("nan"))
    if teacher_params is None:
        result["init/teacher_agreement"] = nan
        result["init/teacher_logit_max_abs_diff"] = nan
        return result

    restricted = logits[:, :, classes]  # (S, N, teacher classes)
    teacher_logits = apply_seeds(teacher, teacher_params, d1_test.x)
    agree = restricted.argmax(-1) == teacher_logits.argmax(-1)
    result["init/teacher_agreement"] = agree.float().mean(1)
    result["init/teacher_logit_max_abs_diff"] = (restricted - teacher_logits).abs().amax((1, 2))
    return result


def unit_gradient_status(spec: MLPSpec, params: Params, batch: Split) -> dict[str, torch.Tensor]:
    """Return, per seed, the shares of inactive and of dead hidden units on `batch`.

    A hidden unit is *inactive* when neither its incoming weights, its bias nor its outgoing
    weights get a nonzero gradient of the mean cross-entropy on `batch`. It is *dead* when it
    is inactive and its incoming weights and bias are exactly zero: its pre-activation is then
    0 for every input, ReLU's derivative at 0 is 0, and no optimizer step can ever move it,
    whatever the other layers do. A default-initialized unit that happens to be inactive on
    the batch is not dead, because changes upstream can switch it on.

    Returns:
        {"init/inactive_unit_fraction": (S,), "init/dead_unit_fraction": (S,)}.
    """
    def loss(p, x, y):
        return F.cross_entropy(apply(spec, p, x), y)

    grads = vmap(grad(loss), in_dims=(0, None, None))(params, batch.x, batch.y)
    inactive, dead, total = 0, 0, 0
    for layer in range(spec.num_layers - 1):
        weight, bias = spec.weight(layer), spec.bias(layer)
        incoming = grads[weight].abs().sum(-1) + grads[bias].abs()
        outgoing = grads[spec.weight(layer + 1)].abs().sum(-2)
        no_gradient = (incoming == 0) & (outgoing == 0)
        zero_input = (params[weight].abs().sum(-1) + params[bias].abs()) == 0
        inactive = inactive + no_gradient.sum(-1)
        dead = dead + (no_gradient & zero_input).sum(-1)
        total += spec.sizes[layer + 1]
    return {"init/inactive_unit_fraction": inactive.float() / total,
            "init/dead_unit_fraction": dead.float() / total}


def dead_unit_fraction(spec: MLPSpec, params: Params, batch: Split) -> torch.Tensor:
    """Return, per seed, the share of hidden units that can never train (see unit_gradient_status)."""
    return unit_gradient_status(spec, params, batch)["init/dead_unit_fraction"]


def curve_metrics(result: TrainResult, num_steps: int) -> dict[str, torch.Tensor]:
    """Summarize the training curves per seed; diverged seeds get NaN.

    Returns (each (S,)): final train/val/test loss and accuracy, `test/accuracy_auc` (the
    trapezoidal area under the test-accuracy curve against the fraction of the budget, in
    [0, 1]), `train/loss@10%` and `@25%` (at the first evaluation at or after that step),
    `init/d2_loss` and `init/d2_accuracy` (test split at step 0), and the status metrics.
    """
    metrics = {name: curve[:, -1] for name, curve in result.curves.items()}
    steps = torch.tensor(result.eval_steps, dtype=torch.float64)

    accuracy = result.curves["test/accuracy"].double()
    metrics["test/accuracy_auc"] = torch.trapezoid(accuracy, steps / num_steps, dim=1)
    for fraction in LOSS_FRACTIONS[:-1]:
        at = int(torch.searchsorted(steps, fraction * num_steps))
        metrics[f"train/loss@{fraction:.0%}"] = result.curves["train/loss"][:, at]
    metrics["init/d2_loss"] = result.curves["test/loss"][:, 0]
    metrics["init/d2_accuracy"] = result.curves["test/accuracy"][:, 0]

    metrics["status/diverged"] = result.diverged.double()
    metrics["status/diverged_step"] = torch.where(
        result.diverged, result.diverged_step.double(), torch.full_like(steps[:1], float("nan"))
    )
    return metrics


def steps_to_threshold(steps: np.ndarray, curve: np.ndarray, tau: float) -> tuple[float, bool]:
    """Return the first evaluated step whose value reaches `tau`, and whether it did.

    A curve that never reaches `tau` is censored: it returns (last step, False). NaN
    values (after divergence) never count as reaching.
    """
    reached = np.flatnonzero(np.nan_to_num(curve, nan=-np.inf) >= tau)
    if reached.size == 0:
        return float(steps[-1]), False
    return float(steps[reached[0]]), True
