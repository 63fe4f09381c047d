"""Label losses: masked where unknown, zero with a graph when nothing is known."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cxr.training.losses import (
    balanced_change_weights,
    change_loss,
    observation_loss,
    tube_line_loss,
)
from cxr.types import (
    CHANGE_FINDINGS,
    CHANGE_UNKNOWN,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
)

NAN = float("nan")
ETT = list(TUBE_LINE_DEVICES["ETT"])
NGT = list(TUBE_LINE_DEVICES["NGT"])


def known_targets(rows: int = 2) -> torch.Tensor:
    return torch.zeros(rows, len(TUBE_LINE_LABELS))


def test_tube_line_loss_is_bce_plus_status_cross_entropy() -> None:
    logits = torch.randn(1, 11)
    targets = known_targets(1)
    targets[0, ETT[2]] = 1.0  # ETT - Normal; the other devices absent

    expected = F.binary_cross_entropy_with_logits(logits, targets) + F.cross_entropy(
        logits[:, ETT], torch.tensor([2])
    )

    assert torch.allclose(tube_line_loss(logits, targets), expected)


def test_unknown_tube_line_labels_get_no_gradient() -> None:
    logits = torch.randn(3, 11, requires_grad=True)
    targets = known_targets(3)
    targets[:, NGT[0]] = 1.0
    targets[1, :] = NAN
    targets[2, ETT[1]] = NAN

    tube_line_loss(logits, targets).backward()

    assert logits.grad is not None
    assert (logits.grad[1] == 0).all()
    assert logits.grad[2, ETT[1]] == 0
    assert (logits.grad[0] != 0).all()


def test_unknown_tube_line_labels_are_left_out_of_the_mean() -> None:
    logits = torch.randn(2, 11)
    targets = known_targets()
    targets[0, ETT[0]] = 1.0  # ETT - Abnormal in row 0; row 1 has no ETT
    targets[:, NGT] = NAN
    known = [i for i in range(11) if i not in NGT]

    # BCE averages over the 2 x 7 known labels only; the one single-status ETT adds its CE.
    expected = F.binary_cross_entropy_with_logits(
        logits[:, known], targets[:, known]
    ) + F.cross_entropy(logits[:1, ETT], torch.tensor([0]))

    assert torch.allclose(tube_line_loss(logits, targets), expected)


def test_statuses_compete_only_for_a_single_present_device() -> None:
    logits = torch.zeros(3, 11, requires_grad=True)
    targets = known_targets(3)
    targets[0, ETT[0]] = 1.0  # one ETT status: cross-entropy applies
    targets[1, NGT[0]] = targets[1, NGT[3]] = 1.0  # two NGT statuses: BCE only
    targets[2, :] = 0.0  # no device: BCE only

    tube_line_loss(logits, targets, exclusive_weight=1.0).backward()
    with_ce = logits.grad.clone() if logits.grad is not None else None
    logits.grad = None
    tube_line_loss(logits, targets, exclusive_weight=0.0).backward()

    assert with_ce is not None and logits.grad is not None
    difference = (with_ce - logits.grad).abs() > 0
    assert difference[0, ETT].all()
    assert not difference[0, [i for i in range(11) if i not in ETT]].any()
    assert not difference[1:].any()


def test_nothing_known_gives_zero_with_a_graph() -> None:
    logits = torch.randn(2, 11, requires_grad=True)
    change_logits = torch.randn(2, 5, 3, requires_grad=True)

    tube_line = tube_line_loss(logits, torch.full((2, 11), NAN))
    change = change_loss(
        change_logits, torch.full((2, 5), CHANGE_UNKNOWN), torch.ones(2, dtype=torch.bool)
    )
    (tube_line + change).backward()

    assert tube_line.item() == 0.0 and change.item() == 0.0
    assert logits.grad is not None and (logits.grad == 0).all()
    assert change_logits.grad is not None and (change_logits.grad == 0).all()


def test_change_loss_is_cross_entropy_over_known_labels() -> None:
    logits = torch.randn(2, 5, 3)
    targets = torch.tensor([[0, 1, 2, -1, -1], [2, -1, -1, -1, 1]])
    known = targets >= 0

    expected = F.cross_entropy(logits[known], targets[known])

    assert torch.allclose(change_loss(logits, targets, torch.ones(2, dtype=torch.bool)), expected)


def test_unknown_change_labels_and_studies_without_prior_get_no_gradient() -> None:
    logits = torch.randn(3, 5, 3, requires_grad=True)
    targets = torch.tensor([[0, 1, 2, 1, 0], [2, 2, 2, 2, 2], [1, -1, 1, 1, 1]])
    available = torch.tensor([True, False, True])

    loss = change_loss(logits, targets, available)
    loss.backward()

    assert math.isfinite(loss.item())
    assert logits.grad is not None
    assert (logits.grad[1] == 0).all()
    assert (logits.grad[2, 1] == 0).all()
    assert (logits.grad[0] != 0).all()


def test_balanced_change_weights_equalise_each_findings_classes() -> None:
    improving, stable = Change.IMPROVING.code, Change.STABLE.code
    targets = torch.full((4, len(CHANGE_FINDINGS)), CHANGE_UNKNOWN)
    targets[:, 0] = torch.tensor([improving, stable, stable, stable])

    weights = balanced_change_weights(targets)

    # Finding 0: 4 known labels over the 2 classes seen: 4 / (2 x 1) and 4 / (2 x 3).
    assert weights[0].tolist() == pytest.approx([2.0, 2 / 3, 0.0])
    assert weights[1:].eq(0).all()  # no label known
    # Weighted, each seen class carries half of the finding's loss.
    assert float(weights[0, improving] * 1) == pytest.approx(float(weights[0, stable] * 3))


def test_weighted_change_loss_is_the_weighted_mean_of_the_label_losses() -> None:
    logits = torch.randn(2, len(CHANGE_FINDINGS), 3)
    targets = torch.full((2, len(CHANGE_FINDINGS)), CHANGE_UNKNOWN)
    targets[0, 0], targets[1, 0] = 0, 1
    weights = torch.ones(len(CHANGE_FINDINGS), 3)
    weights[0, 0], weights[0, 1] = 3.0, 1.0

    loss = change_loss(logits, targets, torch.ones(2, dtype=torch.bool), weights)

    first = F.cross_entropy(logits[0, 0][None], torch.tensor([0]))
    second = F.cross_entropy(logits[1, 0][None], torch.tensor([1]))
    assert float(loss) == pytest.approx(float((3 * first + second) / 4), rel=1e-5)


def test_observation_loss_ignores_unknown_observations() -> None:
    logits = torch.zeros(2, len(OBSERVATIONS), requires_grad=True)
    targets = torch.full((2, len(OBSERVATIONS)), float("nan"))
    targets[0, 2] = 1.0

    loss = observation_loss(logits, targets)
    loss.backward()

    assert float(loss) == pytest.approx(math.log(2))
    assert logits.grad is not None
    assert logits.grad.nonzero().tolist() == [[0, 2]]
