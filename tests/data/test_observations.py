"""Label values -> observation targets: the policies, and labelling studies from their reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxr.data.observations import (
    LABELER_POLICY,
    TABLE_POLICY,
    LabelPolicy,
    NotMentioned,
    label_from_reports,
    label_value,
)
from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.types import OBSERVATIONS, Study, Targets


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("1.0", 1.0),
        ("0", 0.0),
        ("-1.0", -1.0),
        (1, 1.0),
        (-1.0, -1.0),
        ("", math.nan),
        (None, math.nan),
        (math.nan, math.nan),
        ("  ", math.nan),
    ],
)
def test_label_value(cell: object, value: float) -> None:
    assert np.array_equal([label_value(cell)], [value], equal_nan=True)


@pytest.mark.parametrize("cell", ["yes", "2", "0.5", "inf"])
def test_label_value_refuses_other_values(cell: str) -> None:
    with pytest.raises(ValueError, match=repr(cell)):
        label_value(cell)


@pytest.mark.parametrize(
    ("policy", "uncertain", "blank"),
    [
        (LabelPolicy(), math.nan, 0.0),
        (LabelPolicy(UncertainMapping.POSITIVE, NotMentioned.NEGATIVE), 1.0, 0.0),
        (LabelPolicy(UncertainMapping.NEGATIVE, NotMentioned.IGNORE), 0.0, math.nan),
        (TABLE_POLICY, math.nan, math.nan),
        (LABELER_POLICY, math.nan, 0.0),
    ],
)
def test_policies(policy: LabelPolicy, uncertain: float, blank: float) -> None:
    row = {"Cardiomegaly": "1.0", "Edema": "0.0", "Pleural Effusion": "-1.0"}
    targets = policy.targets(row)
    assert targets.dtype == np.float32 and targets.shape == (len(OBSERVATIONS),)
    by_name = dict(zip(OBSERVATIONS, targets.tolist(), strict=True))
    assert by_name["Cardiomegaly"] == 1.0 and by_name["Edema"] == 0.0
    assert np.array_equal(
        [by_name["Pleural Effusion"], by_name["Pneumothorax"]], [uncertain, blank], equal_nan=True
    )


def test_a_bad_cell_is_named_by_its_observation() -> None:
    with pytest.raises(ValueError, match=r"Edema: 'present'"):
        TABLE_POLICY.targets({"Edema": "present"})


def _study(study_id: str, findings: str | None, labelled: bool = False) -> Study:
    targets = Targets(findings=findings)
    if labelled:
        targets.observations[:] = 0.0
    return Study(study_id=study_id, patient_id=study_id, targets=targets)


def test_studies_without_labels_are_labelled_from_their_report() -> None:
    studies = [
        _study("a", "Moderate cardiomegaly. No pleural effusion. Possible pneumonia."),
        _study("b", "Moderate cardiomegaly.", labelled=True),  # has labels: left alone
        _study("c", None),  # no report: stays unknown
        _study("d", "No acute cardiopulmonary process."),
    ]
    assert label_from_reports(studies) == 2
    a = dict(zip(OBSERVATIONS, studies[0].targets.observations.tolist(), strict=True))
    assert a["Cardiomegaly"] == 1.0  # positive
    assert a["Pleural Effusion"] == 0.0  # negative
    assert math.isnan(a["Pneumonia"])  # uncertain -> unknown
    assert a["Pneumothorax"] == 0.0 and a["No Finding"] == 0.0  # not mentioned -> absent
    assert (studies[1].targets.observations == 0.0).all()
    assert np.isnan(studies[2].targets.observations).all()
    d = dict(zip(OBSERVATIONS, studies[3].targets.observations.tolist(), strict=True))
    assert d["No Finding"] == 1.0 and sum(d.values()) == 1.0
    assert label_from_reports(studies) == 0  # nothing left to label
