"""Writes phantom images as DICOM files with realistic CR/DX headers.

Pixels are stored in the BitsStored range the header declares; MONOCHROME1 files store
inverted values (bright = dense is restored by the reader). A fraction of files is
compressed losslessly (RLE via pydicom, JPEG-LS via pyjpegls, JPEG 2000 via
pylibjpeg-openjpeg); when an encoder is missing the file is written uncompressed.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.encoders import (
    JPEG2000LosslessEncoder,
    JPEGLSLosslessEncoder,
    RLELosslessEncoder,
)
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from cxr.synth.sampling import derived_uid
from cxr.synth.truth import Acquisition, PatientTruth, StudyTruth, View

log = logging.getLogger(__name__)

CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")

_ENCODERS = {
    "rle": (RLELossless, RLELosslessEncoder),
    "jpegls": (JPEGLSLossless, JPEGLSLosslessEncoder),
    "j2k": (JPEG2000Lossless, JPEG2000LosslessEncoder),
}


@cache
def available_syntaxes() -> frozenset[str]:
    """Names of the compressed transfer syntaxes that can be encoded here."""
    return frozenset(name for name, (_, encoder) in _ENCODERS.items() if encoder.is_available)


def stored_values(pixels: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """Float [0, 1] bright = dense -> uint16 in [0, 2**BitsStored - 1], inverted for MONOCHROME1."""
    top = (1 << acquisition.bits_stored) - 1
    values = np.rint(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint16)
    if acquisition.photometric == "MONOCHROME1":
        values = (top - values).astype(np.uint16)
    return values


def _patient_module(ds: Dataset, patient: PatientTruth, study: StudyTruth) -> None:
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = f"{patient.birth_date:%Y%m%d}"
    ds.PatientSex = patient.sex
    age = (study.study_datetime - patient.birth_date).days // 365
    ds.PatientAge = f"{age:03d}Y"


def _study_module(ds: Dataset, study: StudyTruth) -> None:
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = f"{study.study_datetime:%Y%m%d}"
    ds.StudyTime = f"{study.study_datetime:%H%M%S}"
    ds.AccessionNumber = study.accession
    ds.StudyID = study.short_id
    ds.ReferringPhysicianName = ""
    views = "2 VIEWS" if study.lateral is not None else "1 VIEW"
    portable = " PORTABLE" if study.frontal.view is View.AP else ""
    ds.StudyDescription = f"XR CHEST {views}{portable}"


def _series_module(ds: Dataset, study: StudyTruth, acquisition: Acquisition, lateral: bool) -> None:
    ds.Modality = acquisition.modality
    ds.SeriesInstanceUID = derived_uid(
        study.study_uid, "lateral" if lateral else "frontal", "series"
    )
    ds.SeriesNumber = 2 if lateral else 1
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.SeriesDescription = f"CHEST {'LAT' if lateral else acquisition.view.value}"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = acquisition.view.value
    ds.PatientOrientation = ["P", "F"] if lateral else ["L", "F"]
    ds.Laterality = ""
    ds.Manufacturer = "cxr"
    ds.ManufacturerModelName = "phantom"
    ds.InstitutionName = "Phantom General Hospital"
    ds.StationName = "ICU-PORTABLE" if acquisition.view is View.AP else "XR-ROOM-2"


def _acquisition_module(
    ds: Dataset, study: StudyTruth, acquisition: Acquisition, size: int
) -> None:
    ds.KVP = 110 if acquisition.view is not View.AP else 90
    ds.ExposureTime = 10 if acquisition.view is not View.AP else 8
    ds.XRayTubeCurrent = 250 if acquisition.view is not View.AP else 200
    ds.DistanceSourceToDetector = 1800 if acquisition.view is not View.AP else 1000
    spacing = round(study.thorax.fov_cm * 10.0 / size / acquisition.zoom, 4)
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.PixelSpacing = [spacing, spacing]
    ds.AcquisitionDate = ds.StudyDate
    ds.AcquisitionTime = ds.StudyTime
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime


def _image_module(ds: Dataset, acquisition: Acquisition, values: np.ndarray) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = acquisition.photometric
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated = 16
    ds.BitsStored = acquisition.bits_stored
    ds.HighBit = acquisition.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1 if acquisition.photometric == "MONOCHROME1" else -1
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    if acquisition.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
    if acquisition.window:
        top = (1 << acquisition.bits_stored) - 1
        middle = float(np.percentile(values[::8, ::8], 50))
        ds.WindowCenter = round(middle)
        ds.WindowWidth = round(top * 0.85)
        ds.VOILUTFunction = "LINEAR"


def build_dataset(
    patient: PatientTruth, study: StudyTruth, lateral: bool, pixels: np.ndarray
) -> Dataset:
    """The DICOM dataset of one image (uncompressed pixel data)."""
    acquisition = study.lateral if lateral else study.frontal
    if acquisition is None:
        raise ValueError(f"study {study.study_uid} has no lateral acquisition")
    values = stored_values(pixels, acquisition)
    sop_class = CR_IMAGE_STORAGE if acquisition.modality == "CR" else DX_IMAGE_STORAGE
    sop_uid = derived_uid(study.study_uid, "lateral" if lateral else "frontal", "instance")
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = f"{study.study_datetime:%Y%m%d}"
    ds.InstanceCreationTime = f"{study.study_datetime:%H%M%S}"
    _patient_module(ds, patient, study)
    _study_module(ds, study)
    _series_module(ds, study, acquisition, lateral)
    _acquisition_module(ds, study, acquisition, values.shape[0])
    _image_module(ds, acquisition, values)
    ds.PixelData = values.tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def write_image(
    path: Path, patient: PatientTruth, study: StudyTruth, lateral: bool, pixels: np.ndarray
) -> str:
    """Writes one DICOM file; returns the transfer syntax name actually used."""
    ds = build_dataset(patient, study, lateral, pixels)
    acquisition = study.lateral if lateral else study.frontal
    assert acquisition is not None
    syntax = acquisition.transfer_syntax
    if syntax != "explicit" and syntax not in available_syntaxes():
        log.debug("no %s encoder here; writing %s uncompressed", syntax, path)
        syntax = "explicit"
    if syntax != "explicit":
        ds.compress(
            _ENCODERS[syntax][0], stored_values(pixels, acquisition), generate_instance_uid=False
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return syntax
