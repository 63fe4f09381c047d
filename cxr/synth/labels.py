"""labels.csv: one row per study with RANZCR CLiP tube/line labels, change labels, the 14
CheXpert observations and the findings with their severity."""

from __future__ import annotations

from cxr.synth.observations import observation_labels
from cxr.synth.truth import StudyTruth
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, TUBE_LINE_LABELS, change_column

CHANGE_COLUMNS: tuple[str, ...] = tuple(change_column(f) for f in CHANGE_FINDINGS)
LABEL_COLUMNS: tuple[str, ...] = (
    "study_id",
    "patient_id",
    *TUBE_LINE_LABELS,
    *CHANGE_COLUMNS,
    *OBSERVATIONS,
    "findings",
)


def label_row(study: StudyTruth) -> dict[str, str | int]:
    """The labels.csv row of one study.

    A change cell is "" (unknown) when the study has no prior, or when the finding is absent
    from both the study and its prior (MS-CXR-T's rule, `StudyTruth.changes`).
    """
    row: dict[str, str | int] = {"study_id": study.study_uid, "patient_id": study.patient_id}
    row.update(study.tube_line_labels())
    changes = study.changes() or {}
    for finding, column in zip(CHANGE_FINDINGS, CHANGE_COLUMNS, strict=True):
        change = changes.get(finding)
        row[column] = change.value if change else ""
    row.update(observation_labels(study))
    row["findings"] = study.findings_text()
    return row
