"""Tube and line metrics: ROC AUC per RANZCR CLiP label and status accuracy per device.

AUC uses the predicted probabilities against the 0/1 reference labels, per label with both
classes among the studies where both sides are known, and its macro mean. Status accuracy
compares each device's status (see cxr.evaluation.studies for where each side's statuses
come from) over the studies whose reference status is known; a study the system did not
assess counts as wrong. A system with no tube/line output at all (a text baseline) gets no
tube/line metrics, rather than scores that would read as measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxr.evaluation.classification import accuracy_and_macro_f1, column_aucs, macro_mean
from cxr.evaluation.metric_keys import AUC_MACRO, PerSubject
from cxr.evaluation.studies import StudyTable
from cxr.tube_line import DEVICE_STATUSES
from cxr.types import TUBE_LINE_DEVICES, TUBE_LINE_LABELS


def label_aucs(
    scores: np.ndarray,
    reference: np.ndarray,
    labels: Sequence[str],
    family: PerSubject,
    macro_key: str,
    weights: np.ndarray,
) -> dict[str, np.ndarray]:
    """The macro mean under `macro_key`, then the AUC per label keyed `family.key(label)`
    (`classification.column_aucs`: the labels with both reference classes among the studies
    where both sides are known); nothing when either side knows no value at all.

    Args:
        scores: (studies x labels) probabilities, NaN where not predicted.
        reference: (studies x labels) 0/1 labels, NaN where unknown.
        labels: the label of each column.
        family: the per-label metric family.
        macro_key: the name of the macro mean.
        weights: (resamples x studies) multiplicities.
    """
    if np.isnan(scores).all() or np.isnan(reference).all():
        return {}
    aucs = column_aucs(scores, reference, weights)
    if not aucs:
        return {}
    per_label = {family.key(labels[column]): values for column, values in aucs.items()}
    return {macro_key: macro_mean(list(per_label.values())), **per_label}


class TubeLineMetrics:
    """Tube/line metrics of one system as a function of bootstrap study weights."""

    def __init__(self, predicted: StudyTable, reference: StudyTable) -> None:
        self._predicted, self._reference = predicted, reference

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.aucs(weights), **self.status_accuracies(weights)}

    def aucs(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """AUC-macro, then the AUC per label with both reference classes (module docstring)."""
        return label_aucs(
            self._predicted.tube_line,
            self._reference.tube_line,
            TUBE_LINE_LABELS,
            PerSubject.TUBE_LINE_AUC,
            AUC_MACRO,
            weights,
        )

    def status_accuracies(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Status accuracy per device with a known reference status (module docstring)."""
        weights = np.atleast_2d(weights)
        predicted, reference = self._predicted.statuses, self._reference.statuses
        if (predicted < 0).all():
            return {}
        result: dict[str, np.ndarray] = {}
        for column, device in enumerate(TUBE_LINE_DEVICES):
            if (reference[:, column] >= 0).any():
                accuracy, _ = accuracy_and_macro_f1(
                    predicted[:, column],
                    reference[:, column],
                    len(DEVICE_STATUSES[device]),
                    weights,
                )
                result[PerSubject.STATUS_ACCURACY.key(device)] = accuracy
        return result
