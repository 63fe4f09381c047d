"""Label losses, masked where the label is unknown.

Both return a zero that is still connected to the logits when nothing in the batch is
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

from cxr.types import CHANGE_UNKNOWN, TUBE_LINE_DEVICES


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
    bce = F.binary_cross_entropy_with_logits(
        logits, torch.nan_to_num(targets, nan=0.0), reduction="none"
    )
    bce_loss = (bce * known).sum() / known.sum().clamp(min=1)
    return bce_loss + exclusive_weight * _device_status_loss(logits, targets, known)


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
    logits: torch.Tensor, targets: torch.Tensor, available: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy over improving/stable/worsening, on the labels `known_change` keeps.

    Args:
        logits: [B, 5, 3] (CHANGE_FINDINGS x Change).
        targets: [B, 5] Change indices, -1 where unknown.
        available: [B] bool, the study has both a current frontal and a prior image
            (`ReportModelOutput.change_available`).
    """
    targets = known_change(targets, available)
    known = targets != CHANGE_UNKNOWN
    flat_logits = logits.float().flatten(0, 1)
    per_label = F.cross_entropy(flat_logits, targets.clamp(min=0).flatten(), reduction="none")
    return (per_label * known.flatten()).sum() / known.sum().clamp(min=1)


def known_change(targets: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Change targets with the rows that have no prior image set to unknown: without a prior
    the change head sees only the learned "missing" token, so such a label cannot be learned
    (and inference does not assess change there)."""
    return targets.long().masked_fill(~available.bool()[:, None], CHANGE_UNKNOWN)
