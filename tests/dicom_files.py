"""Writes the DICOM (and PNG) files the tests generate: one factory for every test folder.

`write_dicom(path, pixels, ...)` writes one image. The pixel encoding is set by arguments
(photometric interpretation, BitsStored, SOP class, transfer syntax, compressing as needed);
any other attribute is a DICOM keyword argument (`PatientID=`, `StudyInstanceUID=`,
`ViewPosition=`, `StudyDate=`, `WindowCenter=`, ...), and a keyword set to None leaves that
attribute out of the file. Tests import it directly (`from dicom_files import write_dicom`),
as the model tests import tiny_models: pytest puts tests/ on sys.path for tests/conftest.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

# The Modality a file of each SOP class gets unless the test says otherwise.
MODALITIES = {
    DigitalXRayImageStorageForPresentation: "DX",
    ComputedRadiographyImageStorage: "CR",
}


def dicom_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    sop_class: UID = DigitalXRayImageStorageForPresentation,
    **header: Any,
) -> Dataset:
    """A single-image data set around `pixels` (new study, series and SOP instance UIDs).

    Defaults: PatientID P0, BodyPartExamined CHEST, the SOP class's Modality, BitsStored the
    full width of the pixels' dtype. `header` sets any further keyword; None removes it.
    """
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = sop_class
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.PatientID = "P0"
    dataset.Modality = MODALITIES.get(sop_class, "OT")
    dataset.BodyPartExamined = "CHEST"
    dataset.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    for keyword, value in header.items():
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    return dataset


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    sop_class: UID = DigitalXRayImageStorageForPresentation,
    **header: Any,
) -> Path:
    """Writes `pixels` as a DICOM file in `transfer_syntax`; see `dicom_dataset` for the rest."""
    dataset = dicom_dataset(
        pixels, photometric=photometric, bits_stored=bits_stored, sop_class=sop_class, **header
    )
    encode_pixels(dataset, transfer_syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def encode_pixels(dataset: Dataset, transfer_syntax: UID) -> None:
    """Re-encodes the data set's pixel data in `transfer_syntax`."""
    if transfer_syntax == JPEGBaseline8Bit:
        buffer = io.BytesIO()
        Image.fromarray(dataset.pixel_array.astype(np.uint8)).save(buffer, "JPEG", quality=95)
        dataset.PixelData = encapsulate([buffer.getvalue()])
        dataset["PixelData"].VR = "OB"
        dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    elif transfer_syntax == JPEG2000:
        dataset.compress(JPEG2000, j2k_psnr=[90])
    elif transfer_syntax.is_compressed:
        dataset.compress(transfer_syntax)
    elif transfer_syntax == ExplicitVRBigEndian:
        values = dataset.pixel_array
        dataset.PixelData = values.astype(values.dtype.newbyteorder(">")).tobytes()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    else:
        dataset.file_meta.TransferSyntaxUID = transfer_syntax


def ramp(shape: tuple[int, int], low: int, high: int, dtype: type) -> np.ndarray:
    """Values from `low` to `high` (inclusive) along the rows, constant along the columns."""
    rows = np.linspace(low, high, shape[0]).round().astype(np.int64)
    return np.repeat(rows[:, None], shape[1], axis=1).astype(dtype)


def chest_phantom(size: int = 128) -> np.ndarray:
    """A crude chest (uint16): dark lungs either side of a bright mediastinum, mid-grey body."""
    image = np.full((size, size), 1800, dtype=np.uint16)
    yy, xx = np.mgrid[0:size, 0:size] / size
    lungs = (((xx - 0.3) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1) | (
        ((xx - 0.7) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1
    )
    image[lungs] = 600
    image[(np.abs(xx - 0.5) < 0.06)] = 3500
    image[: size // 16] = 100  # air above the shoulders
    return image


def write_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path
