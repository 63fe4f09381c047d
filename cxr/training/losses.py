"""Label losses, masked where the label is unknown.

All return a zero that is still connected to the logits when nothing in the batch is
known, so a step over label-free studies has a gradient (of zeros) and no NaN.

Tube/line loss. RANZCR CLiP gives 11 binary labels; the statuses of one device (ETT,
NGT, CVC: see TUBE_LINE_DEVICES) exclude each other when that device is present. The loss
is the sum of two parts:

* binary cross-entropy on every known label (mean over known labels), which keeps
  per-label probabilities calibrated for AUC and thresholds, and
* for each multi-status device whose statuses are all known and exactly one is positive,
  a cross-entropy over that device's status logits (mean over such device instances),
  which teaches the statuses to compete. Rows where the device is absent (no status
  positive) or where several statuses are positive (two catheters of one kind, which
  RANZCR allows) add nothing to this part; BCE still covers them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cxr.types import CHANGE_FINDINGS, CHANGE_UNKNOWN, TUBE_LINE_DEVICES, Change


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the known targets (0/1; NaN unknown)."""
    logits = logits.float()
    known = ~torch.isnan(targets)
    bce = F.binary_cross_entropy_with_logits(
        logits, torch.nan_to_num(targets, nan=0.0), reduction="none"
    )
    return (bce * known).sum() / known.sum().clamp(min=1)


def observation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Findings-head loss: `masked_bce` over the 14 observations ([B, 14], NaN unknown)."""
    return masked_bce(logits, targets)


def tube_line_loss(
    logits: torch.Tensor, targets: torch.Tensor, exclusive_weight: float = 1.0
) -> torch.Tensor:
    """Masked BCE plus per-device status cross-entropy (see the module docstring).

    Args:
        logits: [B, 11] in TUBE_LINE_LABELS order.
        targets: [B, 11] with 0/1, NaN where unknown.
        exclusive_weight: Weight of the per-device status cross-entropy.
    """
    logits = logits.float()
    known = ~torch.isnan(targets)
    return masked_bce(logits, targets) + exclusive_weight * _device_status_loss(
        logits, targets, known
    )


def _device_status_loss(
    logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor
) -> torch.Tensor:
    total = logits.sum() * 0.0
    count = 0
    positive = torch.nan_to_num(targets, nan=0.0) > 0.5
    for indices in TUBE_LINE_DEVICES.values():
        if len(indices) < 2:
            continue
        columns = list(indices)
        single_status = known[:, columns].all(dim=1) & (positive[:, columns].sum(dim=1) == 1)
        if not bool(single_status.any()):
            continue
        status = positive[single_status][:, columns].float().argmax(dim=1)
        total = total + F.cross_entropy(logits[single_status][:, columns], status, reduction="sum")
        count += int(single_status.sum())
    return total / max(count, 1)


def change_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    available: torch.Tensor,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy over improving/stable/worsening, on the labels `known_change` keeps.

    Args:
        logits: [B, 5, 3] (CHANGE_FINDINGS x Change).
        targets: [B, 5] Change indices, -1 where unknown.
        available: [B] bool, the study has both a current frontal and a prior image
            (`ReportModelOutput.change_available`).
        class_weights: [5, 3] weight of each (finding, class) label (`balanced_change_weights`);
            the loss is then the weighted mean. None weighs every label 1.
    """
    targets = known_change(targets, available)
    known = targets != CHANGE_UNKNOWN
    flat_logits = logits.float().flatten(0, 1)
    per_label = F.cross_entropy(flat_logits, targets.clamp(min=0).flatten(), reduction="none")
    weights = known.float()
    if class_weights is not None:
        finding = torch.arange(targets.shape[1], device=targets.device).expand_as(targets)
        weights = weights * class_weights.to(logits.device)[finding, targets.clamp(min=0)]
    weights = weights.flatten()
    return (per_label * weights).sum() / weights.sum().clamp(min=1e-8)


def balanced_change_weights(targets: torch.Tensor, max_weight: float = 10.0) -> torch.Tensor:
    """Class-balanced weights [5, 3] from training change labels [N, 5] (-1 unknown): per
    finding, known / (classes x count of the class), so each class of a finding weighs as
    much in the loss as in MS-CXR-T's macro accuracy (the mean of per-class recalls). A
    class never seen gets weight 0; weights are capped at `max_weight`."""
    weights = torch.zeros(len(CHANGE_FINDINGS), len(Change))
    for finding in range(len(CHANGE_FINDINGS)):
        column = targets[:, finding]
        counts = torch.bincount(column[column >= 0].long(), minlength=len(Change)).float()
        seen = counts > 0
        if not bool(seen.any()):
            continue
        balanced = counts.sum() / (int(seen.sum()) * counts.clamp(min=1))
        weights[finding] = torch.where(seen, balanced.clamp(max=max_weight), 0.0)
    return weights


def known_change(targets: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Change targets with the rows that have no prior image set to unknown: without a prior
    the change head sees only the learned "missing" token, so such a label cannot be learned
    (and inference does not assess change there)."""
    return targets.long().masked_fill(~available.bool()[:, None], CHANGE_UNKNOWN)
