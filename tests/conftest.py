"""Shared fixtures. The real public data lives beside the project, in ../shared/data."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The code of model folders loaded with trust_remote_code is imported from a fresh cache of
# this run, set before transformers is imported: it reads the place once, and its modules
# of one folder name must not come from an earlier run.
_MODULES_CACHE = tempfile.mkdtemp(prefix="cxr-test-hf-modules-")
os.environ["HF_MODULES_CACHE"] = _MODULES_CACHE
atexit.register(shutil.rmtree, _MODULES_CACHE, ignore_errors=True)

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
