"""MIMIC-CXR and MIMIC-CXR-JPG adapters on tiny trees with the official names and headers."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.data.datasets import build_adapter
from cxr.data.datasets.mimic_cxr import mimic_datetime
from cxr.data.splits import Split
from cxr.errors import CxrError, InputError
from cxr.types import OBSERVATIONS, Study


def _by_id(studies: list[Study]) -> dict[str, Study]:
    return {study.study_id: study for study in studies}


@pytest.mark.parametrize(
    ("adapter", "suffix", "gzipped"),
    [("mimic_cxr", ".dcm", True), ("mimic_cxr_jpg", ".jpg", False)],
)
def test_views_priors_reports_and_missing_images(
    mimic_tree: Callable[..., Path], adapter: str, suffix: str, gzipped: bool
) -> None:
    root = mimic_tree(suffix, gzipped)
    studies = _by_id(list(build_adapter(adapter, root).studies()))
    assert set(studies) == {"50414267", "53189527", "53911762", "51000001"}
    folder = root / "files" / "p10" / "p10000032"

    first = studies["50414267"]
    assert first.patient_id == "10000032" and first.source == adapter
    assert first.images.frontal == str(folder / "s50414267" / f"d1{suffix}")
    assert first.images.lateral == str(folder / "s50414267" / f"d2{suffix}")
    assert first.prior_study_id is None
    assert first.prompt.indication == "___F with new onset ascites // eval for infection"
    assert first.targets.impression == "No acute cardiopulmonary process."

    # Same day, 08:05:56 (StudyTime "80556.875"): between the two others, image not on disk.
    morning = studies["53911762"]
    assert morning.study_datetime == datetime(2180, 6, 26, 8, 5, 56, 875000)
    assert morning.prior_study_id == "50414267"
    assert morning.images.frontal is None
    assert morning.images.prior_frontal == first.images.frontal
    assert morning.targets.findings == "Mild pulmonary edema has developed since the prior study."

    evening = studies["53189527"]
    assert evening.prior_study_id == "53911762"
    assert evening.images.frontal == str(folder / "s53189527" / f"d4{suffix}")  # PA over AP
    assert evening.images.lateral == str(folder / "s53189527" / f"d5{suffix}")
    assert evening.images.prior_frontal is None  # the prior's image is not downloaded
    assert (
        evening.prompt.prior_report == "Mild pulmonary edema has developed since the prior study."
    )
    assert evening.targets.findings == "Edema has resolved. LINES/TUBES: None."

    lone = studies["51000001"]
    assert lone.targets.report is None and lone.prior_study_id is None
    assert lone.images.frontal is not None


def test_official_split_by_subject_and_split_file_wins(
    mimic_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = mimic_tree(".dcm")
    module = ReportDataModule(
        [DataSource("mimic_cxr", root)], num_workers=0, val_fraction=0.0, test_fraction=0.0
    )
    assert {s.patient_id for s in module.studies(Split.TEST)} == {"11000011"}
    assert {s.patient_id for s in module.studies(Split.TRAIN)} == {"10000032"}

    split_file = tmp_path / "splits.csv"
    split_file.write_text("patient_id,split\n10000032,val\n")
    module = ReportDataModule(
        [DataSource("mimic_cxr", root)],
        num_workers=0,
        split_file=split_file,
        val_fraction=0.0,
        test_fraction=0.0,
    )
    assert {s.patient_id for s in module.studies(Split.VAL)} == {"10000032"}
    assert {s.patient_id for s in module.studies(Split.TEST)} == {"11000011"}


def test_official_split_can_be_turned_off(mimic_tree: Callable[..., Path]) -> None:
    adapter = build_adapter("mimic_cxr", mimic_tree(".dcm"), official_split=False)
    assert adapter.patient_splits() == {}  # type: ignore[attr-defined]


def test_reports_and_tables_may_live_elsewhere(
    mimic_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = mimic_tree(".jpg")
    tables = tmp_path / "tables"
    tables.mkdir()
    for table in root.glob("mimic-cxr-2.0.0-*.csv.gz"):
        table.rename(tables / table.name)
    with pytest.raises(InputError, match=r"mimic-cxr-2\.0\.0-metadata"):
        list(build_adapter("mimic_cxr_jpg", root).studies())
    empty_reports = tmp_path / "reports"
    studies = list(
        build_adapter(
            "mimic_cxr_jpg", root, metadata_dir=tables, reports_dir=empty_reports
        ).studies()
    )
    assert len(studies) == 4
    assert all(study.targets.report is None for study in studies)


def test_metadata_without_a_required_column_names_it(tmp_path: Path) -> None:
    (tmp_path / "mimic-cxr-2.0.0-metadata.csv").write_text("dicom_id,subject_id,study_id\nd1,1,2\n")
    with pytest.raises(InputError, match="ViewPosition"):
        list(build_adapter("mimic_cxr", tmp_path).studies())


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        ("21800506", "213014.531", datetime(2180, 5, 6, 21, 30, 14, 531000)),
        ("21800506", "4512", datetime(2180, 5, 6, 0, 45, 12)),
        ("21800506", "", datetime(2180, 5, 6)),
        ("", "120000", None),
        ("2180-05", "120000", None),
    ],
)
def test_mimic_datetime(date: str, time: str, expected: datetime | None) -> None:
    assert mimic_datetime(date, time) == expected


def _observations(study: Study) -> dict[str, float]:
    return dict(zip(OBSERVATIONS, study.targets.observations.tolist(), strict=True))


def test_chexpert_labels_by_default_uncertain_unknown_and_blank_absent(
    mimic_tree: Callable[..., Path],
) -> None:
    studies = _by_id(list(build_adapter("mimic_cxr_jpg", mimic_tree(".jpg")).studies()))
    normal = _observations(studies["50414267"])
    assert normal["No Finding"] == 1.0
    assert all(v == 0.0 for k, v in normal.items() if k != "No Finding")  # blank -> absent
    edema = _observations(studies["53911762"])
    assert edema["Edema"] == 1.0 and math.isnan(edema["Pleural Effusion"])  # -1 -> unknown
    assert edema["No Finding"] == 0.0 and edema["Pneumothorax"] == 0.0
    assert studies["53911762"].targets.observations.dtype == np.float32
    resolved = _observations(studies["53189527"])
    assert resolved["Edema"] == 0.0 and resolved["Support Devices"] == 0.0
    # No report, so not in the label table: unknown.
    assert np.isnan(studies["51000001"].targets.observations).all()


@pytest.mark.parametrize(
    ("options", "effusion", "pneumothorax"),
    [
        ({"uncertain": "positive"}, 1.0, 0.0),
        ({"uncertain": "negative"}, 0.0, 0.0),
        ({"uncertain": "ignore", "not_mentioned": "ignore"}, math.nan, math.nan),
        ({"uncertain": "positive", "not_mentioned": "ignore"}, 1.0, math.nan),
    ],
)
def test_uncertain_and_not_mentioned_policies(
    mimic_tree: Callable[..., Path],
    options: dict[str, str],
    effusion: float,
    pneumothorax: float,
) -> None:
    root = mimic_tree(".dcm")
    studies = _by_id(list(build_adapter("mimic_cxr", root, **options).studies()))
    edema = _observations(studies["53911762"])
    assert edema["Edema"] == 1.0
    assert np.array_equal(
        [edema["Pleural Effusion"], edema["Pneumothorax"]], [effusion, pneumothorax], equal_nan=True
    )


def test_negbio_table_and_no_table(mimic_tree: Callable[..., Path]) -> None:
    root = mimic_tree(".jpg")
    negbio = _by_id(list(build_adapter("mimic_cxr_jpg", root, label_table="negbio").studies()))
    assert _observations(negbio["53911762"])["Pleural Effusion"] == 0.0  # CheXpert says -1
    assert math.isnan(_observations(negbio["50414267"])["Lung Opacity"])
    none = list(build_adapter("mimic_cxr_jpg", root, label_table="none").studies())
    assert all(np.isnan(s.targets.observations).all() for s in none)


def test_a_missing_label_table_leaves_observations_unknown(
    mimic_tree: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    root = mimic_tree(".jpg")
    (root / "mimic-cxr-2.0.0-negbio.csv.gz").unlink()
    with caplog.at_level(logging.WARNING):
        studies = list(build_adapter("mimic_cxr_jpg", root, label_table="negbio").studies())
    assert all(np.isnan(s.targets.observations).all() for s in studies)
    assert "mimic-cxr-2.0.0-negbio" in caplog.text


def test_a_bad_label_cell_and_a_bad_option_are_named(
    mimic_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = mimic_tree(".jpg", gzipped=False)
    table = root / "mimic-cxr-2.0.0-chexpert.csv"
    table.write_text(table.read_text().replace("-1.0", "maybe", 1))
    with pytest.raises(InputError, match=r"study 53911762: Pleural Effusion: 'maybe'"):
        list(build_adapter("mimic_cxr_jpg", root).studies())
    with pytest.raises(CxrError, match="uncertain: unknown value 'u-ones'"):
        build_adapter("mimic_cxr_jpg", root, uncertain="u-ones")
    with pytest.raises(CxrError, match=re.escape("'chexbert' (expected chexpert | negbio | none)")):
        build_adapter("mimic_cxr_jpg", root, label_table="chexbert")
