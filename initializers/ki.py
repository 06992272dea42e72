"""Knowledge Inheritance (Qin et al. 2022): a training-time peer of the transfer initializers.

The student starts from PyTorch's default initialization (the same weights as `uniform`);
during D2 training its loss mixes the cross-entropy with distillation toward the teacher,

    L_t = (1 − α_t) · CE(student(x), y) + α_t · T² · KL(softmax(g(x)/T) ‖ softmax(f_D1(x)/T))

where g is the teacher, f_D1 the student's logits restricted to the teacher's classes
(`d1_classes`) and T the temperature. The weight decays linearly to 0:

    α_t = α_0 · max(0, 1 − t / (fraction · num_steps))

Options (`ctx.options`): ki_weight (α_0, default 0.5), ki_fraction (default 0.3: α reaches 0
after the first 30% of the D2 steps), ki_temperature (T, default 2). The distillation runs
the teacher once per step while α_t > 0, on the student's minibatch; those forward passes are
the method's extra compute, added by the runner from `TrainingLoss.active_steps`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.engine import TrainingLoss
from bench.models import MLPSpec, Params, apply
from initializers.registry import InitContext, InitResult, register
from initializers.standard import torch_default

KI_WEIGHT = 0.5
KI_FRACTION = 0.3
KI_TEMPERATURE = 2.0


def linear_decay(initial: float, fraction: float):
    """Return λ(step, num_steps) = initial · max(0, 1 − step / (fraction · num_steps)).

    The weight is 0 from step ⌈fraction · num_steps⌉ on; `fraction` = 0 gives 0 everywhere.
    """
    def weight(step: int, num_steps: int) -> float:
        horizon = fraction * num_steps
        if horizon <= 0:
            return 0.0
        return initial * max(0.0, 1.0 - step / horizon)

    return weight


def distillation_term(student: MLPSpec, teacher: MLPSpec, d1_classes: tuple[int, ...],
                      temperature: float):
    """Return one seed's term(w, u, x, y) = T²·KL(p_teacher ‖ p_student,D1) − CE(w, x, y).

    Added with weight α to the cross-entropy, it gives (1 − α)·CE + α·T²·KL. The KL divergence
    uses temperature-T softmaxes over the teacher's classes only; T² keeps its gradient on the
    scale of the cross-entropy's (Hinton et al. 2015).
    """
    classes = torch.tensor(d1_classes, dtype=torch.int64)

    def term(params: Params, teacher_params: Params, x: torch.Tensor,
             y: torch.Tensor) -> torch.Tensor:
        logits = apply(student, params, x)  # (batch, student classes)
        restricted = logits.index_select(-1, classes.to(x.device)) / temperature
        target = apply(teacher, teacher_params, x).detach() / temperature
        kl = F.kl_div(F.log_softmax(restricted, -1), F.log_softmax(target, -1),
                      log_target=True, reduction="batchmean")
        return temperature ** 2 * kl - F.cross_entropy(logits, y)

    return term


def _option(ctx: InitContext, name: str, default: float, low: float, high: float) -> float:
    value = float(ctx.options.get(name, default))
    if not (low <= value <= high) or math.isnan(value):
        raise ValueError(f"{name}={value!r} is invalid: it must lie in [{low}, {high}]. "
                         f"The default is {default}.")
    return value


@register("ki", needs_teacher=True,
          compute="1 teacher forward pass per D2 step while α > 0 (default: first 30%)",
          description="Knowledge Inheritance: default init, D2 loss mixed with T=2 distillation "
          "on the teacher's classes, weight 0.5 decaying linearly to 0 over 30% of training")
def ki(ctx: InitContext) -> InitResult:
    initial = _option(ctx, "ki_weight", KI_WEIGHT, 0.0, 1.0)
    fraction = _option(ctx, "ki_fraction", KI_FRACTION, 0.0, 1.0)
    temperature = _option(ctx, "ki_temperature", KI_TEMPERATURE, 1e-3, math.inf)

    params = torch_default(ctx.student, ctx.generators("student-init"))
    term = distillation_term(ctx.student, ctx.teacher, ctx.d1_classes, temperature)
    loss = TrainingLoss(term, dict(ctx.teacher_params), linear_decay(initial, fraction),
                        forward_passes_per_step=1)
    info = {"ki_weight": initial, "ki_fraction": fraction, "ki_temperature": temperature}
    return InitResult(params, info=info, training_loss=loss)
