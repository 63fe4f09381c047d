"""Change against the prior study (MS-CXR-T style): macro accuracy, accuracy and macro F1 per
finding over the change classes, their means over findings, and confusion matrices.

The headline is MS-CXR-T's macro accuracy (`CHANGE_MACRO_ACCURACY`): per finding, the balanced
accuracy over improving / stable / worsening (the mean of the per-class recalls over the
classes that finding's references hold), then the mean over the findings with any known
reference. It does not reward predicting the majority class: a constant predictor scores
1/k on a finding whose references hold k classes (1/3 with all three). Plain accuracy and
macro F1 stay beside it.

Each finding is scored on the studies whose reference change is known (MS-CXR-T leaves the
change blank where the finding is absent from both studies of the pair); a study the system
did not assess (no prior, no change head) counts as wrong there. A system that assesses no
change at all (a text baseline) gets no change metrics, rather than a score of 0 that would
read as measured.
"""

from __future__ import annotations

import numpy as np

from cxr.evaluation.classification import (
    accuracy_and_macro_f1,
    balanced_accuracy,
    confusion_matrices,
    macro_mean,
)
from cxr.evaluation.metric_keys import (
    CHANGE_ACCURACY_MACRO,
    CHANGE_F1_MACRO,
    CHANGE_MACRO_ACCURACY,
    PerSubject,
)
from cxr.types import CHANGE_FINDINGS, CHANGE_UNKNOWN, Change

# Class names in class-index order (confusion matrix rows and columns).
CHANGE_CLASSES: tuple[str, ...] = tuple(change.value for change in Change)


def _finding_macro_accuracies(
    predicted: np.ndarray, reference: np.ndarray, weights: np.ndarray
) -> dict[int, np.ndarray]:
    """{column: (resamples,) balanced accuracy} of every column with a known reference."""
    return {
        column: balanced_accuracy(predicted[:, column], reference[:, column], len(Change), weights)
        for column in range(reference.shape[1])
        if (reference[:, column] != CHANGE_UNKNOWN).any()
    }


def _checked_codes(reference: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference, predicted = np.asarray(reference, int), np.asarray(predicted, int)
    if reference.ndim == 1:
        reference, predicted = reference[:, None], predicted[:, None]
    if reference.shape != predicted.shape or reference.ndim != 2:
        raise ValueError(
            f"reference {reference.shape} and predicted {predicted.shape} must be aligned "
            "(studies,) or (studies x findings) arrays"
        )
    return reference, predicted


def change_macro_accuracies(*, reference: np.ndarray, predicted: np.ndarray) -> list[float]:
    """Per column (finding), the MS-CXR-T balanced accuracy over the change classes; NaN for a
    column without any known reference. See `change_macro_accuracy`."""
    reference, predicted = _checked_codes(reference, predicted)
    ones = np.ones((1, len(reference)))
    found = _finding_macro_accuracies(predicted, reference, ones)
    return [float(found[c][0]) if c in found else float("nan") for c in range(reference.shape[1])]


def change_macro_accuracy(*, reference: np.ndarray, predicted: np.ndarray) -> float:
    """MS-CXR-T change macro accuracy of aligned change codes, as `cxr evaluate` computes it.

    Per column (finding): the mean of the per-class recalls over the classes present in that
    column's known references; then the mean over the columns with any known reference (NaN
    when there is none). A predicted -1 against a known reference counts as wrong.

    Args:
        reference: (studies,) or (studies x findings) `Change.code`, -1 (CHANGE_UNKNOWN)
            where unknown; e.g. `cxr.evaluation.studies.change_codes(labels)`.
        predicted: the same shape, `Change.code`, -1 where not assessed; e.g. the training
            set's majority class of each finding repeated for every study (a baseline).
    """
    per_finding = change_macro_accuracies(reference=reference, predicted=predicted)
    known = [value for value in per_finding if not np.isnan(value)]
    return float(np.mean(known)) if known else float("nan")


class ChangeMetrics:
    """Change metrics of one system as a function of bootstrap study weights."""

    def __init__(self, predicted: np.ndarray, reference: np.ndarray) -> None:
        """Args:
        predicted: (studies x findings) `Change.code`, -1 not assessed.
        reference: (studies x findings) `Change.code`, -1 unknown.
        """
        self._predicted, self._reference = predicted, reference

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """The macro accuracy, accuracy and F1 means over findings, then the same per finding."""
        predicted, reference = self._predicted, self._reference
        if (reference < 0).all() or (predicted < 0).all():
            return {}
        weights = np.atleast_2d(weights)
        macro_accuracies = {
            CHANGE_FINDINGS[c]: v
            for c, v in _finding_macro_accuracies(predicted, reference, weights).items()
        }
        accuracies, f1s = {}, {}
        for finding in macro_accuracies:
            column = CHANGE_FINDINGS.index(finding)
            accuracies[finding], f1s[finding] = accuracy_and_macro_f1(
                predicted[:, column], reference[:, column], len(Change), weights
            )
        result = {
            CHANGE_MACRO_ACCURACY: macro_mean(list(macro_accuracies.values())),
            CHANGE_ACCURACY_MACRO: macro_mean(list(accuracies.values())),
            CHANGE_F1_MACRO: macro_mean(list(f1s.values())),
        }
        for family, values in (
            (PerSubject.CHANGE_MACRO_ACCURACY, macro_accuracies),
            (PerSubject.CHANGE_ACCURACY, accuracies),
            (PerSubject.CHANGE_F1, f1s),
        ):
            result.update({family.key(f): v for f, v in values.items()})
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
