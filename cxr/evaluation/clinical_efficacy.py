"""Clinical efficacy: the offline labeler's CheXpert observations of the generated report
against those of the reference, as precision, recall and F1.

Metrics: micro and macro P/R/F1 over all 14 observations and over the 5 common ones
(`COMMON_OBSERVATIONS`), and F1 per observation. Where the labeler finds an uncertain mention
(-1), `UncertainMapping` decides whether it counts as positive, negative, or leaves that
(study, observation) pair out.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import pandas as pd

from cxr.evaluation.classification import binary_counts, micro_macro, precision_recall_f1
from cxr.evaluation.metric_keys import Labeler, clinical_key
from cxr.types import COMMON_OBSERVATIONS, OBSERVATIONS


class UncertainMapping(str, Enum):
    """How an uncertain (-1) observation label counts: the labeler's, in clinical efficacy and
    report-to-head consistency, and a reference table's, in findings-head AUC."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    IGNORE = "ignore"  # (study, observation) pairs with an uncertain side are left out

    def resolve(self, labels: np.ndarray) -> np.ndarray:
        """`labels` (1 positive, 0 negative, -1 uncertain, NaN none) with every -1 replaced:
        by 1.0 (positive), 0.0 (negative) or NaN (ignore)."""
        replacement = {
            UncertainMapping.POSITIVE: 1.0,
            UncertainMapping.NEGATIVE: 0.0,
            UncertainMapping.IGNORE: np.nan,
        }[self]
        return np.where(labels == -1.0, replacement, labels)


def _positive_and_valid(
    predicted: pd.DataFrame, reference: pd.DataFrame, uncertain: UncertainMapping
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted positive, reference positive, pair counted), each (studies x observations),
    from two `label_reports` tables."""
    sides = []
    for labels in (predicted, reference):
        values = labels[list(OBSERVATIONS)].to_numpy(float)
        sides.append((uncertain.resolve(values) == 1.0, values == -1.0))
    (predicted_positive, predicted_hedged), (reference_positive, reference_hedged) = sides
    valid = np.ones_like(predicted_positive)
    if uncertain is UncertainMapping.IGNORE:
        valid = ~(predicted_hedged | reference_hedged)
    return predicted_positive, reference_positive, valid


class ClinicalEfficacy:
    """Clinical-efficacy metrics of one system as a function of bootstrap study weights."""

    def __init__(
        self,
        predicted: pd.DataFrame,
        reference: pd.DataFrame,
        uncertain: UncertainMapping,
        labeler: Labeler = Labeler.RULES,
    ) -> None:
        """Args:
        predicted: `label_reports` of the generated texts (or another labeler's table with
            the OBSERVATIONS columns).
        reference: the same labeler's table of the reference texts, row for row.
        uncertain: how uncertain mentions count.
        labeler: whose labels these are; it names the metrics.
        """
        self.labeler = labeler
        self._predicted, self._reference, self._valid = _positive_and_valid(
            predicted, reference, uncertain
        )

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        tp, fp, fn = binary_counts(self._predicted, self._reference, self._valid, weights)
        result: dict[str, np.ndarray] = {}
        common = [OBSERVATIONS.index(o) for o in COMMON_OBSERVATIONS]
        for columns in (list(range(len(OBSERVATIONS))), common):
            summary = micro_macro(tp[:, columns], fp[:, columns], fn[:, columns])
            for statistic, values in summary.items():
                result[clinical_key(statistic, len(columns), self.labeler)] = values
        _, _, f1 = precision_recall_f1(tp, fp, fn)
        for column, observation in enumerate(OBSERVATIONS):
            result[self.labeler.per_observation.key(observation)] = f1[:, column]
        return result


def observation_mismatches(
    predicted: pd.DataFrame,
    reference: pd.DataFrame,
    uncertain: UncertainMapping = UncertainMapping.NEGATIVE,
) -> np.ndarray:
    """Per study, the number of counted observations whose positive call differs between the
    generated and the reference report (two `label_reports` tables, row for row)."""
    predicted_positive, reference_positive, valid = _positive_and_valid(
        predicted, reference, uncertain
    )
    return ((predicted_positive != reference_positive) & valid).sum(axis=1)
