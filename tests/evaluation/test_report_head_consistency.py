"""Report-to-head consistency (cxr/evaluation/report_head_consistency.py): the labeler's reading
of the generated report against the same model's findings-head calls, on hand-made studies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.labeler import label_reports
from cxr.evaluation.metric_keys import REPORT_HEAD_AGREEMENT_MICRO, PerSubject
from cxr.evaluation.report_head_consistency import ReportHeadConsistency, head_present
from cxr.types import OBSERVATION_THRESHOLD, OBSERVATIONS

NAN = math.nan
REPORTS = [
    "Moderate cardiomegaly.",  # head 0.9: agrees
    "Moderate cardiomegaly.",  # head 0.1: disagrees
    "Heart size is normal.",  # negative is absent; head 0.2: agrees
    "Possible cardiomegaly.",  # uncertain; head 0.8: as --uncertain says
]
CARDIOMEGALY = [0.9, 0.1, 0.2, 0.8]
# No report mentions an effusion (absent); s4's head did not assess it.
EFFUSION = [0.1, 0.7, 0.2, NAN]
# Cardiomegaly agreement: negative 2/4 (s4 absent vs present), positive 3/4, ignore 2/3 (s4
# left out). Effusion: s1, s3 agree, s2 does not: 2/3 whatever the option.
# Micro over the counted cells: negative (2 + 2) / (4 + 3), positive (3 + 2) / 7, ignore 4/6.
EXPECTED = {
    UncertainMapping.NEGATIVE: (2 / 4, 4 / 7),
    UncertainMapping.POSITIVE: (3 / 4, 5 / 7),
    UncertainMapping.IGNORE: (2 / 3, 4 / 6),
}


def _probabilities() -> np.ndarray:
    values = np.full((len(REPORTS), len(OBSERVATIONS)), np.nan)
    values[:, OBSERVATIONS.index("Cardiomegaly")] = CARDIOMEGALY
    values[:, OBSERVATIONS.index("Pleural Effusion")] = EFFUSION
    return values


@pytest.mark.parametrize("uncertain", list(UncertainMapping))
def test_agreement_per_observation_and_over_all_cells(uncertain: UncertainMapping) -> None:
    labels = label_reports(REPORTS)
    assert labels["Cardiomegaly"].tolist()[:3] == [1.0, 1.0, 0.0]  # what the cases rely on
    assert labels["Cardiomegaly"].iloc[3] == -1.0 and labels["Pleural Effusion"].isna().all()
    values = ReportHeadConsistency(labels, _probabilities(), uncertain)(np.ones((1, 4)))
    cardiomegaly, micro = EXPECTED[uncertain]
    key = PerSubject.REPORT_HEAD_AGREEMENT.key
    # Only the observations the head assessed have a per-observation value.
    assert list(values) == [
        REPORT_HEAD_AGREEMENT_MICRO,
        key("Cardiomegaly"),
        key("Pleural Effusion"),
    ]
    assert values[key("Cardiomegaly")][0] == pytest.approx(cardiomegaly)
    assert values[key("Pleural Effusion")][0] == pytest.approx(2 / 3)
    assert values[REPORT_HEAD_AGREEMENT_MICRO][0] == pytest.approx(micro)


def test_resamples_weigh_each_study_by_its_draws() -> None:
    labels = label_reports(REPORTS)
    weights = np.array([[3, 1, 0, 0], [0, 0, 0, 2]], float)
    values = ReportHeadConsistency(labels, _probabilities(), UncertainMapping.IGNORE)(weights)
    cardiomegaly = values[PerSubject.REPORT_HEAD_AGREEMENT.key("Cardiomegaly")]
    assert cardiomegaly[0] == pytest.approx(3 / 4)
    assert np.isnan(cardiomegaly[1])  # s4 only: its one cell is left out under "ignore"


def test_an_empty_report_states_every_observation_absent() -> None:
    probabilities = np.full((1, len(OBSERVATIONS)), 0.2)
    probabilities[0, OBSERVATIONS.index("No Finding")] = 0.9
    values = ReportHeadConsistency(label_reports([""]), probabilities, UncertainMapping.NEGATIVE)(
        np.ones((1, 1))
    )
    # 13 absent calls agree; the head's "No Finding" is not stated by an empty report.
    assert values[REPORT_HEAD_AGREEMENT_MICRO][0] == pytest.approx(13 / 14)


def test_a_head_that_assessed_nothing_gives_no_metric() -> None:
    nothing = np.full((len(REPORTS), len(OBSERVATIONS)), np.nan)
    consistency = ReportHeadConsistency(label_reports(REPORTS), nothing, UncertainMapping.NEGATIVE)
    assert consistency(np.ones((1, 4))) == {}


def test_the_head_calls_present_from_the_shared_threshold() -> None:
    below = np.nextafter(OBSERVATION_THRESHOLD, 0.0)
    calls = head_present(np.array([OBSERVATION_THRESHOLD, below, NAN]))
    assert calls.tolist() == [True, False, False]
