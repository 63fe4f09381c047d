"""Label tables read into targets: observation columns beside the tube/line and change ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cxr.data.datasets import build_adapter
from cxr.data.datasets.records import read_labels, targets_from_rows
from cxr.errors import InputError
from cxr.types import CHANGE_UNKNOWN, OBSERVATIONS, Change


def _observations(values: np.ndarray) -> dict[str, float]:
    return dict(zip(OBSERVATIONS, values.tolist(), strict=True))


def test_observation_columns_are_read_blank_and_uncertain_unknown(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "study_id,Cardiomegaly,Edema,No Finding,edema_progression\n"
        "s1,1,0,,worsening\n"
        "s2,-1.0,,1.0,\n"
    )
    labels = read_labels(path)
    first = targets_from_rows(None, labels["s1"])
    assert first.observations.dtype == np.float32 and first.observations.shape == (14,)
    s1 = _observations(first.observations)
    assert s1["Cardiomegaly"] == 1.0 and s1["Edema"] == 0.0
    assert math.isnan(s1["No Finding"]) and math.isnan(s1["Pneumothorax"])  # blank, absent column
    assert first.change[4] == Change.WORSENING.code
    s2 = _observations(targets_from_rows(None, labels["s2"]).observations)
    assert math.isnan(s2["Cardiomegaly"]) and math.isnan(s2["Edema"]) and s2["No Finding"] == 1.0


def test_an_older_table_without_observation_columns_leaves_them_unknown(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("study_id,patient_id,ETT - Normal,edema_progression\ns1,p1,1,stable\n")
    targets = targets_from_rows(None, read_labels(path)["s1"])
    assert np.isnan(targets.observations).all()
    assert targets.tube_line[2] == 1.0 and targets.change[4] == Change.STABLE.code
    assert (targets.change[:4] == CHANGE_UNKNOWN).all()
    assert np.isnan(targets_from_rows(None, None).observations).all()


def test_a_cell_that_is_no_label_names_study_and_column(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("study_id,Pneumothorax\ns1,1\ns2,yes\n")
    with pytest.raises(InputError, match=r"labels\.csv: study s2: Pneumothorax: 'yes'"):
        read_labels(path)


def test_a_manifest_table_carries_observation_columns(tmp_path: Path) -> None:
    table = tmp_path / "studies.csv"
    table.write_text("study_id,report,Pleural Effusion,Support Devices\na,No effusion.,0,1\nb,,,\n")
    studies = {s.study_id: s for s in build_adapter("manifest", table).studies()}
    a = _observations(studies["a"].targets.observations)
    assert a["Pleural Effusion"] == 0.0 and a["Support Devices"] == 1.0 and math.isnan(a["Edema"])
    assert np.isnan(studies["b"].targets.observations).all()
    table.write_text("study_id,Edema\na,2\n")
    with pytest.raises(InputError, match="study a: Edema: '2'"):
        list(build_adapter("manifest", table).studies())
