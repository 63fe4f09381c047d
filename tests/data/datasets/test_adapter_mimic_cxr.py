"""MIMIC-CXR and MIMIC-CXR-JPG adapters on tiny trees with the official names and headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.data.datasets import build_adapter
from cxr.data.datasets.mimic_cxr import mimic_datetime
from cxr.data.splits import Split
from cxr.errors import InputError
from cxr.types import Study


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
