"""Change against the prior study (MS-CXR-T style): accuracy and macro F1 per finding over
the change classes, their macro means over findings, and confusion matrices.

Each finding is scored on the studies whose reference change is known; a study the system did
not assess (no prior, no change head) counts as wrong there. A system that assesses no change
at all (a text baseline) gets no change metrics, rather than a score of 0 that would read as
measured.
"""

from __future__ import annotations

import numpy as np

from cxr.evaluation.classification import accuracy_and_macro_f1, confusion_matrices, macro_mean
from cxr.evaluation.metric_keys import CHANGE_ACCURACY_MACRO, CHANGE_F1_MACRO, PerSubject
from cxr.types import CHANGE_FINDINGS, Change

# Class names in class-index order (confusion matrix rows and columns).
CHANGE_CLASSES: tuple[str, ...] = tuple(change.value for change in Change)


class ChangeMetrics:
    """Change metrics of one system as a function of bootstrap study weights."""

    def __init__(self, predicted: np.ndarray, reference: np.ndarray) -> None:
        """Args:
        predicted: (studies x findings) `Change.code`, -1 not assessed.
        reference: (studies x findings) `Change.code`, -1 unknown.
        """
        self._predicted, self._reference = predicted, reference

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        predicted, reference = self._predicted, self._reference
        if (reference < 0).all() or (predicted < 0).all():
            return {}
        accuracies, f1s = {}, {}
        for column, finding in enumerate(CHANGE_FINDINGS):
            if (reference[:, column] >= 0).any():
                accuracies[finding], f1s[finding] = accuracy_and_macro_f1(
                    predicted[:, column], reference[:, column], len(Change), weights
                )
        result = {PerSubject.CHANGE_ACCURACY.key(f): v for f, v in accuracies.items()}
        result.update({PerSubject.CHANGE_F1.key(f): v for f, v in f1s.items()})
        result[CHANGE_ACCURACY_MACRO] = macro_mean(list(accuracies.values()))
        result[CHANGE_F1_MACRO] = macro_mean(list(f1s.values()))
        return result


def change_confusions(predicted: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion matrix (reference rows x predicted columns, CHANGE_CLASSES order) per finding
    with a known reference; a study not assessed counts in no column."""
    ones = np.ones((1, len(reference)))
    return {
        finding: confusion_matrices(predicted[:, c], reference[:, c], len(Change), ones)[0]
        for c, finding in enumerate(CHANGE_FINDINGS)
        if (reference[:, c] >= 0).any()
    }
