"""Predictions and references as flat rows, whatever form a notebook holds them in.

A prediction is a `Prediction` or one row of reports.jsonl / reports.csv (a mapping or a
pandas Series); a reference is a text, a `Study`, or a row of reference files (findings,
impression and labels.csv columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cxr.data.reports import join_report
from cxr.evaluation.records import cell_text
from cxr.inference.outputs import Prediction
from cxr.types import (
    CHANGE_FINDINGS,
    OBSERVATIONS,
    TUBE_LINE_LABELS,
    Change,
    Study,
    change_column,
)

PredictionLike = Prediction | Mapping[str, Any] | pd.Series
ReferenceLike = str | Study | Mapping[str, Any] | pd.Series


def as_row(prediction: PredictionLike) -> dict[str, Any]:
    """The flat reports.jsonl row of a prediction (a row is returned as a plain dict)."""
    if isinstance(prediction, Prediction):
        return prediction.to_row()
    if isinstance(prediction, pd.Series):
        return {str(key): value for key, value in prediction.items()}
    return dict(prediction)


def reference_row(study: Study) -> dict[str, Any]:
    """A study's known targets as one flat row shaped like labels.csv plus the report text."""
    targets = study.targets
    row: dict[str, Any] = {
        "study_id": study.study_id,
        "patient_id": study.patient_id,
        "findings": targets.findings or "",
        "impression": targets.impression or "",
    }
    row.update(zip(TUBE_LINE_LABELS, targets.tube_line.tolist(), strict=True))
    row.update(zip(OBSERVATIONS, targets.observations.tolist(), strict=True))
    for finding, code in zip(CHANGE_FINDINGS, targets.change.tolist(), strict=True):
        row[change_column(finding)] = Change.from_code(code).value if code >= 0 else ""
    return row


def labelled_report(row: PredictionLike) -> str:
    """Findings and impression under their headings as the model writes them
    (`cxr.data.reports.join_report`), else the `report` column, for display.

    The text metrics score `cxr.evaluation.studies.section_text` instead, which has no headings.
    """
    row = as_row(row)
    labelled = join_report(cell_text(row.get("findings")), cell_text(row.get("impression")))
    return labelled or cell_text(row.get("report"))


def reference_text(reference: ReferenceLike | None) -> str | None:
    """The reference report to display; None without a reference."""
    if reference is None or isinstance(reference, str):
        return reference
    if isinstance(reference, Study):
        return labelled_report(reference_row(reference))
    return labelled_report(as_row(reference))


def reference_labels(reference: ReferenceLike | None) -> dict[str, Any] | None:
    """The reference's label columns as a row; None for a text or no reference."""
    if reference is None or isinstance(reference, str):
        return None
    return reference_row(reference) if isinstance(reference, Study) else as_row(reference)
