"""labels.csv: one row per study with RANZCR CLiP tube/line labels, change labels and findings."""

from __future__ import annotations

from cxr.synth.truth import StudyTruth
from cxr.types import CHANGE_FINDINGS, TUBE_LINE_LABELS, change_column

CHANGE_COLUMNS: tuple[str, ...] = tuple(change_column(f) for f in CHANGE_FINDINGS)
LABEL_COLUMNS: tuple[str, ...] = (
    "study_id",
    "patient_id",
    *TUBE_LINE_LABELS,
    *CHANGE_COLUMNS,
    "findings",
)


def label_row(study: StudyTruth) -> dict[str, str | int]:
    """The labels.csv row of one study; change cells are "" when the study has no prior."""
    row: dict[str, str | int] = {"study_id": study.study_uid, "patient_id": study.patient_id}
    row.update(study.tube_line_labels())
    changes = study.changes()
    for finding, column in zip(CHANGE_FINDINGS, CHANGE_COLUMNS, strict=True):
        row[column] = changes[finding].value if changes else ""
    row["findings"] = study.findings_text()
    return row
