"""Classification metrics over weighted studies, vectorised across bootstrap resamples.

Every function takes `weights`, a (resamples x studies) array of study multiplicities; a row
of ones gives the plain metric. Conventions follow scikit-learn's: precision, recall and F1 are
0 where their denominator is 0 (`zero_division=0`); a multi-class macro average runs over the
classes present in the references or the predictions; ROC AUC counts ties as one half and is
NaN when a resample lacks one of the two classes. Balanced accuracy (`balanced_accuracy`) is
scikit-learn's `balanced_accuracy_score`: the mean recall over the classes the references hold.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def binary_counts(
    predicted: np.ndarray, reference: np.ndarray, valid: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted true positives, false positives and false negatives per class.

    Args:
        predicted: (studies x classes) booleans.
        reference: (studies x classes) booleans.
        valid: (studies x classes) booleans; False excludes a study from that class.
        weights: (resamples x studies) multiplicities.

    Returns:
        tp, fp, fn, each (resamples x classes).
    """
    predicted, reference, valid = (np.asarray(a, bool) for a in (predicted, reference, valid))
    weights = np.atleast_2d(weights)
    tp = weights @ (predicted & reference & valid).astype(float)
    fp = weights @ (predicted & ~reference & valid).astype(float)
    fn = weights @ (~predicted & reference & valid).astype(float)
    return tp, fp, fn


def precision_recall_f1(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = _safe_ratio(tp, tp + fp)
    recall = _safe_ratio(tp, tp + fn)
    f1 = _safe_ratio(2 * tp, 2 * tp + fp + fn)
    return precision, recall, f1


def micro_macro(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Micro (pooled counts) and macro (mean over classes) precision, recall and F1.

    Args:
        tp: (resamples x classes) counts; fp and fn alike.

    Returns:
        {"P-micro", "R-micro", "F1-micro", "P-macro", "R-macro", "F1-macro"}, each (resamples,).
    """
    micro = precision_recall_f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    per_class = precision_recall_f1(tp, fp, fn)
    result = {}
    for name, micro_value, class_values in zip(("P", "R", "F1"), micro, per_class, strict=True):
        result[f"{name}-micro"] = micro_value
        result[f"{name}-macro"] = class_values.mean(axis=1)
    return result


def roc_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC per resample (Mann-Whitney: P(score_pos > score_neg) + ties / 2).

    Args:
        scores: (studies,) predicted probabilities.
        labels: (studies,) booleans, the reference.
        weights: (resamples x studies) multiplicities.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    weights = np.atleast_2d(weights)
    tie_groups, group = np.unique(scores, return_inverse=True)
    members = np.zeros((len(scores), len(tie_groups)))
    members[np.arange(len(scores)), group] = 1.0
    positives = (weights * labels) @ members  # resamples x groups, ascending score
    negatives = (weights * ~labels) @ members
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    wins = (positives * (negatives_below + 0.5 * negatives)).sum(axis=1)
    pairs = positives.sum(axis=1) * negatives.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1), np.nan)


def column_aucs(
    scores: np.ndarray, reference: np.ndarray, weights: np.ndarray
) -> dict[int, np.ndarray]:
    """ROC AUC per column of (studies x labels) scores against 0/1 reference labels.

    A column is scored on the studies where both its score and its reference are known (not
    NaN), and only when those references hold both classes (a reference above 0.5 is
    positive); other columns have no entry, rather than an AUC that could not be measured.

    Args:
        scores: (studies x labels) probabilities, NaN where not predicted.
        reference: (studies x labels) 0/1 labels, NaN where unknown.
        weights: (resamples x studies) multiplicities.

    Returns:
        {column index: (resamples,) AUC}, in column order.
    """
    weights = np.atleast_2d(weights)
    result: dict[int, np.ndarray] = {}
    for column in range(reference.shape[1]):
        known = ~np.isnan(reference[:, column]) & ~np.isnan(scores[:, column])
        truth = reference[known, column] > 0.5
        if truth.all() or not truth.any():
            continue
        result[column] = roc_auc(scores[known, column], truth, weights[:, known])
    return result


def confusion_matrices(
    predicted: np.ndarray, reference: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """Weighted confusion matrices, (resamples x reference class x predicted class).

    Args:
        predicted: (studies,) class indices; -1 (not predicted) counts in no predicted column,
            so it is an error against any reference.
        reference: (studies,) class indices; studies with -1 are left out.
        n_classes: number of classes.
        weights: (resamples x studies) multiplicities.
    """
    predicted, reference = np.asarray(predicted, int), np.asarray(reference, int)
    weights = np.atleast_2d(weights)
    cells = np.zeros((len(reference), n_classes * n_classes))
    both = (reference >= 0) & (predicted >= 0)
    cells[np.flatnonzero(both), reference[both] * n_classes + predicted[both]] = 1.0
    matrices = (weights @ cells).reshape(len(weights), n_classes, n_classes)
    return matrices


def accuracy_and_macro_f1(
    predicted: np.ndarray, reference: np.ndarray, n_classes: int, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro F1 over the classes present, on studies with a known reference.

    A study whose prediction is missing (-1) while its reference is known counts as wrong.
    """
    predicted, reference = np.asarray(predicted, int), np.asarray(reference, int)
    weights = np.atleast_2d(weights)
    known = weights @ (reference >= 0).astype(float)
    matrices = confusion_matrices(predicted, reference, n_classes, weights)
    correct = np.trace(matrices, axis1=1, axis2=2)
    tp = np.diagonal(matrices, axis1=1, axis2=2)
    support = weights @ _one_hot(reference, n_classes)  # all known-reference studies
    predicted_count = matrices.sum(axis=1)
    fn, fp = support - tp, predicted_count - tp
    f1 = _safe_ratio(2 * tp, 2 * tp + fp + fn)
    present = (support + predicted_count) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        macro_f1 = np.where(
            present.any(axis=1), (f1 * present).sum(axis=1) / present.sum(axis=1), np.nan
        )
        accuracy = np.where(known > 0, correct / np.where(known > 0, known, 1), np.nan)
    return accuracy, macro_f1


def balanced_accuracy(
    predicted: np.ndarray, reference: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """Mean per-class recall over the classes the (weighted) references hold, per resample.

    A class is counted when it has reference weight in the resample; its recall is its
    correctly predicted weight over its reference weight. Studies with an unknown reference
    (-1) are left out; a missing prediction (-1) against a known reference counts as wrong.
    NaN where the resample holds no known reference.

    Args:
        predicted: (studies,) class indices, -1 not predicted.
        reference: (studies,) class indices, -1 unknown.
        n_classes: number of classes.
        weights: (resamples x studies) multiplicities.
    """
    matrices = confusion_matrices(predicted, reference, n_classes, weights)
    support = np.atleast_2d(weights) @ _one_hot(np.asarray(reference, int), n_classes)
    recall = _safe_ratio(np.diagonal(matrices, axis1=1, axis2=2), support)
    present = support > 0
    counted = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            counted > 0, (recall * present).sum(axis=1) / np.where(counted > 0, counted, 1), np.nan
        )


def macro_mean(values: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over classes of (resamples,) values, ignoring NaN; NaN where every class is NaN."""
    with warnings.catch_warnings():
        # numpy warns on an all-NaN column; NaN is the meant result there.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(list(values)), axis=0)


def _one_hot(classes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(classes), n_classes))
    known = classes >= 0
    out[np.flatnonzero(known), classes[known]] = 1.0
    return out
