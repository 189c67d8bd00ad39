"""BK-SDM's distillation losses, as pure functions of tensors.

Recovery trains the ablated UNet (student) against the unablated one (teacher) with

    total = w_task * task + w_out * output_kd + w_feat * feature_kd

- ``task``: the denoising loss, ``mean((eps_student - target)^2)`` (target: the noise, or the
  velocity for v-prediction models);
- ``output_kd``: ``mean((eps_student - eps_teacher)^2)``;
- ``feature_kd``: the *sum* over matched stages of ``mean((f_student - f_teacher)^2)``, each
  stage's mean taken over its own elements (BK-SDM's ``train_text_to_image.py``: per-layer
  ``F.mse_loss(..., reduction="mean")``, summed). Which stages are matched:
  ``evalsuite.recovery.features``.

Every mean is computed in float32 (BK-SDM casts with ``.float()``); teacher tensors are
detached, so gradients reach the student only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three terms (BK-SDM's defaults: 1, 1, 1)."""

    task: float = 1.0
    output_kd: float = 1.0
    feature_kd: float = 1.0


@dataclass(frozen=True)
class LossTerms:
    """The weighted total (what is back-propagated) and each unweighted term."""

    total: torch.Tensor
    task: torch.Tensor
    output_kd: torch.Tensor
    feature_kd: torch.Tensor

    def values(self) -> dict[str, float]:
        """The four numbers as Python floats (for logs and the loss curve)."""
        return {k: float(getattr(self, k).detach()) for k in ("total", "task", "output_kd", "feature_kd")}


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference in float32; ``b`` is treated as a constant."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a.float() - b.detach().float()).pow(2).mean()


def task_loss(student_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Denoising loss: the student's prediction against the true noise (or velocity)."""
    return mse(student_pred, target)


def output_kd_loss(student_pred: torch.Tensor, teacher_pred: torch.Tensor) -> torch.Tensor:
    """Output-level KD: the student's prediction against the teacher's."""
    return mse(student_pred, teacher_pred)


def feature_kd_loss(student_feats: Mapping[str, torch.Tensor], teacher_feats: Mapping[str, torch.Tensor],
                    pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
    """Feature-level KD: sum over ``(student stage, teacher stage)`` pairs of their MSE.

    No pairs (nothing matched) gives 0, so the weight of an empty term does not matter.
    """
    terms = [mse(student_feats[s], teacher_feats[t]) for s, t in pairs]
    if not terms:
        ref = next(iter(student_feats.values()), torch.zeros(()))
        return torch.zeros((), device=ref.device)
    return torch.stack(terms).sum()


def distillation_loss(student_pred: torch.Tensor, target: torch.Tensor, teacher_pred: torch.Tensor,
                      student_feats: Mapping[str, torch.Tensor], teacher_feats: Mapping[str, torch.Tensor],
                      pairs: Sequence[tuple[str, str]], weights: LossWeights = LossWeights()) -> LossTerms:
    """The three terms and their weighted sum (see the module docstring)."""
    task = task_loss(student_pred, target)
    out = output_kd_loss(student_pred, teacher_pred)
    feat = feature_kd_loss(student_feats, teacher_feats, pairs)
    total = weights.task * task + weights.output_kd * out + weights.feature_kd * feat
    return LossTerms(total, task, out, feat)
