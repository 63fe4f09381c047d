"""The records `cxr generate` writes: flat rows, durable JSONL appends, CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cxr.inference.outputs import (
    ErrorRecord,
    JsonlAppender,
    Prediction,
    change_probability_column,
    error_row,
    write_csv,
)
from cxr.tube_line import status_column, study_statuses
from cxr.types import (
    CHANGE_FINDINGS,
    NOT_ASSESSED,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
    change_column,
)


def prediction(study_id: str, prior: str | None = None, **probs: float) -> Prediction:
    tube_line = {label: probs.get(label, 0.1) for label in TUBE_LINE_LABELS}
    change = {finding: "stable" for finding in CHANGE_FINDINGS} if prior else {}
    change_probs = (
        {f: {"improving": 0.2, "stable": 0.7, "worsening": 0.1} for f in CHANGE_FINDINGS}
        if prior
        else {}
    )
    images = {"frontal": f"/dicom/{study_id}/f.dcm"}
    if prior:
        images["prior_frontal"] = f"/dicom/{prior}/f.dcm"
    return Prediction(
        study_id=study_id,
        patient_id="P1",
        findings="Lungs are clear.",
        impression="No acute process.",
        tube_line_probs=tube_line,
        tube_line_status=study_statuses(tube_line),
        change=change,
        change_probs=change_probs,
        prior_study_id=prior,
        images=images,
        model="tiny@abc",
        seconds=0.123456,
        observation_probs={o: round(0.05 * (i + 1), 2) for i, o in enumerate(OBSERVATIONS)},
    )


# --- JsonlAppender ---------------------------------------------------------------------------


def test_appender_cuts_a_partial_trailing_line_left_by_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    path.write_text('{"study_id": "1"}\n{"study_id": "2"}\n{"study_id": "3", "find', "utf-8")
    appender = JsonlAppender(path)
    assert [row["study_id"] for row in appender.existing()] == ["1", "2"]
    appender.append([{"study_id": "3"}, {"study_id": "4"}])
    lines = path.read_text("utf-8").splitlines()
    assert [json.loads(line)["study_id"] for line in lines] == ["1", "2", "3", "4"]


def test_appender_cuts_a_file_that_is_one_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    path.write_bytes('{"study_id": "1", "findings": "Pleural eff\u00e9'.encode()[:-1])
    assert JsonlAppender(path).existing() == []
    assert path.read_bytes() == b""


def test_appender_keeps_a_complete_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    content = '{"study_id": "1", "findings": "\u00e9panchement"}\n'
    path.write_text(content, "utf-8")
    assert JsonlAppender(path).existing() == [{"study_id": "1", "findings": "\u00e9panchement"}]
    assert path.read_text("utf-8") == content


def test_appender_writes_nothing_for_an_empty_batch(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    appender = JsonlAppender(path)
    appender.append([])
    assert appender.existing() == []
    assert not path.exists()


# --- rows --------------------------------------------------------------------------------------


def test_row_without_prior_reports_change_as_not_assessed() -> None:
    row = prediction("1.2.3").to_row()
    assert row["prior_study_id"] is None
    for finding in CHANGE_FINDINGS:
        column = change_column(finding)
        assert row[column] == NOT_ASSESSED
        assert row[change_probability_column(finding, Change.WORSENING)] is None
    assert row["frontal_image"] == "/dicom/1.2.3/f.dcm"
    assert "prior_frontal_image" not in row
    assert json.loads(json.dumps(row)) == row


def test_row_with_prior_has_a_call_and_probabilities_per_finding() -> None:
    row = prediction("1.2.4", prior="1.2.3").to_row()
    assert row["prior_study_id"] == "1.2.3"
    assert row["prior_frontal_image"] == "/dicom/1.2.3/f.dcm"
    column = change_column("pleural_effusion")
    assert row[column] == "stable"
    assert row[change_probability_column("pleural_effusion", Change.STABLE)] == 0.7
    assert set(TUBE_LINE_LABELS) <= row.keys()
    assert {status_column(device) for device in TUBE_LINE_DEVICES} <= row.keys()
    assert row["seconds"] == 0.1235


def test_row_has_one_observation_column_after_the_tube_line_columns() -> None:
    row = prediction("1.2.5").to_row()
    columns = list(row)
    tube_line = [*TUBE_LINE_LABELS, *(status_column(device) for device in TUBE_LINE_DEVICES)]
    first = columns.index(OBSERVATIONS[0])
    assert columns[first : first + len(OBSERVATIONS)] == list(OBSERVATIONS)
    assert columns[first - len(tube_line) : first] == tube_line
    assert columns[first + len(OBSERVATIONS)] == change_column(CHANGE_FINDINGS[0])
    assert row["No Finding"] == 0.05
    assert row["Support Devices"] == 0.7
    assert json.loads(json.dumps(row)) == row


def test_observation_not_assessed_is_null_in_jsonl_and_csv(tmp_path: Path) -> None:
    partial = prediction("1")
    partial.observation_probs = {"Cardiomegaly": 0.8}
    row = partial.to_row()
    assert row["Cardiomegaly"] == 0.8
    assert all(row[o] is None for o in OBSERVATIONS if o != "Cardiomegaly")
    jsonl = tmp_path / "reports.jsonl"
    JsonlAppender(jsonl).append([row, prediction("2").to_row()])
    write_csv(jsonl, tmp_path / "reports.csv")
    table = pd.read_csv(tmp_path / "reports.csv")
    assert table["Edema"].isna().tolist() == [True, False]
    assert table["Cardiomegaly"].tolist() == [0.8, 0.15]


def test_a_misspelt_observation_is_refused() -> None:
    with pytest.raises(ValueError, match="Pleural effusion"):
        Prediction(**{**vars(prediction("1")), "observation_probs": {"Pleural effusion": 0.4}})


def test_csv_has_one_row_per_jsonl_line_and_the_union_of_columns(tmp_path: Path) -> None:
    jsonl = tmp_path / "reports.jsonl"
    JsonlAppender(jsonl).append([prediction("1").to_row(), prediction("2", prior="1").to_row()])
    assert write_csv(jsonl, tmp_path / "reports.csv") == 2
    table = pd.read_csv(tmp_path / "reports.csv", dtype={"study_id": str, "prior_study_id": str})
    assert list(table["study_id"]) == ["1", "2"]
    assert table["prior_frontal_image"].isna().tolist() == [True, False]
    assert table[change_column("edema")].tolist()[1] == "stable"


def test_error_row_leaves_out_what_is_unknown() -> None:
    assert error_row(ErrorRecord(reason="not DICOM", path="/x/a.txt")) == {
        "reason": "not DICOM",
        "path": "/x/a.txt",
    }
    assert error_row(ErrorRecord(reason="no frontal", study_id="1.2")) == {
        "reason": "no frontal",
        "study_id": "1.2",
    }
