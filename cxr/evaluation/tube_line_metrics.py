"""Tube and line metrics: ROC AUC per RANZCR CLiP label and status accuracy per device.

AUC uses the predicted probabilities against the 0/1 reference labels, per label with both
classes among the studies where both sides are known, and its macro mean. Status accuracy
compares each device's status (see cxr.evaluation.studies for where each side's statuses
come from) over the studies whose reference status is known; a study the system did not
assess counts as wrong. A system with no tube/line output at all (a text baseline) gets no
tube/line metrics, rather than scores that would read as measured.
"""

from __future__ import annotations

import numpy as np

from cxr.evaluation.classification import accuracy_and_macro_f1, macro_mean, roc_auc
from cxr.evaluation.metric_keys import AUC_MACRO, PerSubject
from cxr.evaluation.studies import StudyTable
from cxr.tube_line import DEVICE_STATUSES
from cxr.types import TUBE_LINE_DEVICES, TUBE_LINE_LABELS


class TubeLineMetrics:
    """Tube/line metrics of one system as a function of bootstrap study weights."""

    def __init__(self, predicted: StudyTable, reference: StudyTable) -> None:
        self._predicted, self._reference = predicted, reference

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        weights = np.atleast_2d(weights)
        return {**self._aucs(weights), **self._status_accuracies(weights)}

    def _aucs(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        predicted, reference = self._predicted.tube_line, self._reference.tube_line
        if np.isnan(predicted).all() or np.isnan(reference).all():
            return {}
        result: dict[str, np.ndarray] = {}
        for column, label in enumerate(TUBE_LINE_LABELS):
            known = ~np.isnan(reference[:, column]) & ~np.isnan(predicted[:, column])
            truth = reference[known, column] > 0.5
            if truth.all() or not truth.any():
                continue
            result[PerSubject.TUBE_LINE_AUC.key(label)] = roc_auc(
                predicted[known, column], truth, weights[:, known]
            )
        if result:
            result[AUC_MACRO] = macro_mean(list(result.values()))
        return result

    def _status_accuracies(self, weights: np.ndarray) -> dict[str, np.ndarray]:
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
