"""Matching and per-study arrays (cxr/evaluation/studies.py): the compared text, change labels,
and where each side's device statuses come from."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxr.errors import InputError
from cxr.evaluation.studies import (
    Section,
    StudyTable,
    change_code,
    match_studies,
    predicted_statuses,
    section_text,
)
from cxr.tube_line import DEVICE_STATUSES, status_column
from cxr.types import NOT_ASSESSED, TUBE_LINE_DEVICES, TUBE_LINE_LABELS, Change, join_sections


def test_section_text_joins_findings_and_impression_with_the_one_joiner() -> None:
    row = {"findings": " Small effusion. ", "impression": "Effusion.", "report": "ignored"}
    assert section_text(row, Section.REPORT) == join_sections("Small effusion.", "Effusion.")
    assert section_text(row, Section.IMPRESSION) == "Effusion."
    assert section_text({"findings": math.nan, "report": "Whole text."}, Section.REPORT) == (
        "Whole text."
    )
    assert section_text({"findings": None}, Section.FINDINGS) == ""


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("Stable", Change.STABLE.code),
        (" worsening ", Change.WORSENING.code),
        (Change.IMPROVING.code, Change.IMPROVING.code),
        ("2", 2),
        (2.0, 2),
        ("-1", -1),
        ("7", -1),
        (NOT_ASSESSED, -1),
        ("", -1),
        (math.nan, -1),
        (None, -1),
    ],
)
def test_change_code_reads_label_text_indices_and_unknowns(cell: object, code: int) -> None:
    assert change_code(cell) == code


def test_an_unknown_change_label_is_a_user_error() -> None:
    with pytest.raises(InputError, match="sideways"):
        change_code("sideways")


def _probabilities(ett_normal: float) -> dict[str, float]:
    return {**dict.fromkeys(TUBE_LINE_LABELS, 0.1), "ETT - Normal": ett_normal}


def test_written_statuses_win_over_the_probabilities_and_missing_ones_are_derived() -> None:
    frame = pd.DataFrame(
        [
            {**_probabilities(0.3), status_column("ETT"): "normal"},  # any case
            {**_probabilities(0.9), status_column("ETT"): NOT_ASSESSED},
            {**_probabilities(0.9), status_column("ETT"): math.nan},
        ]
    )
    statuses = predicted_statuses(frame)
    assert statuses["ETT"] == ["Normal", NOT_ASSESSED, NOT_ASSESSED]
    # No NGT status column: the rule (default thresholds) on the probabilities.
    assert statuses["NGT"] == ["absent"] * 3
    codes = StudyTable.of_predictions(frame, Section.REPORT).statuses
    ett = list(TUBE_LINE_DEVICES).index("ETT")
    assert codes[:, ett].tolist() == [DEVICE_STATUSES["ETT"].index("Normal"), -1, -1]


def test_references_take_statuses_from_their_labels_only() -> None:
    labels = dict.fromkeys(TUBE_LINE_LABELS, 0.0)
    labels.update({"ETT - Abnormal": 1.0, "ETT - Normal": 1.0})
    frame = pd.DataFrame([{**labels, status_column("ETT"): "Normal"}])
    codes = StudyTable.of_references(frame, Section.REPORT).statuses[0]
    assert DEVICE_STATUSES["ETT"][codes[0]] == "Abnormal"  # the more severe of two positives
    unknown = StudyTable.of_references(pd.DataFrame([{"study_id": "s"}]), Section.REPORT)
    assert (unknown.statuses == -1).all() and np.isnan(unknown.tube_line).all()


def test_match_studies_keeps_reference_order_and_names_every_other_id() -> None:
    references = pd.DataFrame({"study_id": ["a", "b", "c"]})
    predictions = {"model": pd.DataFrame({"study_id": ["c", "a", "x"]})}
    ids, unmatched = match_studies(references, predictions)
    assert ids == ["a", "c"]
    assert sorted(unmatched) == [
        ("b", "no prediction in model"),
        ("x", "prediction in model without reference"),
    ]
