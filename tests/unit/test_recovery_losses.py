"""BK-SDM's loss terms against hand computation on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from evalsuite.recovery import (LossWeights, distillation_loss, feature_kd_loss, output_kd_loss,
                                task_loss)


def test_task_and_output_kd_are_means_of_squared_differences():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    noise = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    teacher = torch.tensor([[1.5, 2.0], [3.0, 2.0]])
    # (1^2 + 0 + 2^2 + 3^2) / 4 = 14 / 4
    assert task_loss(pred, noise).item() == pytest.approx(3.5)
    # (0.5^2 + 0 + 0 + 2^2) / 4 = 4.25 / 4
    assert output_kd_loss(pred, teacher).item() == pytest.approx(1.0625)


def test_feature_kd_sums_per_stage_means_over_the_matched_pairs_only():
    student = {"down_blocks.0": torch.tensor([1.0, 3.0]), "up_blocks.0": torch.tensor([[2.0]]),
               "mid_block": torch.tensor([100.0])}
    teacher = {"down_blocks.0": torch.tensor([0.0, 0.0]), "up_blocks.1": torch.tensor([[5.0]]),
               "mid_block": torch.tensor([0.0])}
    pairs = [("down_blocks.0", "down_blocks.0"), ("up_blocks.0", "up_blocks.1")]
    # (1 + 9) / 2 + 9 / 1 = 14; the unmatched mid block contributes nothing
    assert feature_kd_loss(student, teacher, pairs).item() == pytest.approx(14.0)
    assert feature_kd_loss(student, teacher, []).item() == 0.0


def test_total_is_the_weighted_sum_and_gradients_reach_only_the_student():
    pred = torch.tensor([1.0, 2.0], requires_grad=True)
    teacher = torch.tensor([0.0, 0.0], requires_grad=True)
    feat_s = {"mid_block": pred * 2}
    feat_t = {"mid_block": torch.tensor([0.0, 1.0], requires_grad=True)}
    terms = distillation_loss(pred, torch.tensor([1.0, 1.0]), teacher, feat_s, feat_t,
                              [("mid_block", "mid_block")], LossWeights(2.0, 0.5, 0.25))
    assert terms.task.item() == pytest.approx(0.5)  # (0 + 1) / 2
    assert terms.output_kd.item() == pytest.approx(2.5)  # (1 + 4) / 2
    assert terms.feature_kd.item() == pytest.approx(6.5)  # ((2-0)^2 + (4-1)^2) / 2
    assert terms.total.item() == pytest.approx(2.0 * 0.5 + 0.5 * 2.5 + 0.25 * terms.feature_kd.item())
    terms.total.backward()
    assert pred.grad is not None and teacher.grad is None and feat_t["mid_block"].grad is None


def test_mismatched_shapes_are_an_error_not_a_broadcast():
    with pytest.raises(ValueError, match="shapes differ"):
        task_loss(torch.zeros(2, 3), torch.zeros(3))
