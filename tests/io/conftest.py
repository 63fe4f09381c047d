"""Fixtures of the ingest tests: the real DICOM folder, and `make`, the shared file factory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import dicom_files
import pytest

CXR_DICOM = "cxr-dicom"


@pytest.fixture(scope="session")
def cxr_dicom(shared_data: Path) -> Path:
    """The real DICOM files (see inventory.tsv there)."""
    return shared_data / CXR_DICOM


@pytest.fixture(scope="session")
def make() -> SimpleNamespace:
    """The builders of tests/dicom_files.py, which every test folder writes its files with."""
    return SimpleNamespace(
        dicom_dataset=dicom_files.dicom_dataset,
        write_dicom=dicom_files.write_dicom,
        encode_pixels=dicom_files.encode_pixels,
        ramp=dicom_files.ramp,
        chest_phantom=dicom_files.chest_phantom,
        write_png=dicom_files.write_png,
    )
