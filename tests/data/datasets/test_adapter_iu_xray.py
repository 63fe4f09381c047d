"""IU X-ray adapter on the real Open-I XML sample and the real R2Gen annotation file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr.data.datasets import build_adapter
from cxr.data.datasets.iu_xray import image_key, read_open_i_xml, report_key
from cxr.data.splits import Split
from cxr.errors import InputError
from cxr.types import OBSERVATIONS, Study


@pytest.fixture(scope="module")
def xml_folder(shared_data: Path) -> Path:
    return shared_data / "iu-xray-reports" / "openi-xml-sample"


def test_xml_reports_without_images_still_yield(xml_folder: Path) -> None:
    studies = list(build_adapter("iu_xray", xml_folder).studies())
    assert len(studies) == 989
    assert len({s.study_id for s in studies}) == 989
    assert all(s.images.frontal is None and s.images.lateral is None for s in studies)
    first = next(s for s in studies if s.study_id == "CXR1")
    assert first.patient_id == "CXR1"
    assert first.prompt.indication == "Positive TB test" and first.prompt.comparison == "None."
    assert first.targets.impression == "Normal chest x-XXXX."
    assert first.targets.findings is not None and first.targets.findings.startswith(
        "The cardiac silhouette"
    )
    # Every report whose XML has a findings or impression text carries it.
    for path in sorted(xml_folder.glob("*.xml"))[:200]:
        report = read_open_i_xml(path)
        study = next(s for s in studies if s.study_id == report.study_id)
        assert (study.targets.findings or "") == report.sections.get("findings", "")
        assert (study.targets.impression or "") == report.sections.get("impression", "")


def test_xml_images_and_views_from_the_dicom_table(
    xml_folder: Path, shared_data: Path, tmp_path: Path, write_image: Callable[[Path, int], None]
) -> None:
    images = tmp_path / "NLMCXR_png"
    names = (
        "CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001",  # both PA in the table: order decides
        "CXR37_IM-1847-0001-0001", "CXR37_IM-1847-0001-0002",  # the first is LATERAL in the table
        "CXR195_IM-0618-1002",  # 1001 (LL) is not on disk
    )  # fmt: skip
    for number, name in enumerate(names):
        write_image(images / f"{name}.png", number)
    table = shared_data / "metadata-tables" / "nlmcxr_dicom_metadata.csv.gz"
    adapter = build_adapter("iu_xray", xml_folder, images=images, view_table=table)
    studies = {s.study_id: s for s in adapter.studies()}
    assert studies["CXR1"].images.frontal == str(images / "CXR1_1_IM-0001-3001.png")
    assert studies["CXR1"].images.lateral == str(images / "CXR1_1_IM-0001-4001.png")
    assert studies["CXR37"].images.frontal == str(images / "CXR37_IM-1847-0001-0002.png")
    assert studies["CXR37"].images.lateral == str(images / "CXR37_IM-1847-0001-0001.png")
    assert studies["CXR195"].images.frontal == str(images / "CXR195_IM-0618-1002.png")
    assert studies["CXR195"].images.lateral is None
    without_table = {
        s.study_id: s for s in build_adapter("iu_xray", xml_folder, images=images).studies()
    }
    assert without_table["CXR37"].images.frontal == str(images / "CXR37_IM-1847-0001-0001.png")


def test_r2gen_annotation_with_its_four_space_test_key(shared_data: Path, tmp_path: Path) -> None:
    annotation = shared_data / "iu-xray-reports" / "annotation_r2gen_split.json"
    images = tmp_path / "images"
    adapter = build_adapter("iu_xray", tmp_path, annotation=annotation, images=images)
    splits = adapter.patient_splits()  # type: ignore[attr-defined]
    counts = {split: sum(1 for v in splits.values() if v is split) for split in Split}
    assert counts == {Split.TRAIN: 2069, Split.VAL: 296, Split.TEST: 590}
    studies = list(adapter.studies())
    assert len(studies) == 2955 and {s.study_id for s in studies} == set(splits)
    assert all(s.targets.findings and s.targets.impression is None for s in studies)
    assert all(s.images.frontal is None for s in studies)  # no image on disk


def test_r2gen_folder_with_images(r2gen_folder: Path) -> None:
    studies = list(build_adapter("iu_xray", r2gen_folder).studies())
    assert len(studies) == 18
    for study in studies:
        assert study.images.frontal and study.images.frontal.endswith("/0.png")
        assert study.images.lateral and study.images.lateral.endswith("/1.png")
        assert Path(study.images.frontal).is_file()


def test_ids_in_their_several_spellings() -> None:
    assert image_key("CXR1_1_IM-0001-3001") == image_key("CXR1_IM-0001-3001") == "CXR1_IM-0001-3001"
    assert image_key("CXR37_IM-1847-0001-0002") != image_key("CXR37_IM-1847-0001-0001")
    assert image_key("notes") is None
    assert report_key("CXR1_1_IM-0001") == report_key("CXR1") == "CXR1"


def test_folder_without_reports_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no Open-I report XML"):
        list(build_adapter("iu_xray", tmp_path).studies())
    (tmp_path / "annotation.json").write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="top level"):
        list(build_adapter("iu_xray", tmp_path).studies())


@pytest.fixture(scope="module")
def xml_studies(xml_folder: Path) -> dict[str, Study]:
    return {s.study_id: s for s in build_adapter("iu_xray", xml_folder).studies()}


def _present(study: Study) -> set[str]:
    return {name for name, v in zip(OBSERVATIONS, study.targets.observations, strict=True) if v}


@pytest.mark.parametrize(
    ("study_id", "present"),
    [
        ("CXR1", {"No Finding"}),  # normal
        # Opacity + Pulmonary Atelectasis; the automatic "mass lesion" is not read.
        ("CXR1000", {"Lung Opacity", "Atelectasis"}),
        # Catheters, Indwelling + Costophrenic Angle/blunted + Pleural Effusion
        ("CXR105", {"Support Devices", "Pleural Effusion"}),
        ("CXR113", {"Lung Opacity", "Lung Lesion"}),  # Opacity, Density/lung, Nodule
        ("CXR10", set()),  # a calcified granuloma only: no lesion, but no "no finding" either
        ("CXR392", {"Support Devices", "No Finding"}),  # a catheter only
        ("CXR490", {"No Finding"}),  # image quality only
    ],
)
def test_major_mesh_terms_become_observations(
    xml_studies: dict[str, Study], study_id: str, present: set[str]
) -> None:
    observations = xml_studies[study_id].targets.observations
    assert observations.dtype == np.float32 and not np.isnan(observations).any()
    assert _present(xml_studies[study_id]) == present


def test_reports_without_indexing_have_unknown_observations(
    xml_studies: dict[str, Study],
) -> None:
    assert np.isnan(xml_studies["CXR125"].targets.observations).all()  # "No Indexing"
    unknown = [s for s in xml_studies.values() if np.isnan(s.targets.observations).all()]
    assert len(unknown) == 29 and len(xml_studies) - len(unknown) == 960


def test_mesh_observations_match_the_open_i_gold_standard(
    xml_studies: dict[str, Study], shared_data: Path
) -> None:
    # NegBio's Open-I gold standard (ChestX-ray14 classes) is drawn from the same manual MeSH
    # indexing: equal where the classes are the same, and where cxr maps more terms to an
    # observation (cardiac shadow enlarged, costophrenic angle blunted, hydropneumothorax), a
    # superset of it.
    gold = pd.read_csv(shared_data / "report-labels" / "openi_gld_std14_ids_le_1000.csv")
    gold = gold.set_index("filename")
    ids = [i for i in gold.index if not np.isnan(xml_studies[i].targets.observations).all()]
    assert len(ids) == 940

    def ours(name: str) -> np.ndarray:
        return np.array(
            [xml_studies[i].targets.observations[OBSERVATIONS.index(name)] for i in ids]
        )

    for column, name in [
        ("Atelectasis", "Atelectasis"),
        ("Pneumonia", "Pneumonia"),
        ("Consolidation", "Consolidation"),
        ("Edema", "Edema"),
    ]:
        assert (ours(name) == gold.loc[ids, column].to_numpy()).all(), name
    lesion = gold.loc[ids, ["Nodule", "Mass"]].max(axis=1).to_numpy()
    assert (ours("Lung Lesion") == lesion).all() and lesion.sum() == 33
    for column, name in [
        ("Cardiomegaly", "Cardiomegaly"),
        ("Effusion", "Pleural Effusion"),
        ("Pneumothorax", "Pneumothorax"),
    ]:
        tagged, reference = ours(name), gold.loc[ids, column].to_numpy()
        assert (tagged >= reference).all() and tagged.sum() - reference.sum() <= 7, name


def test_mesh_labels_can_be_turned_off_and_r2gen_has_none(
    xml_folder: Path, r2gen_folder: Path
) -> None:
    off = list(build_adapter("iu_xray", xml_folder, mesh_labels=False).studies())
    assert all(np.isnan(s.targets.observations).all() for s in off)
    r2gen = list(build_adapter("iu_xray", r2gen_folder).studies())
    assert r2gen and all(np.isnan(s.targets.observations).all() for s in r2gen)
