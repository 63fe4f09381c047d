"""Findings-head metrics: ROC AUC per CheXpert observation and its macro mean.

A system's findings-head probabilities (the predictions' `OBSERVATIONS` columns) are scored
against the references' observation labels of the same names (1 present, 0 absent, blank
unknown; an uncertain -1 counts as --uncertain says: positive, negative, or left out). The AUC
is the tube/line one (`tube_line_metrics.label_aucs`): per observation, on the studies where
both the probability and the label are known, only when those labels hold both classes; the
macro mean runs over those observations. A system without findings-head columns (an older
reports.jsonl, a text baseline) or references without observation labels give no metric:
labels are never derived from reference text for this, since the labeler's reading of a
report is not the ground truth the head is trained against.
"""

from __future__ import annotations

import numpy as np

from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.metric_keys import FINDINGS_AUC_MACRO, PerSubject
from cxr.evaluation.studies import StudyTable
from cxr.evaluation.tube_line_metrics import label_aucs
from cxr.types import OBSERVATIONS


class FindingsMetrics:
    """Findings-head AUCs of one system as a function of bootstrap study weights."""

    def __init__(
        self, predicted: StudyTable, reference: StudyTable, uncertain: UncertainMapping
    ) -> None:
        """Args:
        predicted: the system's outputs (observations: head probabilities).
        reference: the references (observations: 1, 0, -1 uncertain, NaN unknown).
        uncertain: how an uncertain reference label counts.
        """
        self._probabilities = predicted.observations
        self.reference_labels = uncertain.resolve(reference.observations)
        """(studies x 14) the reference labels scored: 1, 0, NaN (unknown or left out)."""

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """FindingsAUC-macro, then FindingsAUC/<observation> (module docstring)."""
        return label_aucs(
            self._probabilities,
            self.reference_labels,
            OBSERVATIONS,
            PerSubject.FINDINGS_AUC,
            FINDINGS_AUC_MACRO,
            weights,
        )
