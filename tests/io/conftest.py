"""Generated DICOM/PNG fixtures for the ingest tests: pydicom writes each file in the test."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

CXR_DICOM = "cxr-dicom"


def chest_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **header: Any,
) -> Dataset:
    """A single-frame DX data set around `pixels`; `header` sets any further keywords."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = DigitalXRayImageStorageForPresentation
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.PatientID = "P0"
    dataset.Modality = "DX"
    dataset.BodyPartExamined = "CHEST"
    bits = bits_stored or pixels.dtype.itemsize * 8
    dataset.set_pixel_data(pixels, photometric, bits)
    for keyword, value in header.items():
        setattr(dataset, keyword, value)
    return dataset


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **header: Any,
) -> Path:
    """Writes `pixels` as a DICOM file in the given transfer syntax (compressing as needed)."""
    dataset = chest_dataset(pixels, photometric=photometric, bits_stored=bits_stored, **header)
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


@pytest.fixture(scope="session")
def cxr_dicom(shared_data: Path) -> Path:
    """The real DICOM files (see inventory.tsv there)."""
    return shared_data / CXR_DICOM


@pytest.fixture(scope="session")
def make() -> SimpleNamespace:
    """The fixture builders above (fixtures, not imports, so any pytest import mode works)."""
    return SimpleNamespace(
        chest_dataset=chest_dataset,
        write_dicom=write_dicom,
        encode_pixels=encode_pixels,
        ramp=ramp,
        chest_phantom=chest_phantom,
        write_png=write_png,
    )
