"""cxr.inference.sr: the DICOM SR of a report, read back with highdicom and pydicom."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_files import dicom_dataset, write_dicom
from PIL import Image
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import (
    ComprehensiveSRStorage,
    ComputedRadiographyImageStorage,
    ImplicitVRLittleEndian,
    generate_uid,
)

from cxr.errors import InputError, UnreadableImage
from cxr.inference.outputs import Prediction
from cxr.inference.sr import (
    DEVICE_CODES,
    FINDING_CODES,
    OBSERVATION_CODES,
    OBSERVATION_PROBABILITY,
    OBSERVATIONS_SECTION,
    PROBABILITY_UNIT,
    PROGRESSION_CODES,
    STATUS_CODES,
    TUBE_LINE_CODES,
    read_headers,
    write_report_sr,
)
from cxr.io import read_dataset
from cxr.types import (
    CHANGE_FINDINGS,
    NOT_ASSESSED,
    OBSERVATION_THRESHOLD,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
)

REAL_PATIENT_ID = "MRN-73519"
REAL_PATIENT_NAME = "Doe^Jane"
STUDY_UID = generate_uid()
PRIOR_STUDY_UID = generate_uid()
FINDINGS = "Endotracheal tube tip 4 cm above the carina \u2014 no pneumothorax."
IMPRESSION = "Lines and tubes in satisfactory position."
# Findings-head probabilities: at, just under and well over the threshold; the rest unknown.
OBSERVATION_PROBS = {
    "Cardiomegaly": OBSERVATION_THRESHOLD,
    "Pleural Effusion": 0.49,
    "Edema": 0.9,
    "Support Devices": 0.97,
    "No Finding": 0.02,
}


def _image(path: Path, series_uid: str, number: int, view: str, **overrides: object) -> Path:
    """A 16x16 CR image of the study with full patient and study attributes; an override of
    None leaves that attribute out."""
    other_id = Dataset()
    other_id.PatientID = REAL_PATIENT_ID
    other_id.TypeOfPatientID = "TEXT"
    header: dict[str, object] = {
        "StudyInstanceUID": STUDY_UID,
        "SeriesInstanceUID": series_uid,
        "PatientID": REAL_PATIENT_ID,
        "PatientName": REAL_PATIENT_NAME,
        "PatientBirthDate": "19600101",
        "PatientSex": "F",
        "OtherPatientIDsSequence": [other_id],
        "AccessionNumber": "ACC001",
        "StudyID": "S1",
        "StudyDate": "20240102",
        "StudyTime": "101500",
        "ReferringPhysicianName": "",
        "SeriesNumber": number,
        "InstanceNumber": 1,
        "ViewPosition": view,
    }
    pixels = np.arange(256, dtype=np.uint16).reshape(16, 16)
    return write_dicom(
        path, pixels, sop_class=ComputedRadiographyImageStorage, **(header | overrides)
    )


@pytest.fixture
def source_paths(tmp_path: Path) -> list[str]:
    series = generate_uid()
    frontal = _image(tmp_path / "frontal.dcm", series, 1, "PA")
    lateral = _image(tmp_path / "lateral.dcm", series, 1, "LL")
    return [str(frontal), str(lateral)]


def _prediction(with_change: bool, observation_probs: dict[str, float] | None = None) -> Prediction:
    probs = {label: round(0.05 + 0.08 * i, 2) for i, label in enumerate(TUBE_LINE_LABELS)}
    change = (
        {"pleural_effusion": "worsening", "pneumothorax": "stable", "edema": "improving"}
        if with_change
        else {}
    )
    change_probs = (
        {"pleural_effusion": {"improving": 0.1, "stable": 0.2, "worsening": 0.7}}
        if with_change
        else {}
    )
    return Prediction(
        study_id=STUDY_UID,
        patient_id=REAL_PATIENT_ID,
        findings=FINDINGS,
        impression=IMPRESSION,
        tube_line_probs=probs,
        tube_line_status={
            "ETT": "Normal",
            "NGT": "Incompletely Imaged",
            "CVC": "Borderline",
            "Swan Ganz": "absent",
        },
        change=change,
        change_probs=change_probs,
        prior_study_id=PRIOR_STUDY_UID if with_change else None,
        images={"frontal": "frontal.dcm", "lateral": "lateral.dcm"},
        model="tiny-test-model",
        seconds=0.5,
        observation_probs=OBSERVATION_PROBS if observation_probs is None else observation_probs,
    )


def _items(report: Dataset, name: Code, value_type: str) -> list[Dataset]:
    return hd.sr.utils.find_content_items(report, name=name, value_type=value_type, recursive=True)


def _section(report: Dataset, name: Code) -> Dataset:
    """The report's one top-level section (CONTAINER) named `name`."""
    (section,) = [
        item
        for item in report.ContentSequence
        if item.ValueType == "CONTAINER" and _code(item.ConceptNameCodeSequence[0]) == name
    ]
    return section


def _code(item: Dataset) -> Code:
    return Code(item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning)


def _write(
    tmp_path: Path,
    paths: list[str],
    with_change: bool = True,
    pseudonymize: Callable[[str], str] | None = None,
    observation_probs: dict[str, float] | None = None,
) -> Path:
    prediction = _prediction(with_change, observation_probs)
    return write_report_sr(
        prediction, read_headers(paths), tmp_path / "sr", pseudonymize=pseudonymize
    )


def test_sr_joins_the_source_study_and_references_its_images(
    tmp_path: Path, source_paths: list[str]
) -> None:
    path = _write(tmp_path, source_paths)
    ds = pydicom.dcmread(path)
    sources = read_headers(source_paths)
    assert ds.SOPClassUID == ComprehensiveSRStorage
    assert ds.Modality == "SR"
    assert ds.StudyInstanceUID == STUDY_UID
    assert ds.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert (ds.PatientID, str(ds.PatientName), ds.AccessionNumber) == (
        REAL_PATIENT_ID,
        REAL_PATIENT_NAME,
        "ACC001",
    )
    assert ds.PatientBirthDate == "19600101"
    report = hd.sr.srread(path)
    evidence = report.get_evidence(current_procedure_only=True)
    assert [(e[0], e[2], e[3]) for e in evidence] == [
        (STUDY_UID, s.SOPInstanceUID, ComputedRadiographyImageStorage) for s in sources
    ]
    images = _items(report, codes.SCT.Source, "IMAGE")
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images] == [
        s.SOPInstanceUID for s in sources
    ]


def test_sr_holds_findings_and_impression_text(tmp_path: Path, source_paths: list[str]) -> None:
    report = hd.sr.srread(_write(tmp_path, source_paths))
    assert [i.TextValue for i in _items(report, codes.DCM.Finding, "TEXT")] == [FINDINGS]
    assert [i.TextValue for i in _items(report, codes.DCM.Impression, "TEXT")] == [IMPRESSION]
    assert report.ConceptNameCodeSequence[0].CodeValue == "18748-4"


def test_sr_holds_tube_line_probabilities_and_called_status(
    tmp_path: Path, source_paths: list[str]
) -> None:
    report = hd.sr.srread(_write(tmp_path, source_paths))
    expected = _prediction(True).tube_line_probs
    for label in TUBE_LINE_LABELS:
        (item,) = _items(report, TUBE_LINE_CODES[label], "NUM")
        value = item.MeasuredValueSequence[0]
        assert float(value.NumericValue) == pytest.approx(expected[label])
        assert value.MeasurementUnitsCodeSequence[0].CodeValue == PROBABILITY_UNIT.value
    (ett,) = _items(report, DEVICE_CODES["ETT"], "CODE")
    assert ett.ConceptCodeSequence[0].CodeValue == STATUS_CODES["normal"].value
    (ngt,) = _items(report, DEVICE_CODES["NGT"], "CODE")
    assert ngt.ConceptCodeSequence[0].CodeMeaning == "Incompletely imaged"
    assert len(ngt.ContentSequence) == len(TUBE_LINE_DEVICES["NGT"])


def test_sr_holds_change_with_the_prior_study(tmp_path: Path, source_paths: list[str]) -> None:
    report = hd.sr.srread(_write(tmp_path, source_paths, with_change=True))
    (prior,) = _items(report, codes.DCM.StudyInstanceUID, "UIDREF")
    # The change findings are observations too, with the same codes: read them in their section.
    report = _section(report, codes.DCM.ComparisonToPreviousStudies)
    assert prior.UID == PRIOR_STUDY_UID
    (effusion,) = _items(report, FINDING_CODES["pleural_effusion"], "CODE")
    assert effusion.ConceptCodeSequence[0].CodeValue == PROGRESSION_CODES[Change.WORSENING].value
    assert [float(n.MeasuredValueSequence[0].NumericValue) for n in effusion.ContentSequence] == [
        0.1,
        0.2,
        0.7,
    ]
    (edema,) = _items(report, FINDING_CODES["edema"], "CODE")
    assert edema.ConceptCodeSequence[0].CodeValue == "IMPROVING"
    # consolidation and pneumonia were not called, so they are not assessed
    (consolidation,) = _items(report, FINDING_CODES["consolidation"], "TEXT")
    assert consolidation.TextValue == NOT_ASSESSED


def test_sr_without_prior_says_change_not_assessed(tmp_path: Path, source_paths: list[str]) -> None:
    report = hd.sr.srread(_write(tmp_path, source_paths, with_change=False))
    comparison = _section(report, codes.DCM.ComparisonToPreviousStudies)
    for finding in CHANGE_FINDINGS:
        (item,) = _items(comparison, FINDING_CODES[finding], "TEXT")
        assert item.TextValue == NOT_ASSESSED
        assert _items(comparison, FINDING_CODES[finding], "CODE") == []
    assert _items(report, codes.DCM.StudyInstanceUID, "UIDREF") == []


def test_sr_holds_observations_called_at_the_threshold_with_their_probability(
    tmp_path: Path, source_paths: list[str]
) -> None:
    report = hd.sr.srread(_write(tmp_path, source_paths))
    section = _section(report, OBSERVATIONS_SECTION)
    names = [_code(item.ConceptNameCodeSequence[0]) for item in section.ContentSequence]
    assert names == [OBSERVATION_CODES[o] for o in OBSERVATIONS]
    calls = {}
    for observation, probability in OBSERVATION_PROBS.items():
        (item,) = _items(section, OBSERVATION_CODES[observation], "CODE")
        (num,) = item.ContentSequence
        assert _code(num.ConceptNameCodeSequence[0]) == OBSERVATION_PROBABILITY
        assert num.RelationshipType == "INFERRED FROM"
        value = num.MeasuredValueSequence[0]
        assert float(value.NumericValue) == pytest.approx(probability)
        assert value.MeasurementUnitsCodeSequence[0].CodeValue == PROBABILITY_UNIT.value
        calls[observation] = _code(item.ConceptCodeSequence[0])
    present, absent = STATUS_CODES["present"], STATUS_CODES["absent"]
    assert calls == {
        "Cardiomegaly": present,  # at the threshold
        "Pleural Effusion": absent,
        "Edema": present,
        "Support Devices": present,
        "No Finding": absent,
    }
    (effusion,) = _items(section, codes.SCT.PleuralEffusion, "CODE")
    assert effusion.ConceptNameCodeSequence[0].CodingSchemeDesignator == "SCT"
    for observation in set(OBSERVATIONS) - set(OBSERVATION_PROBS):
        (item,) = _items(section, OBSERVATION_CODES[observation], "TEXT")
        assert item.TextValue == NOT_ASSESSED


def test_sr_without_findings_head_says_observations_not_assessed(
    tmp_path: Path, source_paths: list[str]
) -> None:
    report = hd.sr.srread(_write(tmp_path, source_paths, observation_probs={}))
    section = _section(report, OBSERVATIONS_SECTION)
    assert [item.ValueType for item in section.ContentSequence] == ["TEXT"] * len(OBSERVATIONS)
    assert {item.TextValue for item in section.ContentSequence} == {NOT_ASSESSED}


def test_pseudonymize_replaces_patient_identity_everywhere(
    tmp_path: Path, source_paths: list[str]
) -> None:
    path = _write(tmp_path, source_paths, pseudonymize=lambda patient_id: f"anon{len(patient_id)}")
    ds = pydicom.dcmread(path)
    assert ds.PatientID == "anon9"
    assert ds.PatientName.family_name == "anon9"
    assert ds.PatientName.given_name == ""
    data = path.read_bytes()
    assert REAL_PATIENT_ID.encode() not in data
    assert b"Doe" not in data
    assert ds.StudyInstanceUID == STUDY_UID
    # the source headers passed in are not modified
    assert read_headers(source_paths)[0].PatientID == REAL_PATIENT_ID


def test_rewriting_a_study_replaces_its_file(tmp_path: Path, source_paths: list[str]) -> None:
    first = _write(tmp_path, source_paths)
    second = _write(tmp_path, source_paths)
    assert first == second
    assert [p.name for p in (tmp_path / "sr").iterdir()] == [first.name]


def test_sources_missing_type2_attributes_still_give_a_valid_sr(tmp_path: Path) -> None:
    path = _image(
        tmp_path / "bare.dcm",
        generate_uid(),
        1,
        "AP",
        AccessionNumber=None,
        StudyID=None,
        PatientSex="X",
    )
    report = hd.sr.srread(_write(tmp_path, [str(path)]))
    assert report.StudyInstanceUID == STUDY_UID
    assert report.AccessionNumber in ("", None)


def test_sources_from_two_studies_are_refused(tmp_path: Path, source_paths: list[str]) -> None:
    other = _image(tmp_path / "other.dcm", generate_uid(), 2, "PA", StudyInstanceUID=generate_uid())
    with pytest.raises(InputError, match="share a StudyInstanceUID"):
        _write(tmp_path, [source_paths[0], str(other)])


def test_no_sources_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no source"):
        write_report_sr(_prediction(False), [], tmp_path)


def test_unknown_status_is_refused(tmp_path: Path, source_paths: list[str]) -> None:
    prediction = _prediction(False)
    prediction.tube_line_status["ETT"] = "sideways"
    with pytest.raises(ValueError, match="sideways"):
        write_report_sr(prediction, read_headers(source_paths), tmp_path)


def test_read_headers_names_a_non_dicom_file(tmp_path: Path) -> None:
    not_dicom = tmp_path / "note.txt"
    not_dicom.write_text("not an image")
    with pytest.raises(InputError) as error:
        read_headers([str(not_dicom)])
    assert error.value.path == str(not_dicom)


def test_read_headers_reads_files_as_cxr_io_does(tmp_path: Path) -> None:
    """One reader decides how a header is read: sr refuses what cxr.io refuses, saying the same,
    and reads the legacy files cxr.io reads."""
    not_dicom = tmp_path / "note.txt"
    not_dicom.write_text("not an image")
    png = tmp_path / "chest.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(png)
    for path in (not_dicom, png):
        with pytest.raises(UnreadableImage) as from_io:
            read_dataset(path)
        with pytest.raises(InputError) as from_sr:
            read_headers([str(path)])
        assert (from_sr.value.path, from_sr.value.reason) == (str(path), from_io.value.reason)
    assert "PNG image, not DICOM" in from_sr.value.reason

    bare = dicom_dataset(np.zeros((16, 16), np.uint16), sop_class=ComputedRadiographyImageStorage)
    del bare.file_meta  # written as a bare implicit VR little endian data set, no preamble
    bare.save_as(tmp_path / "bare", implicit_vr=True, little_endian=True)
    (source,) = read_headers([str(tmp_path / "bare")])
    assert source.SOPInstanceUID == bare.SOPInstanceUID
    assert source.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_code_tables_cover_the_label_vocabularies() -> None:
    assert set(TUBE_LINE_CODES) == set(TUBE_LINE_LABELS)
    assert set(DEVICE_CODES) == set(TUBE_LINE_DEVICES)
    assert set(FINDING_CODES) == set(CHANGE_FINDINGS)
    assert list(OBSERVATION_CODES) == list(OBSERVATIONS)
    assert len(set(OBSERVATION_CODES.values())) == len(OBSERVATIONS)
    all_codes = [
        *TUBE_LINE_CODES.values(),
        *DEVICE_CODES.values(),
        *FINDING_CODES.values(),
        *OBSERVATION_CODES.values(),
        OBSERVATIONS_SECTION,
        OBSERVATION_PROBABILITY,
    ]
    assert all(len(code.value) <= 16 and len(code.meaning) <= 64 for code in all_codes)


@pytest.mark.parametrize(
    "name",
    [
        "CR-MONO1-10-chest",  # no file meta (pre-Part 10), no PatientID, no StudyDate
        "nih-cxr14-dx-chest.dcm",  # Secondary Capture
        "siim-acr-pneumothorax-cr-chest.dcm",
        "ExplVR_BigEnd.dcm",  # big endian, StudyTime written as 14:04:38
    ],
)
def test_real_headers_give_a_readable_sr(tmp_path: Path, shared_data: Path, name: str) -> None:
    (source,) = read_headers([str(shared_data / "cxr-dicom" / name)])
    prediction = _prediction(False)
    prediction.study_id = source.StudyInstanceUID
    path = write_report_sr(prediction, [source], tmp_path, pseudonymize=lambda _: "anon")
    report = hd.sr.srread(path)
    assert report.StudyInstanceUID == source.StudyInstanceUID
    assert report.get_evidence()[0][2] == source.SOPInstanceUID
    assert report.PatientID == "anon"


def test_legacy_study_time_is_made_conformant(tmp_path: Path, shared_data: Path) -> None:
    (source,) = read_headers([str(shared_data / "cxr-dicom" / "ExplVR_BigEnd.dcm")])
    report = hd.sr.srread(write_report_sr(_prediction(False), [source], tmp_path))
    assert report.StudyTime == "140438"


def test_real_header_without_uids_is_refused(tmp_path: Path, shared_data: Path) -> None:
    path = shared_data / "cxr-dicom" / "leadtools-8BitsJpegLossyGrayScale.dcm"
    with pytest.raises(InputError, match="no SOPInstanceUID") as error:
        write_report_sr(_prediction(False), read_headers([str(path)]), tmp_path)
    assert error.value.path == str(path)
