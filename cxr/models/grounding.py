"""Grounding: the label heads' calls as tokens the decoder reads before it writes the report.

A grounded decoder (`DecoderConfig.grounded`) sees, after the visual tokens, one token per
CheXpert observation (present or absent), per device (its status by the rule of
`cxr.tube_line`) and per MS-CXR-T finding (improving, stable, worsening, or not assessed
without a prior): 14 + 4 + 5 `CallTokens`. The report then states what the heads see, as
diagnosis-driven prompting does (PromptMRG), and a change of a head's call changes the text.

What inference sees, training sees: at inference the calls are the heads' own
(`predicted_calls`); in training each call is the reference label where one is known
(teacher forcing) and the head's own call where it is not, and a known reference is replaced
by the head's call with probability `replace_probability`, which `ReportModule` raises over
training (scheduled sampling), so the decoder learns to follow the calls it will be given,
right or wrong. The calls are discrete, so the report loss does not train the heads through
them; the heads learn from their own losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cxr.tube_line import DEVICE_STATUSES, status_codes
from cxr.types import CHANGE_FINDINGS, CHANGE_UNKNOWN, OBSERVATION_THRESHOLD, OBSERVATIONS, Change

# The change call of a study without a prior image.
CHANGE_NOT_ASSESSED = len(Change)
_UNKNOWN = -1
_DEVICE_OFFSETS = tuple(
    int(offset) for offset in np.cumsum([0, *(len(s) for s in DEVICE_STATUSES.values())])[:-1]
)
CALL_TOKENS = len(OBSERVATIONS) + len(DEVICE_STATUSES) + len(CHANGE_FINDINGS)


@dataclass
class HeadLogits:
    """The label heads' outputs for a batch.

    Attributes:
        tube_line: [B, 11] in TUBE_LINE_LABELS order.
        observations: [B, 14] in OBSERVATIONS order.
        change: [B, 5, 3]: CHANGE_FINDINGS x Change.
        change_available: [B] bool, the study has both a current frontal and a prior.
    """

    tube_line: torch.Tensor
    observations: torch.Tensor
    change: torch.Tensor
    change_available: torch.Tensor


@dataclass
class Calls:
    """Discrete calls per study, -1 where unknown (references only).

    Attributes:
        observations: [B, 14]: 1 present, 0 absent.
        devices: [B, 4]: index into DEVICE_STATUSES of each device (TUBE_LINE_DEVICES order).
        changes: [B, 5]: Change code, or CHANGE_NOT_ASSESSED without a prior.
    """

    observations: torch.Tensor
    devices: torch.Tensor
    changes: torch.Tensor


def predicted_calls(heads: HeadLogits, thresholds: torch.Tensor | np.ndarray) -> Calls:
    """The heads' own calls: observation at OBSERVATION_THRESHOLD, device status by
    `cxr.tube_line.status_codes` at `thresholds`, most probable change."""
    device = heads.observations.device
    probabilities = heads.tube_line.detach().float().sigmoid().cpu().numpy()
    devices = torch.from_numpy(status_codes(probabilities, np.asarray(thresholds)))
    changes = heads.change.detach().argmax(dim=-1)
    changes = changes.masked_fill(~heads.change_available[:, None], CHANGE_NOT_ASSESSED)
    return Calls(
        observations=(heads.observations.detach().sigmoid() >= OBSERVATION_THRESHOLD).long(),
        devices=devices.to(device),
        changes=changes,
    )


def batch_observations(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The batch's observation labels [B, 14] (all unknown in batches made without them)."""
    observations = batch.get("observations")
    if observations is None:
        rows = len(batch["tube_line"])
        return batch["tube_line"].new_full((rows, len(OBSERVATIONS)), float("nan"))
    return observations


def reference_calls(batch: dict[str, torch.Tensor], available: torch.Tensor) -> Calls:
    """The reference labels of a batch as calls, -1 where a label is unknown."""
    tube_line = batch["tube_line"]
    observations = batch_observations(batch).to(tube_line.device)
    known = ~torch.isnan(observations)
    devices = torch.from_numpy(status_codes(tube_line.float().cpu().numpy()))
    changes = batch["change"].long().masked_fill(~available[:, None], CHANGE_NOT_ASSESSED)
    return Calls(
        observations=torch.where(known, (observations >= 0.5).long(), _UNKNOWN),
        devices=devices.to(tube_line.device),
        changes=changes.masked_fill(changes == CHANGE_UNKNOWN, _UNKNOWN),
    )


def mixed_calls(
    reference: Calls,
    predicted: Calls,
    replace_probability: float,
    generator: torch.Generator | None = None,
) -> Calls:
    """Each known reference call, replaced by the predicted one with `replace_probability`;
    the predicted call where the reference is unknown."""

    def mix(ref: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        draw = torch.rand(ref.shape, generator=generator).to(ref.device)
        keep = (ref != _UNKNOWN) & (draw >= replace_probability)
        return torch.where(keep, ref, pred)

    return Calls(
        observations=mix(reference.observations, predicted.observations),
        devices=mix(reference.devices, predicted.devices),
        changes=mix(reference.changes, predicted.changes),
    )


class CallTokens(nn.Module):
    """Calls -> CALL_TOKENS decoder-width tokens [B, 23, width]: one learned embedding per
    (observation, present/absent), (device, status) and (finding, change or not assessed)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        statuses = sum(len(s) for s in DEVICE_STATUSES.values())
        self.observation = nn.Embedding(len(OBSERVATIONS) * 2, width)
        self.device = nn.Embedding(statuses, width)
        self.change = nn.Embedding(len(CHANGE_FINDINGS) * (len(Change) + 1), width)
        for embedding in (self.observation, self.device, self.change):
            nn.init.normal_(embedding.weight, std=0.02)

    def forward(self, calls: Calls) -> torch.Tensor:
        device = self.observation.weight.device
        observation_index = torch.arange(len(OBSERVATIONS), device=device) * 2
        device_offset = torch.tensor(_DEVICE_OFFSETS, device=device)
        change_index = torch.arange(len(CHANGE_FINDINGS), device=device) * (len(Change) + 1)
        return torch.cat(
            [
                self.observation(observation_index + calls.observations.to(device)),
                self.device(device_offset + calls.devices.to(device)),
                self.change(change_index + calls.changes.to(device)),
            ],
            dim=1,
        )
