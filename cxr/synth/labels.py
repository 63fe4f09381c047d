"""labels.csv: one row per study with RANZCR CLiP tube/line labels, change labels and findings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxr.errors import InputError
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


def read_labels(path: Path) -> pd.DataFrame:
    """Reads labels.csv: tube/line columns as int, change and findings columns as str ("" = none)."""
    if not Path(path).is_file():
        raise InputError(path, "labels file not found")
    types: dict[str, type] = dict.fromkeys(TUBE_LINE_LABELS, int)
    types.update(dict.fromkeys(("study_id", "patient_id", *CHANGE_COLUMNS, "findings"), str))
    frame = pd.read_csv(path, dtype=types, keep_default_na=False)
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, f"not a cxr labels file: missing columns {missing}")
    return frame
