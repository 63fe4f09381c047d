"""Classification metrics on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from cxr.evaluation.classification import (
    accuracy_and_macro_f1,
    balanced_accuracy,
    binary_counts,
    column_aucs,
    micro_macro,
    precision_recall_f1,
    roc_auc,
)

ONE = np.ones((1, 4))


def test_binary_counts_and_f1() -> None:
    predicted = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], bool)
    reference = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], bool)
    valid = np.ones_like(predicted)
    tp, fp, fn = binary_counts(predicted, reference, valid, ONE)
    assert tp.tolist() == [[2, 1]] and fp.tolist() == [[1, 0]] and fn.tolist() == [[1, 0]]
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    assert recall[0].tolist() == pytest.approx([2 / 3, 1.0])
    assert precision[0].tolist() == pytest.approx([2 / 3, 1.0])
    assert f1[0].tolist() == pytest.approx([2 / 3, 1.0])
    summary = micro_macro(tp, fp, fn)
    assert summary["F1-micro"][0] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert summary["F1-macro"][0] == pytest.approx((2 / 3 + 1) / 2)


def test_undefined_f1_is_zero_and_invalid_pairs_are_left_out() -> None:
    predicted = np.array([[0], [1]], bool)
    reference = np.array([[0], [0]], bool)
    valid = np.array([[True], [False]])
    tp, fp, fn = binary_counts(predicted, reference, valid, np.ones((1, 2)))
    assert (tp, fp, fn) == (0, 0, 0)
    assert precision_recall_f1(tp, fp, fn)[2][0, 0] == 0.0


def test_roc_auc_with_ties_and_weights() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1], bool)
    assert roc_auc(scores, labels, ONE)[0] == pytest.approx(0.75)
    tied = np.array([0.5, 0.5, 0.5, 0.9])
    assert roc_auc(tied, labels, ONE)[0] == pytest.approx((0.5 * 2 + 2) / 4)
    weights = np.array([[2.0, 1.0, 1.0, 0.0]])  # negatives 0.1 x2, 0.4; positive 0.35
    assert roc_auc(scores, labels, weights)[0] == pytest.approx(2 / 3)
    assert np.isnan(roc_auc(scores, labels, np.array([[1.0, 1.0, 0.0, 0.0]]))[0])


def test_accuracy_and_macro_f1() -> None:
    reference = np.array([0, 1, 1, 2, -1])
    predicted = np.array([0, 1, 2, -1, 0])
    accuracy, macro_f1 = accuracy_and_macro_f1(predicted, reference, 3, np.ones((1, 5)))
    assert accuracy[0] == pytest.approx(2 / 4)  # the unknown reference is left out, -1 is wrong
    # class 0: tp1 fp0 fn0 -> 1; class 1: tp1 fn1 -> 2/3; class 2: tp0 fp1 fn1 -> 0
    assert macro_f1[0] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_balanced_accuracy_counts_the_reference_classes_only() -> None:
    reference = np.array([0, 0, 1, 1, 1, -1])
    predicted = np.array([0, 2, 1, 1, -1, 2])
    # class 0: 1/2, class 1: 2/3 (the missing prediction is wrong); class 2 is only predicted
    # and the unknown reference is left out.
    value = balanced_accuracy(predicted, reference, 3, np.ones((1, 6)))[0]
    assert value == pytest.approx((1 / 2 + 2 / 3) / 2)
    only_unknown = np.array([[0, 0, 0, 0, 0, 1.0]])
    assert np.isnan(balanced_accuracy(predicted, reference, 3, only_unknown)[0])


def test_column_aucs_skip_columns_without_both_classes() -> None:
    scores = np.array([[0.1, 0.9], [0.4, 0.8], [0.35, np.nan], [0.8, 0.7]])
    reference = np.array([[0, 1], [0, 1], [1, 0], [1, np.nan]])
    aucs = column_aucs(scores, reference, ONE)
    # column 1: the only negative has no score, the last study no label: one class left.
    assert list(aucs) == [0]
    assert aucs[0][0] == pytest.approx(0.75)
