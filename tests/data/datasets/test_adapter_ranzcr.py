"""RANZCR CLiP adapter on a tiny tree with the competition's train.csv header."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cxr.data.datasets import build_adapter
from cxr.errors import InputError
from cxr.types import TUBE_LINE_LABELS


def test_labels_images_and_patients(ranzcr_tree: Path) -> None:
    studies = {s.study_id: s for s in build_adapter("ranzcr", ranzcr_tree).studies()}
    assert len(studies) == 6
    first = studies["1.2.826.0.1.3680043.8.498.1"]
    assert first.patient_id == "ec89415d1" and first.source == "ranzcr"
    assert [TUBE_LINE_LABELS[i] for i, v in enumerate(first.targets.tube_line) if v == 1] == [
        "ETT - Normal", "NGT - Normal", "CVC - Normal",
    ]  # fmt: skip
    assert first.targets.tube_line.sum() == 3
    assert first.images.frontal == str(ranzcr_tree / "train" / "1.2.826.0.1.3680043.8.498.1.jpg")
    assert first.images.lateral is None and first.targets.report is None
    assert (first.targets.change == -1).all()
    assert studies["1.2.826.0.1.3680043.8.498.6"].images.frontal is None  # not on disk
    assert studies["1.2.826.0.1.3680043.8.498.4"].targets.tube_line[10] == 1  # Swan Ganz


def test_empty_label_is_unknown(ranzcr_tree: Path) -> None:
    table = ranzcr_tree / "train.csv"
    lines = table.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = ""  # ETT - Abnormal of the first study
    table.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    first = next(iter(build_adapter("ranzcr", ranzcr_tree).studies()))
    assert math.isnan(first.targets.tube_line[0]) and first.targets.tube_line[2] == 1


def test_missing_label_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("StudyInstanceUID,PatientID,ETT - Normal\n1,2,0\n")
    with pytest.raises(InputError, match="Swan Ganz Catheter Present"):
        list(build_adapter("ranzcr", tmp_path).studies())


def test_missing_table_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        list(build_adapter("ranzcr", tmp_path).studies())
