"""Tube/line status accuracy scores the statuses reports.jsonl writes (cxr/evaluation/
tube_line_metrics.py, with the statuses read by cxr/evaluation/studies.py).

The written statuses below are what `cxr generate` writes for a model whose thresholds are
0.2: they call labels a fixed 0.5 rule would not, so the test tells the two apart.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cxr.cli import main
from cxr.tube_line import device_statuses, status_column
from cxr.types import NOT_ASSESSED, TUBE_LINE_LABELS

# Reference labels (0/1); unnamed labels are 0. s4 has two ETT statuses: the rule takes the
# more severe (Abnormal, listed first).
REFERENCE = {
    "s1": {"ETT - Normal": 1},
    "s2": {},
    "s3": {"ETT - Borderline": 1},
    "s4": {"ETT - Abnormal": 1, "ETT - Normal": 1},
}
REFERENCE_STATUS = {
    "ETT": {"s1": "Normal", "s2": "absent", "s3": "Borderline", "s4": "Abnormal"},
    "NGT": dict.fromkeys(REFERENCE, "absent"),
    "CVC": dict.fromkeys(REFERENCE, "absent"),
    "Swan Ganz": dict.fromkeys(REFERENCE, "absent"),
}
# Probabilities (unnamed labels 0.1; None = not predicted) and the statuses written with
# thresholds of 0.2.
PROBABILITIES = {
    "s1": {"ETT - Normal": 0.3, **dict.fromkeys(TUBE_LINE_LABELS[3:7], None)},  # NGT unknown
    "s2": {},
    "s3": {"ETT - Borderline": 0.6, "Swan Ganz Catheter Present": 0.35},
    "s4": {"ETT - Abnormal": 0.3, "ETT - Normal": 0.7},
}
WRITTEN = {
    "ETT": {"s1": "Normal", "s2": "absent", "s3": "Borderline", "s4": "Normal"},
    "NGT": {"s1": NOT_ASSESSED, "s2": "absent", "s3": "absent", "s4": "absent"},
    "CVC": dict.fromkeys(REFERENCE, "absent"),
    "Swan Ganz": {"s1": "absent", "s2": "absent", "s3": "present", "s4": "absent"},
}


def _accuracy(predicted: dict[str, str], reference: dict[str, str]) -> float:
    return sum(predicted[s] == reference[s] for s in reference) / len(reference)


def _write_references(folder: Path) -> list[Path]:
    reports = folder / "references.jsonl"
    reports.write_text(
        "".join(
            json.dumps({"study_id": s, "patient_id": f"p{s}", "findings": "Lungs are clear."})
            + "\n"
            for s in REFERENCE
        )
    )
    labels = folder / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["study_id", *TUBE_LINE_LABELS])
        writer.writeheader()
        for study, positives in REFERENCE.items():
            writer.writerow({"study_id": study, **dict.fromkeys(TUBE_LINE_LABELS, 0), **positives})
    return [reports, labels]


def _write_predictions(path: Path, rows: dict[str, dict[str, object]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"study_id": s, "findings": "Lungs are clear.", **row}) + "\n"
            for s, row in rows.items()
        )
    )
    return path


def _status_accuracy(predictions: Path, references: list[Path], out: Path) -> dict[str, float]:
    code = main(
        ["evaluate", "--predictions", str(predictions),
         "--references", ",".join(str(p) for p in references),
         "--bootstrap", "0", "--meteor", "false", "--plots", "false", "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        name.removeprefix("StatusAcc/"): values["value"]
        for name, values in metrics.items()
        if name.startswith("StatusAcc/")
    }


def test_status_accuracy_scores_the_written_statuses(tmp_path: Path) -> None:
    references = _write_references(tmp_path)
    rows: dict[str, dict[str, object]] = {}
    for study, probabilities in PROBABILITIES.items():
        row: dict[str, object] = {**dict.fromkeys(TUBE_LINE_LABELS, 0.1), **probabilities}
        row.update({status_column(d): WRITTEN[d][study] for d in WRITTEN})
        rows[study] = row
    probabilities = np.array(
        [[np.nan if row[label] is None else row[label] for label in TUBE_LINE_LABELS]
         for row in rows.values()], dtype=float
    )  # fmt: skip
    written = device_statuses(probabilities, thresholds=[0.2] * len(TUBE_LINE_LABELS))
    assert written == {d: list(WRITTEN[d].values()) for d in WRITTEN}  # what generate writes
    predictions = _write_predictions(tmp_path / "reports.jsonl", rows)
    accuracy = _status_accuracy(predictions, references, tmp_path / "out")
    # By hand: ETT right on s1, s2, s3 (a 0.5 rule would say absent on s1: 0.5);
    # NGT not assessed on s1 counts wrong; Swan Ganz "present" on s3 is wrong (0.5 rule: 1.0).
    assert accuracy == {
        "ETT": pytest.approx(3 / 4),
        "NGT": pytest.approx(3 / 4),
        "CVC": pytest.approx(1.0),
        "Swan Ganz": pytest.approx(3 / 4),
    }
    assert accuracy == {
        d: pytest.approx(_accuracy(WRITTEN[d], REFERENCE_STATUS[d])) for d in REFERENCE_STATUS
    }


def test_output_without_status_columns_is_scored_by_the_tube_line_rule(tmp_path: Path) -> None:
    # Another system's output, rounded to 0/1 and without status columns.
    references = _write_references(tmp_path)
    values = {
        "s1": {"ETT - Normal": 1},  # Normal
        "s2": {"ETT - Borderline": 1, "ETT - Normal": 1},  # Borderline (listed first): wrong
        "s3": {"ETT - Borderline": 1, "NGT - Normal": 1},  # NGT Normal: wrong
        "s4": {"ETT - Abnormal": 1, "ETT - Normal": 1},  # Abnormal
    }
    rows: dict[str, dict[str, object]] = {
        s: {**dict.fromkeys(TUBE_LINE_LABELS, 0.0), **v} for s, v in values.items()
    }
    predictions = _write_predictions(tmp_path / "other.jsonl", rows)
    accuracy = _status_accuracy(predictions, references, tmp_path / "out")
    assert accuracy == {
        "ETT": pytest.approx(3 / 4),
        "NGT": pytest.approx(3 / 4),
        "CVC": pytest.approx(1.0),
        "Swan Ganz": pytest.approx(1.0),
    }


def test_an_unknown_written_status_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    references = _write_references(tmp_path)
    rows: dict[str, dict[str, object]] = {s: {status_column("ETT"): "Normal"} for s in REFERENCE}
    rows["s2"][status_column("ETT")] = "sideways"
    predictions = _write_predictions(tmp_path / "reports.jsonl", rows)
    code = main(["evaluate", "--predictions", str(predictions),
                 "--references", ",".join(str(p) for p in references), "-o", str(tmp_path / "o")])  # fmt: skip
    assert code == 2
    assert "sideways" in capsys.readouterr().err
