"""LossTracker: unweighted means by completion mask and, for chat batches, by part."""

import math

import pytest
import torch

from plw.batch import PART_IDS
from plw.training.loss_tracker import LossTracker

U, A, T = PART_IDS["user"], PART_IDS["assistant"], PART_IDS["template"]


def micro_batch():
    ce = torch.tensor([[1.0, 2.0, 3.0, 4.0, math.nan]])
    valid = torch.tensor([[True, True, True, True, False]])  # the last position is padding
    completion = torch.tensor([[False, False, True, True, False]])
    parts = torch.tensor([[T, U, A, A, -1]])
    return ce, valid, completion, parts


def test_means_by_completion_mask_and_by_part():
    tracker = LossTracker()
    tracker.add(*micro_batch())
    tracker.add(*micro_batch())
    logs = tracker.pop()
    assert logs["prompt_loss"] == pytest.approx(1.5) and logs["completion_loss"] == pytest.approx(3.5)
    assert logs["template_loss"] == pytest.approx(1.0) and logs["user_loss"] == pytest.approx(2.0)
    assert logs["assistant_loss"] == pytest.approx(3.5)
    assert "system_loss" not in logs  # parts without tokens are not logged
    assert tracker.pop() == {}


def test_batches_without_parts_log_prompt_and_completion_only():
    tracker = LossTracker()
    ce, valid, completion, _ = micro_batch()
    tracker.add(ce, valid, completion)
    assert set(tracker.pop()) == {"prompt_loss", "completion_loss"}


def test_processes_are_summed_by_one_fixed_size_gather():
    with_parts, without = LossTracker(), LossTracker()
    with_parts.add(*micro_batch())
    ce, valid, completion, _ = micro_batch()
    without.add(ce * 3, valid, completion)
    assert with_parts.sums.shape == without.sums.shape
    other = without.sums

    def gather(local):  # what accelerator.gather returns for two processes
        return torch.cat([local, other[None]])

    logs = with_parts.pop(gather)
    assert logs["prompt_loss"] == pytest.approx((1 + 2 + 3 + 6) / 4)
    assert logs["user_loss"] == pytest.approx(2.0)  # only the first process carried parts
