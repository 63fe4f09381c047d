"""The evaluated studies: matching predictions to references, and each side's per-study arrays.

Studies are matched on `study_id`; the evaluated studies are those with a reference and a
prediction in every predictions file, in reference order, and every other id is listed with
the reason. A `StudyTable` holds what the metric families read from one side, aligned to the
evaluated studies: the compared text, tube/line values, device statuses, change labels and
findings-head observations.

Observations: a predictions file's are its findings-head probabilities in [0, 1], one column
per `cxr.types.OBSERVATIONS` name (null: not assessed; a file without the columns assessed
none). A reference's are the same columns as labels: 1 present, 0 absent, -1 uncertain
(MIMIC-style; how it counts is the evaluation's --uncertain option), blank unknown. References
without the columns have no observation labels: they are never derived from report text.

Device statuses: a predictions file's are the `<device> status` columns `cxr generate` writes
(decided with the model's own thresholds); a file without them (another system's output) gets
the tube/line rule (`cxr.tube_line.device_statuses`, default thresholds) applied to its
probabilities. A reference's statuses always come from that rule applied to its labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr.errors import InputError
from cxr.evaluation.records import cell_text, read_joined, read_table
from cxr.tube_line import DEVICE_STATUSES, device_statuses, status_column
from cxr.types import (
    CHANGE_FINDINGS,
    CHANGE_UNKNOWN,
    NOT_ASSESSED,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
    change_column,
    is_missing,
    join_sections,
)


class Section(str, Enum):
    """Which report text is compared."""

    FINDINGS = "findings"
    IMPRESSION = "impression"
    REPORT = "report"


def section_text(row: Mapping[Any, Any], section: Section) -> str:
    """The row's text for a section; "report" is findings + impression, else a `report` column.

    This is the text every text metric scores (and notebooks label), for predictions and
    references alike.
    """
    if section is Section.REPORT:
        joined = join_sections(cell_text(row.get("findings")), cell_text(row.get("impression")))
        return joined or cell_text(row.get("report"))
    return cell_text(row.get(section.value))


def _not_assessed(value: Any) -> bool:
    return is_missing(value) or cell_text(value).lower() == NOT_ASSESSED


def change_code(value: Any) -> int:
    """A change label cell as its class index (`Change.code`); CHANGE_UNKNOWN when missing
    or not assessed. Accepts the label text in any case, or the class index itself."""
    if _not_assessed(value):
        return CHANGE_UNKNOWN
    text = cell_text(value)
    if text.lstrip("-").isdigit() or not isinstance(value, str):
        code = int(float(text))
        return code if 0 <= code < len(Change) else CHANGE_UNKNOWN
    try:
        return Change.parse(text).code
    except ValueError as error:
        raise InputError("change label", str(error)) from error


def _canonical_status(device: str, value: Any) -> str:
    """A status cell spelled as DEVICE_STATUSES spells it (any case accepted)."""
    if _not_assessed(value):
        return NOT_ASSESSED
    names = {name.casefold(): name for name in DEVICE_STATUSES[device]}
    text = cell_text(value)
    if text.casefold() not in names:
        expected = ", ".join(DEVICE_STATUSES[device])
        raise InputError(
            status_column(device), f"unknown status {text!r} (expected one of {expected})"
        )
    return names[text.casefold()]


def _numeric_columns(frame: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    """(rows x names) numeric values of the columns `names`; NaN where missing or not a number."""
    values = np.full((len(frame), len(names)), np.nan)
    for column, name in enumerate(names):
        if name in frame.columns:
            values[:, column] = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
    return values


def tube_line_values(frame: pd.DataFrame) -> np.ndarray:
    """(rows x 11) tube/line values in TUBE_LINE_LABELS order; NaN where missing."""
    return _numeric_columns(frame, TUBE_LINE_LABELS)


def _observation_columns(frame: pd.DataFrame) -> np.ndarray:
    return _numeric_columns(frame, OBSERVATIONS)


def _refuse_values(frame: pd.DataFrame, values: np.ndarray, bad: np.ndarray, expected: str) -> None:
    """InputError naming the first observation column (and study) with a `bad` value."""
    if bad.any():
        row, column = np.argwhere(bad)[0]
        study = frame["study_id"].iloc[row] if "study_id" in frame.columns else f"row {row + 1}"
        raise InputError(
            OBSERVATIONS[column], f"{values[row, column]:g} for study {study}: {expected}"
        )


def observation_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """(rows x 14) findings-head probabilities of a predictions table, OBSERVATIONS order;
    NaN where not assessed or the column is absent. A value outside [0, 1] is an InputError."""
    values = _observation_columns(frame)
    known = ~np.isnan(values)
    outside = np.zeros_like(known)
    outside[known] = (values[known] < 0) | (values[known] > 1)
    _refuse_values(frame, values, outside, "expected a probability in [0, 1] or null")
    return values


def observation_labels(frame: pd.DataFrame) -> np.ndarray:
    """(rows x 14) reference observation labels, OBSERVATIONS order: 1.0 present, 0.0 absent,
    -1.0 uncertain, NaN unknown or the column absent. Any other value is an InputError."""
    values = _observation_columns(frame)
    known = ~np.isnan(values)
    other = np.zeros_like(known)
    other[known] = ~np.isin(values[known], (1.0, 0.0, -1.0))
    _refuse_values(frame, values, other, "expected a label 1, 0, -1 or blank")
    return values


def predicted_statuses(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Each device's status per row of a predictions table (see the module docstring):
    NOT_ASSESSED where unknown."""
    derived = device_statuses(tube_line_values(frame))
    return {
        device: [_canonical_status(device, v) for v in frame[status_column(device)]]
        if status_column(device) in frame.columns
        else derived[device]
        for device in TUBE_LINE_DEVICES
    }


def status_codes(statuses: Mapping[str, Sequence[str]]) -> np.ndarray:
    """(rows x devices) index of each status in DEVICE_STATUSES[device]; -1 when not assessed."""
    columns = [
        [DEVICE_STATUSES[device].index(s) if s != NOT_ASSESSED else -1 for s in statuses[device]]
        for device in TUBE_LINE_DEVICES
    ]
    return np.array(columns, dtype=int).T.reshape(-1, len(TUBE_LINE_DEVICES))


def change_codes(frame: pd.DataFrame) -> np.ndarray:
    """(rows x findings) `change_code` of each `<finding>_progression` column; -1 where absent."""
    change = np.full((len(frame), len(CHANGE_FINDINGS)), CHANGE_UNKNOWN, dtype=int)
    for column, finding in enumerate(CHANGE_FINDINGS):
        name = change_column(finding)
        if name in frame.columns:
            change[:, column] = [change_code(v) for v in frame[name]]
    return change


@dataclass
class StudyTable:
    """Per-study arrays of one side (a system's outputs or the references)."""

    texts: list[str]
    tube_line: np.ndarray  # studies x 11 values (probabilities or 0/1 labels), NaN unknown
    statuses: np.ndarray  # studies x devices: index in DEVICE_STATUSES[device], -1 unknown
    change: np.ndarray  # studies x 5: Change.code, -1 unknown
    # studies x 14 OBSERVATIONS: a system's findings-head probabilities, or reference labels
    # (1, 0, -1 uncertain); NaN unknown (module docstring)
    observations: np.ndarray

    @classmethod
    def of_predictions(cls, frame: pd.DataFrame, section: Section) -> StudyTable:
        """A predictions table's studies; statuses as the file writes them (module docstring)."""
        return cls(
            [section_text(r, section) for r in frame.to_dict("records")],
            tube_line_values(frame),
            status_codes(predicted_statuses(frame)),
            change_codes(frame),
            observation_probabilities(frame),
        )

    @classmethod
    def of_references(cls, frame: pd.DataFrame, section: Section) -> StudyTable:
        """A reference table's studies; statuses by the tube/line rule from the labels."""
        labels = tube_line_values(frame)
        return cls(
            [section_text(r, section) for r in frame.to_dict("records")],
            labels,
            status_codes(device_statuses(labels)),
            change_codes(frame),
            observation_labels(frame),
        )

    @classmethod
    def text_only(cls, texts: Sequence[str]) -> StudyTable:
        """Reports without any tube/line, change or findings-head output (the text baselines)."""
        n = len(texts)
        return cls(
            list(texts),
            np.full((n, len(TUBE_LINE_LABELS)), np.nan),
            np.full((n, len(TUBE_LINE_DEVICES)), -1, dtype=int),
            np.full((n, len(CHANGE_FINDINGS)), CHANGE_UNKNOWN, dtype=int),
            np.full((n, len(OBSERVATIONS)), np.nan),
        )


@dataclass
class System:
    """What one system produced for the evaluated studies."""

    name: str
    outputs: StudyTable


@dataclass
class References:
    """The evaluated studies' references and bootstrap clusters."""

    study_ids: list[str]
    clusters: list[str]
    clusters_are_patients: bool
    table: StudyTable

    @property
    def has_text(self) -> np.ndarray:
        return np.array([bool(t) for t in self.table.texts])


def match_studies(
    references: pd.DataFrame, predictions: Mapping[str, pd.DataFrame]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Ids present everywhere (in reference order), and (id, problem) for the others."""
    reference_ids = list(references["study_id"])
    known = set(reference_ids)
    common = set(known)
    unmatched = []
    for name, table in predictions.items():
        ids = set(table["study_id"])
        common &= ids
        unmatched += [(s, f"no prediction in {name}") for s in reference_ids if s not in ids]
        unmatched += [
            (s, f"prediction in {name} without reference")
            for s in table["study_id"]
            if s not in known
        ]
    return [s for s in reference_ids if s in common], unmatched


def aligned(table: pd.DataFrame, study_ids: Sequence[str]) -> pd.DataFrame:
    """The rows of `study_ids`, in that order."""
    return table.set_index("study_id").loc[list(study_ids)].reset_index()


@dataclass
class MatchedTables:
    """Reference and prediction tables of the evaluated studies, aligned row by row."""

    study_ids: list[str]
    references: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    unmatched: list[tuple[str, str]]


def read_matched(
    predictions: Mapping[str, str | Path], references: Sequence[str | Path]
) -> MatchedTables:
    """Reads the files and keeps the studies with a reference and every prediction.

    Args:
        predictions: {name: predictions file}; the name appears in the unmatched reasons.
        references: reference files joined on study_id (test split of an annotation JSON).
    """
    reference_table = read_joined(references, split="test")
    tables = {name: read_table(path) for name, path in predictions.items()}
    study_ids, unmatched = match_studies(reference_table, tables)
    if not study_ids:
        first = next(iter(predictions.values()))
        raise InputError(first, "no study_id in common with the references")
    return MatchedTables(
        study_ids,
        aligned(reference_table, study_ids),
        {name: aligned(table, study_ids) for name, table in tables.items()},
        unmatched,
    )


def build_references(table: pd.DataFrame, section: Section) -> References:
    """References of the evaluated studies (an aligned table), with their bootstrap clusters:
    a study's patient, or the study itself when its patient is unknown."""
    study_ids = [str(s) for s in table["study_id"]]
    patients = (
        table["patient_id"].tolist() if "patient_id" in table.columns else [None] * len(table)
    )
    known = [not is_missing(p) for p in patients]
    clusters = [
        f"patient:{p}" if k else f"study:{s}"
        for p, k, s in zip(patients, known, study_ids, strict=True)
    ]
    return References(
        study_ids, clusters, all(known) and bool(known), StudyTable.of_references(table, section)
    )
