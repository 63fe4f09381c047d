"""Report-to-head consistency: does a system's generated report say what its own findings
head calls?

For each evaluated study and each of the 14 `OBSERVATIONS`, two present / absent calls of the
same system are compared:
- the head's: present when its probability is >= `OBSERVATION_THRESHOLD`;
- the report's: the offline labeler's reading of the scored text (the same labels clinical
  efficacy uses): positive is present; negative and not mentioned are absent (an empty
  report mentions nothing, so every observation is absent); an uncertain mention counts as
  --uncertain says (positive: present, negative: absent, ignore: that cell is left out).
A cell whose head probability is null (not assessed) is left out.

Metrics: `ReportHeadAgree/<observation>`, the fraction of that observation's counted studies
where the two calls agree, and `ReportHeadAgree-micro`, the fraction over all counted
(study, observation) cells. No reference is involved, so every evaluated study counts,
whether or not its reference has text. A system without findings-head columns gets no metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.metric_keys import REPORT_HEAD_AGREEMENT_MICRO, PerSubject
from cxr.types import OBSERVATION_THRESHOLD, OBSERVATIONS


def head_present(probabilities: np.ndarray) -> np.ndarray:
    """The findings head's present calls: probability >= OBSERVATION_THRESHOLD (NaN: False)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(probabilities, float) >= OBSERVATION_THRESHOLD


def agreement_cells(
    report_labels: pd.DataFrame, probabilities: np.ndarray, uncertain: UncertainMapping
) -> tuple[np.ndarray, np.ndarray]:
    """(agree, counted), each (studies x 14 OBSERVATIONS) booleans (module docstring).

    Args:
        report_labels: `label_reports` of the generated reports, row for row.
        probabilities: (studies x 14) findings-head probabilities, NaN where not assessed.
        uncertain: how the labeler's uncertain mentions count.
    """
    values = report_labels[list(OBSERVATIONS)].to_numpy(float)
    resolved = uncertain.resolve(values)
    report_present = resolved == 1.0
    uncertain_left_out = (values == -1.0) & np.isnan(resolved)
    counted = ~np.isnan(probabilities) & ~uncertain_left_out
    agree = (report_present == head_present(probabilities)) & counted
    return agree, counted


class ReportHeadConsistency:
    """Report-to-head agreement of one system as a function of bootstrap study weights."""

    def __init__(
        self, report_labels: pd.DataFrame, probabilities: np.ndarray, uncertain: UncertainMapping
    ) -> None:
        """Args: as `agreement_cells`."""
        self._agree, self._counted = agreement_cells(report_labels, probabilities, uncertain)

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """ReportHeadAgree-micro, then ReportHeadAgree/<observation> for every observation with
        a counted cell; NaN in a resample without counted cells."""
        if not self._counted.any():
            return {}
        weights = np.atleast_2d(weights)
        agree = weights @ self._agree.astype(float)  # resamples x observations
        counted = weights @ self._counted.astype(float)
        result = {REPORT_HEAD_AGREEMENT_MICRO: _ratio(agree.sum(axis=1), counted.sum(axis=1))}
        for column, observation in enumerate(OBSERVATIONS):
            if self._counted[:, column].any():
                result[PerSubject.REPORT_HEAD_AGREEMENT.key(observation)] = _ratio(
                    agree[:, column], counted[:, column]
                )
        return result


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )
