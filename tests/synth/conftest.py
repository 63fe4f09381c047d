"""Phantom fixtures shared by the synth tests: ground truth of hundreds of studies, one small folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr.synth import PatientTruth, StudyTruth, SynthSummary, sample_patient, synthesize

TRUTH_SEED = 2024
TRUTH_PATIENTS = 300
FOLDER_SEED = 11
FOLDER_PATIENTS = 24


@pytest.fixture(scope="session")
def patients() -> list[PatientTruth]:
    """Ground truth of 300 patients (about 750 studies); nothing rendered."""
    return [sample_patient(TRUTH_SEED, number) for number in range(TRUTH_PATIENTS)]


@pytest.fixture(scope="session")
def studies(patients: list[PatientTruth]) -> list[StudyTruth]:
    return [study for patient in patients for study in patient.studies]


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    """A small written folder (128 px), with every third image compressed and half laterals."""
    out = tmp_path_factory.mktemp("phantom") / "out"
    summary = synthesize(
        out,
        FOLDER_PATIENTS,
        FOLDER_SEED,
        size=128,
        workers=2,
        lateral_fraction=0.5,
        compressed_fraction=0.5,
    )
    return out, summary
