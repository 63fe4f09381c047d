"""What `cxr generate` writes: one flat record per study, appended so that a run can resume.

`reports.jsonl` is the record of truth: each batch's lines are written in one call, flushed and
fsynced; on resume a trailing partial line (a kill during the write) is cut off, so every line
is valid JSON and no study is written twice. `reports.csv` is rewritten from it at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cxr.jsonl import read_jsonl
from cxr.tube_line import status_column
from cxr.types import (
    CHANGE_FINDINGS,
    NOT_ASSESSED,
    OBSERVATIONS,
    TUBE_LINE_LABELS,
    Change,
    change_column,
)


def change_probability_column(finding: str, change: Change) -> str:
    """reports.jsonl column of the change head's probability of `change` for `finding`."""
    return f"{change_column(finding)}_prob_{change.value}"


@dataclass
class Prediction:
    """The model's output for one study, flattened by `to_row` for JSONL/CSV.

    `observation_probs` holds the findings head's probability per `OBSERVATIONS` name and
    `tube_line_probs` the tube/line head's per `TUBE_LINE_LABELS` label; a name they lack was
    not assessed, and its column is null (a model without heads gives neither; its device
    statuses are then NOT_ASSESSED).
    """

    study_id: str
    patient_id: str
    findings: str
    impression: str
    tube_line_probs: dict[str, float]
    tube_line_status: dict[str, str]
    change: dict[str, str]
    change_probs: dict[str, dict[str, float]]
    prior_study_id: str | None
    images: dict[str, str]
    model: str
    seconds: float
    observation_probs: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.observation_probs) - set(OBSERVATIONS))
        if unknown:
            # A misspelt name would otherwise leave its column null without a word.
            raise ValueError(f"unknown observations {unknown}; expected names of OBSERVATIONS")

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "study_id": self.study_id,
            "patient_id": self.patient_id,
            "findings": self.findings,
            "impression": self.impression,
        }
        # Every label's column, null where not assessed, so that all models' files align.
        row.update({label: self.tube_line_probs.get(label) for label in TUBE_LINE_LABELS})
        row.update(
            {status_column(device): status for device, status in self.tube_line_status.items()}
        )
        row.update(
            {observation: self.observation_probs.get(observation) for observation in OBSERVATIONS}
        )
        for finding in CHANGE_FINDINGS:
            column = change_column(finding)
            row[column] = self.change.get(finding, NOT_ASSESSED)
            for change in Change:
                row[change_probability_column(finding, change)] = self.change_probs.get(
                    finding, {}
                ).get(change.value)
        row["prior_study_id"] = self.prior_study_id
        row.update({f"{slot}_image": path for slot, path in self.images.items()})
        row["model"] = self.model
        row["seconds"] = round(self.seconds, 4)
        return row


@dataclass
class ErrorRecord:
    """A file or study that could not be used, and why."""

    reason: str
    path: str | None = None
    study_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _repair_tail(path: Path) -> None:
    """Cuts a trailing partial line left by a kill in the middle of a write."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


class JsonlAppender:
    """Appends records to a JSONL file durably, one batch per write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            _repair_tail(path)

    def existing(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path) if self.path.exists() else []

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        if not text:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def error_row(error: ErrorRecord) -> dict[str, Any]:
    return {key: value for key, value in asdict(error).items() if value not in (None, {})}


def write_csv(jsonl: Path, csv: Path) -> int:
    """Rewrites the CSV from the JSONL; returns the number of rows."""
    rows = JsonlAppender(jsonl).existing()
    pd.DataFrame(rows).to_csv(csv, index=False)
    return len(rows)
