"""The tube/line status rule and the choice of its thresholds (cxr/tube_line.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cxr.tube_line import (
    DEFAULT_THRESHOLD,
    DEVICE_STATUSES,
    ThresholdChoice,
    choose_device_thresholds,
    choose_thresholds,
    device_statuses,
    status_accuracy,
    study_statuses,
)
from cxr.types import NOT_ASSESSED, TUBE_LINE_DEVICES, TUBE_LINE_LABELS


def _row(**values: float) -> np.ndarray:
    named = {label.replace(" - ", "_").replace(" ", "_"): label for label in TUBE_LINE_LABELS}
    row = np.full(len(TUBE_LINE_LABELS), 0.1)
    for key, value in values.items():
        row[TUBE_LINE_LABELS.index(named[key])] = value
    return row


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ({}, {"ETT": "absent", "NGT": "absent", "CVC": "absent", "Swan Ganz": "absent"}),
        ({"ETT - Normal": 0.6, "ETT - Abnormal": 0.9}, {"ETT": "Abnormal"}),
        ({"ETT - Normal": 0.6, "ETT - Abnormal": 0.4}, {"ETT": "Normal"}),
        ({"NGT - Incompletely Imaged": 0.8}, {"NGT": "Incompletely Imaged"}),
        ({"Swan Ganz Catheter Present": 0.51}, {"Swan Ganz": "present"}),
        ({"Swan Ganz Catheter Present": 0.49}, {"Swan Ganz": "absent"}),
    ],
)
def test_status_is_the_most_probable_status_above_its_threshold(
    probs: dict[str, float], expected: dict[str, str]
) -> None:
    called = study_statuses({label: probs.get(label, 0.1) for label in TUBE_LINE_LABELS})
    assert called.keys() == TUBE_LINE_DEVICES.keys()
    assert {device: called[device] for device in expected} == expected


def test_thresholds_are_per_label() -> None:
    probs = dict.fromkeys(TUBE_LINE_LABELS, 0.3)
    thresholds = [0.25 if label == "CVC - Borderline" else 0.5 for label in TUBE_LINE_LABELS]
    assert study_statuses(probs, thresholds)["CVC"] == "Borderline"
    assert study_statuses(probs)["CVC"] == "absent"


def test_binary_labels_take_the_most_severe_of_two_positive_statuses() -> None:
    # Two central lines, one abnormal and one normal: the first listed (most severe) wins,
    # whether the values are labels or probabilities rounded to exactly 0 and 1.
    statuses = device_statuses(np.stack([_row(CVC_Abnormal=1.0, CVC_Normal=1.0)]))
    assert statuses["CVC"] == ["Abnormal"]


def test_rounded_probabilities_follow_the_same_rule_as_probabilities() -> None:
    # Every value exactly 0 or 1 is not a different kind of input: the rule is the same.
    values = np.zeros((2, len(TUBE_LINE_LABELS)))
    values[0, TUBE_LINE_LABELS.index("NGT - Normal")] = 1.0
    values[1, TUBE_LINE_LABELS.index("NGT - Normal")] = 0.97
    assert device_statuses(values)["NGT"] == ["Normal", "Normal"]


def test_a_device_with_an_unknown_value_is_not_assessed() -> None:
    row = _row()
    row[TUBE_LINE_LABELS.index("ETT - Borderline")] = np.nan
    statuses = device_statuses(row[None])
    assert statuses["ETT"] == [NOT_ASSESSED]
    assert statuses["NGT"] == ["absent"]


def test_every_status_the_rule_gives_is_listed_for_its_device() -> None:
    rng = np.random.default_rng(0)
    statuses = device_statuses(rng.random((200, len(TUBE_LINE_LABELS))))
    for device, values in statuses.items():
        assert set(values) <= set(DEVICE_STATUSES[device])


def test_chosen_threshold_is_the_one_with_the_best_status_accuracy() -> None:
    # Swan Ganz present in studies 0 and 1 (scores 0.3, 0.35), absent in 2 and 3 (0.1, 0.2).
    # Thresholds 0.25 and 0.3 call all four right; of those, 0.3 is nearest 0.5. At 0.5 the
    # two present ones would be missed.
    probabilities = np.zeros((4, len(TUBE_LINE_LABELS)))
    labels = np.zeros((4, len(TUBE_LINE_LABELS)))
    column = TUBE_LINE_LABELS.index("Swan Ganz Catheter Present")
    probabilities[:, column] = [0.3, 0.35, 0.1, 0.2]
    labels[:, column] = [1, 1, 0, 0]

    thresholds = choose_thresholds(probabilities, labels)

    assert thresholds[column] == pytest.approx(0.3)
    # Every other device is absent in all four studies: one status only, so the default.
    assert [t for i, t in enumerate(thresholds) if i != column] == [DEFAULT_THRESHOLD] * 10
    swan_ganz = np.array(["present", "present", "absent", "absent"], dtype=object)
    assert status_accuracy(probabilities, swan_ganz, "Swan Ganz", 0.3) == 1.0
    assert status_accuracy(probabilities, swan_ganz, "Swan Ganz", DEFAULT_THRESHOLD) == 0.5


def test_a_device_shares_one_threshold_over_its_labels() -> None:
    # ETT Normal in study 0 (0.4 beside Borderline 0.3), Borderline in study 1 (0.45 beside
    # Normal 0.2), absent in study 2 (all at 0.1): 0.15 to 0.4 get all three right, and 0.4
    # is nearest 0.5.
    probabilities = np.full((3, len(TUBE_LINE_LABELS)), 0.1)
    labels = np.zeros((3, len(TUBE_LINE_LABELS)))
    borderline, normal = TUBE_LINE_DEVICES["ETT"][1:]
    probabilities[0, [borderline, normal]] = [0.3, 0.4]
    probabilities[1, [borderline, normal]] = [0.45, 0.2]
    labels[0, normal] = labels[1, borderline] = 1

    thresholds = choose_thresholds(probabilities, labels)

    ett = [thresholds[i] for i in TUBE_LINE_DEVICES["ETT"]]
    assert ett == [pytest.approx(0.4)] * 3


def test_a_device_without_known_references_keeps_the_default_with_no_accuracy() -> None:
    probabilities = np.full((3, len(TUBE_LINE_LABELS)), 0.7)
    labels = np.zeros((3, len(TUBE_LINE_LABELS)))
    labels[:, list(TUBE_LINE_DEVICES["CVC"])] = np.nan
    choices = choose_device_thresholds(probabilities, labels)
    assert choices["CVC"] == ThresholdChoice(DEFAULT_THRESHOLD, 0, [], None, None)
    # ETT is absent in all three, and at 0.5 every 0.7 is called: accuracy 0 either way.
    assert choices["ETT"] == ThresholdChoice(DEFAULT_THRESHOLD, 3, ["absent"], 0.0, 0.0)
