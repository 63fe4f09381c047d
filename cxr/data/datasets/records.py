"""Building `Study` records from a study index plus report and label tables.

Shared by every adapter whose images come as a folder of files: the `cxr index` output (or a
fresh index of a folder) gives images, roles and priors; a reports JSONL and a labels CSV, both
keyed by `study_id`, give the text and the targets. Anything missing stays unknown.

Label columns: the RANZCR CLiP columns (`TUBE_LINE_LABELS`, 0/1), ``<finding>_progression``
(improving / stable / worsening) and the 14 CheXpert `OBSERVATIONS` under their own names
(1 present, 0 absent, -1 uncertain, blank unknown; uncertain is unknown too: a table that wants
U-Ones or U-Zeros writes 1 or 0). Older tables without some of these columns are fine: what
they do not give stays unknown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cxr.data.observations import TABLE_POLICY
from cxr.errors import InputError
from cxr.io import IndexedStudy
from cxr.jsonl import jsonl_records
from cxr.types import (
    CHANGE_FINDINGS,
    CHANGE_UNKNOWN,
    TUBE_LINE_LABELS,
    Change,
    Prompt,
    Study,
    StudyImages,
    Targets,
    change_column,
    is_missing,
    join_sections,
)


def read_reports(path: Path) -> dict[str, dict[str, Any]]:
    """Rows of a reports JSONL file keyed by `study_id`."""
    reports: dict[str, dict[str, Any]] = {}
    for number, row in jsonl_records(path):
        if "study_id" not in row:
            raise InputError(path, f"line {number} is not a report row: it has no study_id")
        reports[str(row["study_id"])] = row
    return reports


def read_labels(path: Path) -> dict[str, dict[str, Any]]:
    """Rows of a labels CSV keyed by `study_id` (tube/line, *_progression and observation
    columns; see the module doc).

    Raises:
        InputError: unreadable, without study_id, or an observation cell that is no label.
    """
    try:
        table = pd.read_csv(path, dtype={"study_id": str, "patient_id": str}, keep_default_na=True)
    except (OSError, pd.errors.ParserError, ValueError) as error:
        raise InputError(path, f"cannot read labels table: {error}") from error
    if "study_id" not in table.columns:
        raise InputError(path, "labels table has no study_id column")
    rows = {
        str(row["study_id"]): {str(k): v for k, v in row.items()}
        for row in table.to_dict(orient="records")
    }
    check_observation_labels(rows, path)
    return rows


def check_observation_labels(rows: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Raises InputError naming the study and column of the first observation cell that is
    no label (1, 0, -1 or blank)."""
    for study_id, row in rows.items():
        try:
            TABLE_POLICY.targets(row)
        except ValueError as error:
            raise InputError(path, f"study {study_id}: {error}") from error


def targets_from_rows(
    report: Mapping[str, Any] | None, labels: Mapping[str, Any] | None
) -> Targets:
    """Targets from one report row and one labels row; absent columns stay unknown."""
    targets = Targets()
    if report:
        targets.findings = report.get("findings") or None
        targets.impression = report.get("impression") or None
    if labels:
        for i, column in enumerate(TUBE_LINE_LABELS):
            if not is_missing(labels.get(column)):
                targets.tube_line[i] = float(labels[column])
        for i, finding in enumerate(CHANGE_FINDINGS):
            value = labels.get(change_column(finding))
            targets.change[i] = (
                Change.parse(str(value)).code if not is_missing(value) else CHANGE_UNKNOWN
            )
        targets.observations = TABLE_POLICY.targets(labels)
    return targets


def report_text(report: Mapping[str, Any] | None) -> str:
    """A prior study's report row as the prompt shows it."""
    return join_sections(report.get("findings"), report.get("impression")) if report else ""


def studies_from_index(
    indexed: Sequence[IndexedStudy],
    reports: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, Mapping[str, Any]],
    source: str,
    prior_reports: bool = True,
) -> Iterator[Study]:
    """One `Study` per indexed study, joined with its report, labels and prior."""
    by_id = {study.study_id: study for study in indexed}
    for entry in indexed:
        report = reports.get(entry.study_id)
        prior = by_id.get(entry.prior_study_id) if entry.prior_study_id else None
        prompt = Prompt(
            indication=(report or {}).get("indication") or "",
            technique=(report or {}).get("technique") or "",
            comparison=(report or {}).get("comparison") or "",
            prior_report=report_text(reports.get(prior.study_id))
            if prior and prior_reports
            else "",
        )
        yield Study(
            study_id=entry.study_id,
            # Without a PatientID each study is its own patient (for splits and bootstrap).
            patient_id=entry.patient_id or f"unknown-patient:{entry.study_id}",
            study_datetime=entry.study_datetime,
            images=StudyImages(
                frontal=entry.frontal,
                lateral=entry.lateral,
                prior_frontal=prior.frontal if prior else None,
            ),
            prompt=prompt,
            targets=targets_from_rows(report, labels.get(entry.study_id)),
            prior_study_id=prior.study_id if prior else None,
            source=source,
        )
