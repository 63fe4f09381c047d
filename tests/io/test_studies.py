"""cxr.io.studies (and `cxr index`): roles, chosen views, priors, skipped files, JSONL round trip."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.uid import generate_uid

from cxr.cli import main
from cxr.errors import InputError
from cxr.io import IndexedStudy, StudyIndex, index_folder, read_study_index
from cxr.io.dicom import DicomHeader
from cxr.io.studies import assign_role, link_priors
from cxr.types import ImageRole

PIXELS = np.zeros((16, 16), dtype=np.uint16)

# patient -> studies (study date) -> images (name, header keywords). Times are AcquisitionTime.
FOLDER: dict[str, dict[str, list[tuple[str, dict[str, str]]]]] = {
    "alice": {
        "20200101": [
            ("pa", {"ViewPosition": "PA", "AcquisitionTime": "090000"}),
            ("lat", {"ViewPosition": "LL", "AcquisitionTime": "090100"}),
        ],
        "20210615": [
            ("ap", {"ViewPosition": "AP", "AcquisitionTime": "100500"}),
            ("pa-early", {"ViewPosition": "PA", "AcquisitionTime": "100000"}),
            ("pa-retake", {"ViewPosition": "PA", "AcquisitionTime": "100200"}),
            ("decubitus", {"ViewPosition": "LLD", "AcquisitionTime": "100300"}),
        ],
        "20220301": [
            ("oriented-lat", {"PatientOrientation": "A\\F"}),
            ("oriented-frontal", {"PatientOrientation": "L\\F"}),
        ],
    },
    "bob": {
        "20190505": [("described", {"SeriesDescription": "CHEST PA ERECT"})],
        "20190506": [
            ("protocol-lat", {"ProtocolName": "Thorax_lateral"}),
            ("hip", {"ViewPosition": "AP", "BodyPartExamined": "HIP"}),
        ],
    },
    "carol": {
        "": [("undated", {"ViewPosition": "AP"})],  # no StudyDate: no prior either way
        "20230101": [("unknown-view", {})],
    },
}


def _write_folder(root: Path, make: SimpleNamespace) -> dict[str, str]:
    """Writes FOLDER plus junk; returns study_id by (patient, date)."""
    study_ids: dict[str, str] = {}
    for patient, studies in FOLDER.items():
        for study_date, images in studies.items():
            study_uid = generate_uid()
            study_ids[f"{patient}/{study_date}"] = study_uid
            for name, keywords in images:
                header = {"PatientID": patient, "StudyInstanceUID": study_uid, **keywords}
                if study_date:
                    header |= {"StudyDate": study_date, "StudyTime": "080000"}
                    header.setdefault("AcquisitionDate", study_date)
                make.write_dicom(root / patient / study_date / f"{name}.dcm", PIXELS, **header)
    return study_ids


def _write_junk(root: Path, make: SimpleNamespace) -> None:
    junk = root / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("a report, not an image\n")
    (junk / "empty.dcm").write_bytes(b"")
    make.write_dicom(junk / "rgb.dcm", np.zeros((16, 16, 3), np.uint8), photometric="RGB")
    no_study = make.dicom_dataset(PIXELS)
    del no_study.StudyInstanceUID
    no_study.save_as(junk / "no-study.dcm", enforce_file_format=True)
    no_rows = make.dicom_dataset(PIXELS)
    del no_rows.Rows
    no_rows.save_as(junk / "no-rows.dcm", enforce_file_format=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, make: SimpleNamespace) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("dicom")
    study_ids = _write_folder(root, make)
    _write_junk(root, make)
    # A duplicate: the same SOP instance exported twice.
    original = root / "alice" / "20200101" / "pa.dcm"
    (root / "alice" / "20200101" / "pa_copy.dcm").write_bytes(original.read_bytes())
    return SimpleNamespace(
        root=root, study_ids=study_ids, index=index_folder(root, workers=1, progress=False)
    )


def _study(folder: SimpleNamespace, key: str) -> IndexedStudy:
    uid = folder.study_ids[key]
    return next(study for study in folder.index.studies if study.study_id == uid)


def _name(path: str | None) -> str | None:
    return Path(path).stem if path else None


def test_every_study_is_found_and_sorted_by_patient_then_date(folder: SimpleNamespace) -> None:
    studies = folder.index.studies
    assert len(studies) == 7
    assert [s.patient_id for s in studies] == ["alice"] * 3 + ["bob"] * 2 + ["carol"] * 2
    alice = [s.study_datetime for s in studies[:3]]
    assert alice == sorted(alice)
    assert studies[-1].study_datetime is None  # undated studies last within the patient


def test_roles_and_reasons(folder: SimpleNamespace) -> None:
    images = {
        Path(image.path).stem: image for study in folder.index.studies for image in study.images
    }
    expected = {
        "pa": (ImageRole.FRONTAL, "ViewPosition=PA"),
        "lat": (ImageRole.LATERAL, "ViewPosition=LL"),
        "ap": (ImageRole.FRONTAL, "ViewPosition=AP"),
        "decubitus": (ImageRole.OTHER, "ViewPosition=LLD"),
        "oriented-lat": (ImageRole.LATERAL, "PatientOrientation=A\\F"),
        "oriented-frontal": (ImageRole.FRONTAL, "PatientOrientation=L\\F"),
        "described": (ImageRole.FRONTAL, "SeriesDescription contains 'PA'"),
        "protocol-lat": (ImageRole.LATERAL, "ProtocolName contains 'LATERAL'"),
        "unknown-view": (ImageRole.OTHER, "no view information"),
    }
    for name, (role, reason) in expected.items():
        assert (images[name].role, images[name].role_reason) == (role, reason), name


def test_frontal_prefers_pa_then_the_latest_acquisition(folder: SimpleNamespace) -> None:
    study = _study(folder, "alice/20210615")
    assert _name(study.frontal) == "pa-retake"  # PA beats a later AP; the retake beats the first
    assert study.lateral is None
    first = _study(folder, "alice/20200101")
    assert (_name(first.frontal), _name(first.lateral)) == ("pa", "lat")
    oriented = _study(folder, "alice/20220301")
    assert (_name(oriented.frontal), _name(oriented.lateral)) == (
        "oriented-frontal",
        "oriented-lat",
    )


def test_priors_link_to_the_patients_most_recent_earlier_study(folder: SimpleNamespace) -> None:
    ids = folder.study_ids
    assert _study(folder, "alice/20200101").prior_study_id is None
    assert _study(folder, "alice/20210615").prior_study_id == ids["alice/20200101"]
    assert _study(folder, "alice/20220301").prior_study_id == ids["alice/20210615"]
    assert _study(folder, "bob/20190506").prior_study_id == ids["bob/20190505"]
    assert _study(folder, "carol/").prior_study_id is None
    assert _study(folder, "carol/20230101").prior_study_id is None  # the undated one is no prior


def test_skipped_files_carry_their_reasons(folder: SimpleNamespace) -> None:
    reasons = {Path(entry.path).name: entry.reason for entry in folder.index.skipped}
    assert set(reasons) == {
        "notes.txt", "empty.dcm", "rgb.dcm", "no-study.dcm", "no-rows.dcm", "pa_copy.dcm",
    }  # fmt: skip
    assert reasons["notes.txt"].startswith("not DICOM")
    assert reasons["empty.dcm"].startswith("not DICOM")
    assert "colour photometric RGB" in reasons["rgb.dcm"]
    assert reasons["no-study.dcm"].startswith("no StudyInstanceUID")
    assert "Rows missing" in reasons["no-rows.dcm"]
    # pa.dcm sorts first and is kept; pa_copy.dcm is the duplicate.
    assert reasons["pa_copy.dcm"].startswith("duplicate SOPInstanceUID")
    assert reasons["pa_copy.dcm"].endswith("pa.dcm")


def test_duplicates_and_non_chest_are_flagged(folder: SimpleNamespace) -> None:
    first = _study(folder, "alice/20200101")
    assert [flag.split(":")[0] for flag in first.flags] == ["duplicate_sop"]
    assert first.flags[0].endswith("pa_copy.dcm")
    assert len(first.images) == 2
    assert "non_chest_body_part:HIP" in _study(folder, "bob/20190506").flags
    assert _study(folder, "alice/20210615").flags == []


def test_jsonl_round_trips_exactly(folder: SimpleNamespace, tmp_path: Path) -> None:
    skipped_path = folder.index.write_jsonl(tmp_path / "out" / "studies.jsonl")
    assert skipped_path == tmp_path / "out" / "skipped.jsonl"
    assert read_study_index(tmp_path / "out" / "studies.jsonl") == folder.index.studies
    lines = (tmp_path / "out" / "studies.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert set(record) == {
        "study_id", "patient_id", "study_datetime", "frontal", "lateral", "prior_study_id",
        "images", "flags",
    }  # fmt: skip
    assert record["study_datetime"] == "2020-01-01T08:00:00"
    skipped = [json.loads(line) for line in skipped_path.read_text().splitlines()]
    assert len(skipped) == len(folder.index.skipped) and set(skipped[0]) == {"path", "reason"}


def test_worker_processes_give_the_same_index(folder: SimpleNamespace) -> None:
    parallel = index_folder(folder.root, workers=2, progress=False)
    assert parallel == folder.index


def test_missing_folder_and_bad_index_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        index_folder(tmp_path / "nowhere")
    (tmp_path / "bad.jsonl").write_text('{"study_id": "1"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_study_index(tmp_path / "bad.jsonl")


@pytest.mark.parametrize(
    ("header", "role", "reason"),
    [
        (DicomHeader(view_position="PA", patient_orientation="A\\F"), ImageRole.FRONTAL, "ViewPosition=PA"),
        (DicomHeader(view_position="LATERAL"), ImageRole.LATERAL, "ViewPosition=LATERAL"),
        (DicomHeader(view_position="XYZ", patient_orientation="P\\F"), ImageRole.LATERAL, "PatientOrientation=P\\F"),
        (DicomHeader(patient_orientation="L\\P"), ImageRole.FRONTAL, "PatientOrientation=L\\P"),
        (DicomHeader(series_description="PA AND LAT"), ImageRole.OTHER, "no view information"),
        (DicomHeader(modality="CT", view_position="AP"), ImageRole.OTHER, "Modality=CT"),
    ],
)  # fmt: skip
def test_assign_role_precedence(header: DicomHeader, role: ImageRole, reason: str) -> None:
    assert assign_role(header) == (role, reason)


def test_studies_at_the_same_time_are_not_each_others_prior() -> None:
    def study(uid: str, day: int) -> IndexedStudy:
        return IndexedStudy(uid, "p", datetime(2020, 1, day))

    studies = [study("a", 1), study("b", 2), study("c", 2), study("d", 3)]
    link_priors(studies)
    assert [s.prior_study_id for s in studies] == [None, "a", "a", "c"]


def test_cli_index_writes_both_files_and_a_summary(
    folder: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "studies.jsonl"
    code = main(
        [
            "index",
            str(folder.root),
            "--output",
            str(output),
            "--workers",
            "1",
            "--progress",
            "false",
        ]
    )
    assert code == 0
    assert read_study_index(output) == folder.index.studies
    assert (tmp_path / "skipped.jsonl").is_file()
    printed = capsys.readouterr().out
    assert "7 studies (3 with a prior), 13 images, 6 skipped files" in printed


def test_cli_index_of_a_missing_folder_exits_2(tmp_path: Path) -> None:
    assert main(["index", str(tmp_path / "nowhere"), "--output", str(tmp_path / "s.jsonl")]) == 2


def test_study_index_of_nothing(tmp_path: Path) -> None:
    assert index_folder(tmp_path, progress=False) == StudyIndex([], [])
