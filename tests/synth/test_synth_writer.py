"""DICOM files: realistic headers, stored range, MONOCHROME1 inversion, lossless compression."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cxr.synth import StudyTruth, sample_patient
from cxr.synth.writer import available_syntaxes, stored_values, write_image

SYNTAX_UIDS = {
    "explicit": "1.2.840.10008.1.2.1",
    "rle": "1.2.840.10008.1.2.5",
    "jpegls": "1.2.840.10008.1.2.4.80",
    "j2k": "1.2.840.10008.1.2.4.90",
}


def ramp(size: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, size, dtype=np.float32), (size, 1))


@pytest.fixture(scope="module")
def study_and_patient() -> tuple[StudyTruth, object]:
    patient = sample_patient(9, 1)
    return patient.studies[0], patient


@pytest.mark.parametrize("syntax", ["explicit", "rle", "jpegls", "j2k"])
@pytest.mark.parametrize(
    ("photometric", "bits"),
    [("MONOCHROME2", 10), ("MONOCHROME1", 16), ("MONOCHROME2", 12), ("MONOCHROME1", 15)],
)
def test_pixels_round_trip_losslessly(
    tmp_path: Path, study_and_patient: tuple, syntax: str, photometric: str, bits: int
) -> None:
    study, patient = study_and_patient
    acquisition = replace(
        study.frontal, photometric=photometric, bits_stored=bits, transfer_syntax=syntax
    )
    study = replace(study, frontal=acquisition)
    pixels = ramp()
    used = write_image(tmp_path / "frontal.dcm", patient, study, False, pixels)
    assert used == (syntax if syntax in available_syntaxes() | {"explicit"} else "explicit")
    ds = pydicom.dcmread(tmp_path / "frontal.dcm")
    assert ds.file_meta.TransferSyntaxUID == SYNTAX_UIDS[used]
    stored = ds.pixel_array
    assert stored.max() <= (1 << bits) - 1 and ds.BitsStored == bits and ds.HighBit == bits - 1
    np.testing.assert_array_equal(stored, stored_values(pixels, acquisition))
    dense = stored.astype(np.float64) / ((1 << bits) - 1)
    if photometric == "MONOCHROME1":
        dense = 1.0 - dense  # MONOCHROME1 stores bright = dense inverted
    np.testing.assert_allclose(dense, pixels, atol=1.0 / ((1 << bits) - 1))


def test_headers_are_realistic(tmp_path: Path, study_and_patient: tuple) -> None:
    study, patient = study_and_patient
    write_image(tmp_path / "f.dcm", patient, study, False, ramp())
    ds = pydicom.dcmread(tmp_path / "f.dcm")
    assert ds.PatientID == study.patient_id and ds.StudyInstanceUID == study.study_uid
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.SOPClassUID in ("1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1")
    assert ds.Modality in ("CR", "DX") and ds.BodyPartExamined == "CHEST"
    assert ds.ViewPosition == study.frontal.view.value
    assert ds.StudyDate == f"{study.study_datetime:%Y%m%d}"
    assert ds.StudyTime == f"{study.study_datetime:%H%M%S}"
    assert len(ds.PixelSpacing) == 2 and 330 < float(ds.PixelSpacing[0]) * 64 < 470  # mm of field
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert pydicom.uid.UID(uid).is_valid
    assert len({ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}) == 3


def test_lateral_is_written_as_ll_with_its_own_series(tmp_path: Path) -> None:
    patient = next(p for n in range(40) if (p := sample_patient(9, n)).studies[0].lateral)
    study = patient.studies[0]
    write_image(tmp_path / "f.dcm", patient, study, False, ramp())
    write_image(tmp_path / "l.dcm", patient, study, True, ramp())
    frontal, lateral = pydicom.dcmread(tmp_path / "f.dcm"), pydicom.dcmread(tmp_path / "l.dcm")
    assert lateral.ViewPosition == "LL" and frontal.ViewPosition in ("PA", "AP")
    assert lateral.StudyInstanceUID == frontal.StudyInstanceUID
    assert lateral.SeriesInstanceUID != frontal.SeriesInstanceUID


def test_all_three_encoders_are_available_here() -> None:
    assert available_syntaxes() == {"rle", "jpegls", "j2k"}
