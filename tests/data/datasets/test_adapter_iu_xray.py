"""IU X-ray adapter on the real Open-I XML sample and the real R2Gen annotation file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cxr.data.datasets import build_adapter
from cxr.data.datasets.iu_xray import image_key, read_open_i_xml, report_key
from cxr.data.splits import Split
from cxr.errors import InputError


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
        study_id, sections, _ = read_open_i_xml(path)
        study = next(s for s in studies if s.study_id == study_id)
        assert (study.targets.findings or "") == sections.get("findings", "")
        assert (study.targets.impression or "") == sections.get("impression", "")


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
