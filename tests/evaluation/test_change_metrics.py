"""MS-CXR-T change macro accuracy (cxr/evaluation/change_metrics.py) on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from cxr.evaluation.change_metrics import (
    ChangeMetrics,
    change_macro_accuracies,
    change_macro_accuracy,
)
from cxr.evaluation.metric_keys import (
    CHANGE_ACCURACY_MACRO,
    CHANGE_F1_MACRO,
    CHANGE_MACRO_ACCURACY,
    PerSubject,
)
from cxr.types import CHANGE_FINDINGS, CHANGE_UNKNOWN, Change

IMP, STA, WOR = Change.IMPROVING.code, Change.STABLE.code, Change.WORSENING.code
UNK = CHANGE_UNKNOWN

# Finding A (column 0), references x predictions (I, S, W: IMP, STA, WOR below):
#                 predicted I  S  W  not assessed   recall
#   improving (3)           2  1  0  0              2/3
#   stable    (4)           0  3  1  0              3/4
#   worsening (2)           0  0  1  1              1/2
#   one study with an unknown reference (predicted I) is left out.
#   balanced accuracy = (2/3 + 3/4 + 1/2) / 3 = 23/36; plain accuracy = 6/9.
# Finding B (column 1): references stable x2 (predicted S, I), worsening x1 (predicted W);
#   improving is predicted once but occurs in no reference, so it is not a class here:
#   balanced accuracy = (1/2 + 1) / 2 = 3/4; plain accuracy = 2/3.
# Finding C (column 2): no known reference: no score, and not in the mean.
# Macro accuracy = (23/36 + 3/4) / 2 = 25/36.
REFERENCE = np.array(
    [
        [IMP, STA, UNK],
        [IMP, STA, UNK],
        [IMP, WOR, UNK],
        [STA, UNK, UNK],
        [STA, UNK, UNK],
        [STA, UNK, UNK],
        [STA, UNK, UNK],
        [WOR, UNK, UNK],
        [WOR, UNK, UNK],
        [UNK, UNK, UNK],
    ]
)
PREDICTED = np.array(
    [
        [IMP, STA, IMP],
        [IMP, IMP, STA],
        [STA, WOR, WOR],
        [STA, IMP, STA],
        [STA, STA, STA],
        [STA, STA, STA],
        [WOR, STA, STA],
        [WOR, STA, STA],
        [UNK, STA, STA],
        [IMP, STA, STA],
    ]
)


def test_hand_worked_macro_accuracy() -> None:
    per_finding = change_macro_accuracies(reference=REFERENCE, predicted=PREDICTED)
    assert per_finding[:2] == [pytest.approx(23 / 36), pytest.approx(3 / 4)]
    assert np.isnan(per_finding[2])
    assert change_macro_accuracy(reference=REFERENCE, predicted=PREDICTED) == pytest.approx(25 / 36)


def test_a_constant_predictor_scores_one_third_whatever_the_class_balance() -> None:
    # 5 stable, 2 improving, 1 worsening: plain accuracy rewards always saying "stable" (5/8).
    reference = np.array([STA, STA, STA, STA, STA, IMP, IMP, WOR])
    for change in Change:
        constant = np.full_like(reference, change.code)
        assert change_macro_accuracy(reference=reference, predicted=constant) == 1 / 3
    metrics = ChangeMetrics(np.full((8, 5), STA), np.repeat(reference[:, None], 5, axis=1))
    values = metrics(np.ones((1, 8)))
    assert values[CHANGE_MACRO_ACCURACY][0] == pytest.approx(1 / 3)
    assert values[CHANGE_ACCURACY_MACRO][0] == pytest.approx(5 / 8)


def test_the_bootstrap_path_gives_the_public_functions_values() -> None:
    padded = np.full((len(REFERENCE), len(CHANGE_FINDINGS)), UNK)
    padded[:, :3] = REFERENCE
    predicted = np.full_like(padded, STA)
    predicted[:, :3] = PREDICTED
    values = ChangeMetrics(predicted, padded)(np.ones((1, len(padded))))
    # The headline comes first among the change metrics (the table's order).
    assert list(values)[:3] == [CHANGE_MACRO_ACCURACY, CHANGE_ACCURACY_MACRO, CHANGE_F1_MACRO]
    assert values[CHANGE_MACRO_ACCURACY][0] == pytest.approx(25 / 36)
    macro = PerSubject.CHANGE_MACRO_ACCURACY
    assert {f: v[0] for f, v in macro.select(values).items()} == {
        CHANGE_FINDINGS[0]: pytest.approx(23 / 36),
        CHANGE_FINDINGS[1]: pytest.approx(3 / 4),
    }
    assert values[PerSubject.CHANGE_ACCURACY.key(CHANGE_FINDINGS[0])][0] == pytest.approx(6 / 9)


def test_weights_count_a_study_as_often_as_it_is_drawn() -> None:
    weights = np.array([[2, 0, 1, 1, 0, 0, 0, 3, 1, 5]], float)
    drawn = np.repeat(np.arange(len(REFERENCE)), weights[0].astype(int))
    values = ChangeMetrics(PREDICTED, REFERENCE)(weights)
    expected = change_macro_accuracy(reference=REFERENCE[drawn], predicted=PREDICTED[drawn])
    assert values[CHANGE_MACRO_ACCURACY][0] == pytest.approx(expected)
    # Finding B drew only its first study (stable, predicted stable) twice and its third
    # (worsening, predicted worsening) once: both recalls are 1.
    assert values[PerSubject.CHANGE_MACRO_ACCURACY.key(CHANGE_FINDINGS[1])][0] == 1.0


def test_unaligned_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        change_macro_accuracy(reference=REFERENCE, predicted=PREDICTED[:3])
