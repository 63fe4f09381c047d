"""MS-CXR-T adapter: the temporal classification table over a tiny MIMIC-CXR-JPG tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.data.datasets import build_adapter
from cxr.data.datasets.ms_cxr_t import LABELS_FILE
from cxr.data.splits import Split
from cxr.errors import InputError
from cxr.types import CHANGE_FINDINGS, Change


@pytest.fixture
def mimic_jpg(mimic_tree: Callable[..., Path], make_ms_cxr_t_table: Callable[[Path], Path]) -> Path:
    root = mimic_tree(".jpg")
    make_ms_cxr_t_table(root / LABELS_FILE)
    return root


def _change(**labels: Change) -> list[int]:
    return [labels[f].code if f in labels else -1 for f in CHANGE_FINDINGS]


def test_pairs_become_studies_with_change_labels_and_prior_images(mimic_jpg: Path) -> None:
    studies = list(build_adapter("ms_cxr_t", mimic_jpg).studies())
    assert len(studies) == 3
    first, second, third = studies
    folder = mimic_jpg / "files" / "p10" / "p10000032"
    # The current study appears in two pairs: each pair is a study of its own.
    assert first.study_id == "53189527_d4" and second.study_id == "53189527_d3"
    assert first.patient_id == "10000032" and first.prior_study_id == "50414267"
    assert first.images.frontal == str(folder / "s53189527" / "d4.jpg")
    assert first.images.prior_frontal == str(folder / "s50414267" / "d1.jpg")
    assert list(first.targets.change) == _change(
        consolidation=Change.IMPROVING, pneumothorax=Change.STABLE, edema=Change.WORSENING
    )
    # Path-style dicom ids; the prior image is not on disk.
    assert second.images.frontal == str(folder / "s53189527" / "d3.jpg")
    assert second.images.prior_frontal is None
    assert list(second.targets.change) == _change(pleural_effusion=Change.STABLE)
    assert third.study_id == "51000001" and third.images.prior_frontal is None
    assert first.targets.report is None  # no reports_dir


def test_reports_join_when_given(mimic_jpg: Path) -> None:
    first = next(iter(build_adapter("ms_cxr_t", mimic_jpg, reports_dir=mimic_jpg).studies()))
    assert first.targets.impression == "Resolved edema."
    assert "nipple shadows" in first.prompt.prior_report


def test_subjects_shared_with_mimic_keep_one_split(mimic_jpg: Path) -> None:
    """MIMIC-CXR-JPG and MS-CXR-T mixed: the official split pools both sources' patients."""
    module = ReportDataModule(
        [DataSource("mimic_cxr_jpg", mimic_jpg), DataSource("ms_cxr_t", mimic_jpg)],
        num_workers=0,
        val_fraction=0.3,
        test_fraction=0.3,
    )
    patients = {split: {s.patient_id for s in module.studies(split)} for split in Split}
    assert patients[Split.TRAIN] == {"10000032"} and patients[Split.TEST] == {"11000011"}
    assert sum(len(module.studies(split)) for split in Split) == 4 + 3


def test_unknown_progression_word_is_an_input_error(tmp_path: Path) -> None:
    columns = "dicom_id,previous_dicom_id,study_id,previous_study_id,subject_id,edema_progression"
    (tmp_path / LABELS_FILE).write_text(f"{columns}\na,b,1,2,3,better\n")
    with pytest.raises(InputError, match="edema_progression='better'"):
        list(build_adapter("ms_cxr_t", tmp_path).studies())
