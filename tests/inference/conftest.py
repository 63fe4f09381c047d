"""Fixtures of the inference tests: a tiny untrained model, phantom DICOM folders, a runner.

The model is untrained, so its reports are nonsense, but they are deterministic: what the tests
check is the plumbing around it (which studies are reported, where, once, and how).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pytest
import torch
from dicom_files import write_dicom
from pydicom.uid import ComputedRadiographyImageStorage

from cxr.cli import main
from cxr.data.tokenizer import train_report_tokenizer
from cxr.models import ConnectorConfig, DecoderConfig, EncoderConfig, HeadsConfig, ReportModel
from cxr.synth import synthesize

REPORT_TEXTS = [
    "FINDINGS: Heart size is normal. Lungs are clear.",
    "IMPRESSION: No acute cardiopulmonary process.",
    "Endotracheal tube tip 4 cm above the carina.",
    "Small left pleural effusion. No pneumothorax.",
    "Worsening right lower lobe consolidation.",
]

# Small everywhere: the whole module runs in seconds on a shared 2-core machine.
MAX_NEW_TOKENS = "10"
PHANTOM_PATIENTS = 4
PHANTOM_SEED = 11


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny report model saved with `save_pretrained` (64 px, 1-layer decoder)."""
    tokenizer = train_report_tokenizer(REPORT_TEXTS * 4, vocab_size=300)
    torch.manual_seed(0)
    model = ReportModel(
        EncoderConfig(name="resnet10t", image_size=64),
        ConnectorConfig(num_queries=4),
        DecoderConfig(arch={"n_layer": 1, "n_embd": 64, "n_head": 2, "n_positions": 512}),
        HeadsConfig(hidden=32),
        tokenizer,
    )
    return model.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phantom studies of a few patients (1-4 serial studies each, so some have priors).

    The folder also holds the phantom's reports.jsonl and labels.csv, which the index skips
    as non-DICOM files.
    """
    folder = tmp_path_factory.mktemp("phantom") / "dicom"
    synthesize(folder, patients=PHANTOM_PATIENTS, seed=PHANTOM_SEED, size=128, workers=1)
    return folder


class GenerateRunner(Protocol):
    def __call__(self, dicom_dir: Path, output: Path, *options: str) -> int: ...


@pytest.fixture(scope="session")
def run_generate(model_dir: Path) -> GenerateRunner:
    """Runs `cxr generate DICOM_DIR --model <tiny model> -o OUTPUT [options]` in this process
    with small decoding settings and no worker processes; returns the exit code."""

    def run(dicom_dir: Path, output: Path, *options: str) -> int:
        return main(
            [
                "generate", str(dicom_dir), "--model", str(model_dir), "-o", str(output),
                "--workers", "0", "--max-new-tokens", MAX_NEW_TOKENS, *options,
            ]
        )  # fmt: skip

    return run


class CrWriter(Protocol):
    def __call__(
        self,
        path: Path,
        study_uid: str,
        patient_id: str,
        view: str = "PA",
        study_date: str = "20240101",
        colour: bool = False,
        size: int = 64,
    ) -> Path: ...


@pytest.fixture(scope="session")
def write_cr() -> CrWriter:
    """Writes an uncompressed CR image (greyscale, or RGB with `colour`); see `_write_cr`."""
    return _write_cr


def _write_cr(
    path: Path,
    study_uid: str,
    patient_id: str,
    view: str = "PA",
    study_date: str = "20240101",
    colour: bool = False,
    size: int = 64,
) -> Path:
    """Writes an uncompressed CR image (12-bit greyscale ramp, or 8-bit RGB with `colour`)."""
    ramp = np.linspace(0, 1, size * size).reshape(size, size)
    if colour:
        pixels = np.repeat((ramp * 255).astype(np.uint8)[:, :, None], 3, axis=2)
        photometric, bits_stored = "RGB", 8
    else:
        pixels = (ramp * 4095).astype(np.uint16)
        photometric, bits_stored = "MONOCHROME2", 12
    return write_dicom(
        path,
        pixels,
        photometric=photometric,
        bits_stored=bits_stored,
        sop_class=ComputedRadiographyImageStorage,
        StudyInstanceUID=study_uid,
        PatientID=patient_id,
        PatientName=f"{patient_id}^Test",
        StudyDate=study_date,
        StudyTime="101500",
        ViewPosition=view,
    )
