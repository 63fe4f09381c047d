"""Shared fixtures. The real public data lives beside the project, in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public data (DICOM files, IU reports, labels, ...)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; it must sit at ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small `cxr synth` folder: 16 phantom patients (1-4 studies each) at 128 px."""
    from cxr.synth import synthesize

    folder = tmp_path_factory.mktemp("phantom") / "train"
    synthesize(folder, patients=16, seed=11, size=128, workers=1)
    return folder
