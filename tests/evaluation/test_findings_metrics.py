"""Findings-head ROC AUC (cxr/evaluation/findings_metrics.py), with the reference columns and
probabilities read by cxr/evaluation/studies.py, on a hand-worked case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxr.errors import InputError
from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.findings_metrics import FindingsMetrics
from cxr.evaluation.metric_keys import FINDINGS_AUC_MACRO, PerSubject
from cxr.evaluation.studies import Section, StudyTable

NAN = math.nan
IDS = ["s1", "s2", "s3", "s4", "s5", "s6"]
PROBABILITIES = {
    "Cardiomegaly": [0.9, 0.2, 0.3, 0.4, 0.35, None],  # s6 not assessed
    "Pleural Effusion": [0.8, 0.3, 0.9, 0.1, 0.6, 0.7],
    "Edema": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
}
LABELS = {
    "Cardiomegaly": [1, 0, -1, 0, 1, 1],  # s3 uncertain
    "Pleural Effusion": [1, 0, NAN, 0, 0, 1],  # s3 unknown
    "Edema": [0, 0, NAN, 0, 0, 0],  # one class only: no AUC
}
# Cardiomegaly, scored on s1..s5 (s6 has no probability):
#   uncertain negative: positives 0.9, 0.35 vs negatives 0.2, 0.3, 0.4 -> (3 + 2) / 6 = 5/6
#   uncertain positive: positives 0.9, 0.35, 0.3 vs negatives 0.2, 0.4 -> (2 + 1 + 1) / 6 = 2/3
#   uncertain ignored:  positives 0.9, 0.35 vs negatives 0.2, 0.4 -> (2 + 1) / 4 = 3/4
# Pleural Effusion on s1, s2, s4, s5, s6: positives 0.8, 0.7 vs 0.3, 0.1, 0.6 -> 1.
CARDIOMEGALY_AUC = {
    UncertainMapping.NEGATIVE: 5 / 6,
    UncertainMapping.POSITIVE: 2 / 3,
    UncertainMapping.IGNORE: 3 / 4,
}


def _tables(
    probabilities: dict[str, list[float | None]], labels: dict[str, list[float]]
) -> tuple[StudyTable, StudyTable]:
    predictions = pd.DataFrame({"study_id": IDS, "findings": "", **probabilities})
    references = pd.DataFrame({"study_id": IDS, "findings": "Cardiomegaly.", **labels})
    return (
        StudyTable.of_predictions(predictions, Section.REPORT),
        StudyTable.of_references(references, Section.REPORT),
    )


@pytest.mark.parametrize("uncertain", list(UncertainMapping))
def test_auc_per_observation_and_macro_over_those_with_both_classes(
    uncertain: UncertainMapping,
) -> None:
    predicted, reference = _tables(PROBABILITIES, LABELS)
    values = FindingsMetrics(predicted, reference, uncertain)(np.ones((1, len(IDS))))
    cardiomegaly = PerSubject.FINDINGS_AUC.key("Cardiomegaly")
    effusion = PerSubject.FINDINGS_AUC.key("Pleural Effusion")
    assert list(values) == [FINDINGS_AUC_MACRO, cardiomegaly, effusion]
    assert values[cardiomegaly][0] == pytest.approx(CARDIOMEGALY_AUC[uncertain])
    assert values[effusion][0] == pytest.approx(1.0)
    assert values[FINDINGS_AUC_MACRO][0] == pytest.approx((CARDIOMEGALY_AUC[uncertain] + 1) / 2)


def test_no_columns_on_either_side_gives_no_metric() -> None:
    # Older predictions files and references without labels: absent, not NaN.
    predicted, reference = _tables({}, LABELS)
    assert FindingsMetrics(predicted, reference, UncertainMapping.NEGATIVE)(np.ones((1, 6))) == {}
    # The references' text says "Cardiomegaly." for every study: it is not made a label.
    predicted, reference = _tables(PROBABILITIES, {})
    assert FindingsMetrics(predicted, reference, UncertainMapping.NEGATIVE)(np.ones((1, 6))) == {}


def test_a_resample_without_both_classes_has_no_auc() -> None:
    predicted, reference = _tables(PROBABILITIES, LABELS)
    weights = np.array([[1, 1, 1, 1, 1, 1], [0, 4, 1, 1, 0, 0]], float)  # 2nd: no positive
    values = FindingsMetrics(predicted, reference, UncertainMapping.NEGATIVE)(weights)
    cardiomegaly = values[PerSubject.FINDINGS_AUC.key("Cardiomegaly")]
    assert cardiomegaly[0] == pytest.approx(5 / 6) and np.isnan(cardiomegaly[1])


def test_values_outside_each_sides_range_are_user_errors() -> None:
    with pytest.raises(InputError, match=r"Cardiomegaly: 1\.5 for study s1"):
        _tables({"Cardiomegaly": [1.5, 0, 0, 0, 0, 0]}, LABELS)
    with pytest.raises(InputError, match=r"Edema: 2 for study s2"):
        _tables(PROBABILITIES, {"Edema": [0, 2, 0, 0, 0, 0]})
    predicted, reference = _tables(PROBABILITIES, LABELS)
    assert np.isnan(predicted.observations[5, 2])  # null: not assessed
    assert reference.observations[2, 2] == -1.0  # uncertain kept for --uncertain to decide
