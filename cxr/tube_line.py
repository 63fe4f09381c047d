"""Tube and line status: the one rule from the 11 RANZCR CLiP values to each device's status.

`cxr generate` writes these statuses into reports.jsonl and the SR, `cxr evaluate` scores them
(`StatusAcc/<device>`), and the notebooks show them; all three call `device_statuses`.

The rule, per device (ETT, NGT, CVC, Swan Ganz): the device's labels whose value is at or above
the label's threshold are "called"; the status is the called label with the largest value (a
tie goes to the label listed first, and each device lists its most severe status first), or
"absent" when no label is called. Swan Ganz has one label, so it is "present" or "absent".
Binary reference labels (0/1) go through the same rule with the default threshold, so a study
with two positive statuses of one device (two catheters) takes the more severe one. A device
any of whose values is unknown (NaN) is `NOT_ASSESSED`. `status_codes` is the rule itself, as
indices into DEVICE_STATUSES (the model reads them as tokens); `device_statuses` names them.

Thresholds live in the model folder (`HeadsConfig.tube_line_thresholds`); `cxr export --data`
chooses them on the validation split with `choose_thresholds` (see THRESHOLD_CRITERION).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cxr.types import NOT_ASSESSED, TUBE_LINE_DEVICES, TUBE_LINE_LABELS

ABSENT = "absent"
PRESENT = "present"
DEFAULT_THRESHOLD = 0.5

# The thresholds `choose_thresholds` tries; ties go to the one nearest the default.
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(1, 20))

THRESHOLD_CRITERION = (
    "per device, one threshold for all of its labels: the value of "
    f"{THRESHOLD_GRID[0]}, {THRESHOLD_GRID[1]}, ..., {THRESHOLD_GRID[-1]} whose statuses agree "
    "most often with the device's reference statuses on the validation split (ties: the one "
    f"nearest {DEFAULT_THRESHOLD}); {DEFAULT_THRESHOLD} where the split's references of the "
    "device all have one status"
)


def label_status(label: str) -> str:
    """The status a label stands for: "ETT - Abnormal" -> "Abnormal"; a one-label device's
    label -> "present"."""
    return label.split(" - ", 1)[1] if " - " in label else PRESENT


# Every status a device can have, in label order, then "absent".
DEVICE_STATUSES: dict[str, tuple[str, ...]] = {
    device: (*(label_status(TUBE_LINE_LABELS[i]) for i in indices), ABSENT)
    for device, indices in TUBE_LINE_DEVICES.items()
}


def status_column(device: str) -> str:
    """reports.jsonl / reports.csv column holding a device's status."""
    return f"{device} status"


def status_codes(
    values: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """The rule as codes: [N, 4] indices into DEVICE_STATUSES per device (TUBE_LINE_DEVICES
    order), -1 where the device is NOT_ASSESSED (see the module docstring for the rule).

    Args:
        values: [N, 11] probabilities or 0/1 labels in TUBE_LINE_LABELS order, NaN unknown.
        thresholds: [11] per-label thresholds; None uses DEFAULT_THRESHOLD for every label.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if values.shape[1] != len(TUBE_LINE_LABELS):
        raise ValueError(f"expected {len(TUBE_LINE_LABELS)} tube/line values per row")
    limits = (
        np.full(len(TUBE_LINE_LABELS), DEFAULT_THRESHOLD)
        if thresholds is None
        else np.asarray(thresholds, dtype=float)
    )
    codes = np.empty((len(values), len(TUBE_LINE_DEVICES)), dtype=np.int64)
    for column, indices in enumerate(TUBE_LINE_DEVICES.values()):
        rows = values[:, list(indices)]
        called = rows >= limits[list(indices)]
        # Uncalled labels cannot win; argmax takes the first of equal values (most severe).
        best = np.argmax(np.where(called, rows, -np.inf), axis=1)
        absent = len(indices)  # "absent" is listed after the device's labels
        codes[:, column] = np.where(called.any(axis=1), best, absent)
        codes[np.isnan(rows).any(axis=1), column] = -1
    return codes


def device_statuses(
    values: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None
) -> dict[str, list[str]]:
    """Status names per device for each row: `status_codes` read through DEVICE_STATUSES."""
    codes = status_codes(values, thresholds)
    return {
        device: [NOT_ASSESSED if code < 0 else DEVICE_STATUSES[device][code] for code in column]
        for device, column in zip(TUBE_LINE_DEVICES, codes.T.tolist(), strict=True)
    }


def study_statuses(
    probabilities: Mapping[str, float], thresholds: Sequence[float] | np.ndarray | None = None
) -> dict[str, str]:
    """`device_statuses` of one study whose values are keyed by TUBE_LINE_LABELS; a label
    missing from `probabilities` is unknown (a model without a tube/line head gives none, and
    every device is then NOT_ASSESSED)."""
    values = np.array(
        [[probabilities.get(label, np.nan) for label in TUBE_LINE_LABELS]], dtype=float
    )
    return {device: rows[0] for device, rows in device_statuses(values, thresholds).items()}


@dataclass
class ThresholdChoice:
    """One device's threshold chosen by THRESHOLD_CRITERION, with what it was chosen on.

    Attributes:
        threshold: For every label of the device.
        studies: Validation studies whose reference status of the device is known.
        reference_statuses: The statuses those references take.
        status_accuracy: Validation status accuracy at `threshold` (None without studies).
        status_accuracy_at_default: The same at DEFAULT_THRESHOLD.
    """

    threshold: float
    studies: int
    reference_statuses: list[str]
    status_accuracy: float | None
    status_accuracy_at_default: float | None


def choose_device_thresholds(
    probabilities: np.ndarray, labels: np.ndarray
) -> dict[str, ThresholdChoice]:
    """Each device's threshold by THRESHOLD_CRITERION: the status is what the thresholds
    decide, so they are chosen for the status accuracy `cxr evaluate` reports, not per label.

    Args:
        probabilities: [N, 11] predicted probabilities on the validation split.
        labels: [N, 11] 0/1 references, NaN unknown (a device with an unknown label in a row
            is left out for that row).
    """
    references = device_statuses(labels)
    choices = {}
    for device in TUBE_LINE_DEVICES:
        truth = np.array(references[device], dtype=object)
        known = truth != NOT_ASSESSED
        choices[device] = _choose(probabilities[known], truth[known], device)
    return choices


def _choose(probabilities: np.ndarray, truth: np.ndarray, device: str) -> ThresholdChoice:
    """One device's choice over the rows whose reference status `truth` is known."""

    def accuracy(limit: float) -> float | None:
        return status_accuracy(probabilities, truth, device, limit) if len(truth) else None

    chosen = DEFAULT_THRESHOLD
    if len(set(truth)) >= 2:
        tried = {limit: accuracy(limit) for limit in THRESHOLD_GRID}
        best = max(value or 0.0 for value in tried.values())
        chosen = min(
            (limit for limit, value in tried.items() if value == best),
            key=lambda limit: abs(limit - DEFAULT_THRESHOLD),
        )
    return ThresholdChoice(
        chosen, len(truth), sorted(set(truth)), accuracy(chosen), accuracy(DEFAULT_THRESHOLD)
    )


def label_thresholds(choices: Mapping[str, ThresholdChoice]) -> list[float]:
    """The per-label thresholds (TUBE_LINE_LABELS order) of each device's choice."""
    thresholds = np.full(len(TUBE_LINE_LABELS), DEFAULT_THRESHOLD)
    for device, choice in choices.items():
        thresholds[list(TUBE_LINE_DEVICES[device])] = choice.threshold
    return thresholds.tolist()


def choose_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per-label thresholds by THRESHOLD_CRITERION (see `choose_device_thresholds`)."""
    return label_thresholds(choose_device_thresholds(probabilities, labels))


def status_accuracy(
    probabilities: np.ndarray, truth: np.ndarray, device: str, threshold: float
) -> float:
    """Share of rows whose status of `device`, at one threshold for all of its labels,
    equals `truth` (the rows' reference statuses)."""
    called = device_statuses(probabilities, np.full(len(TUBE_LINE_LABELS), threshold))[device]
    return float(np.mean(np.array(called, dtype=object) == truth))
