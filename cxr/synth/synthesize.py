"""Writes a folder of phantom studies: DICOM files, reports.jsonl and labels.csv.

Layout: OUT_DIR/<PatientID>/<StudyDate>_<short study id>/<frontal|lateral>.dcm. Patients are
rendered in a process pool; each patient depends only on (seed, patient number), and results
are written in patient order, so the output is byte-identical whatever the worker count.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxr.errors import InputError
from cxr.synth.labels import LABEL_COLUMNS, label_row
from cxr.synth.phantom import render_view
from cxr.synth.reports import render_report
from cxr.synth.sampling import SamplingOptions, sample_patient
from cxr.synth.writer import write_image

log = logging.getLogger(__name__)

REPORTS_FILE = "reports.jsonl"
LABELS_FILE = "labels.csv"


@dataclass
class SynthSummary:
    """What `synthesize` wrote."""

    out_dir: Path
    patients: int
    studies: int
    images: int
    lateral_images: int
    compressed_images: int
    seconds: float
    transfer_syntaxes: dict[str, int] = field(default_factory=dict)

    @property
    def reports_path(self) -> Path:
        return self.out_dir / REPORTS_FILE

    @property
    def labels_path(self) -> Path:
        return self.out_dir / LABELS_FILE


@dataclass(frozen=True)
class _Job:
    out_dir: Path
    seed: int
    number: int
    size: int
    options: SamplingOptions


@dataclass
class _PatientOutput:
    reports: list[dict[str, str | None]]
    labels: list[dict[str, str | int]]
    syntaxes: list[str]
    laterals: int


def _make_patient(job: _Job) -> _PatientOutput:
    """Renders and writes every image of one patient; returns its report and label rows."""
    patient = sample_patient(job.seed, job.number, job.options)
    output = _PatientOutput([], [], [], 0)
    for study in patient.studies:
        folder = job.out_dir / patient.patient_id / study.folder_name
        views = [False] + ([True] if study.lateral is not None else [])
        for lateral in views:
            pixels = render_view(study, lateral, job.size, job.seed)
            name = "lateral.dcm" if lateral else "frontal.dcm"
            output.syntaxes.append(write_image(folder / name, patient, study, lateral, pixels))
        output.laterals += len(views) - 1
        rng = np.random.default_rng([job.seed, job.number, study.study_index, 17])
        output.reports.append(render_report(study, rng).to_json())
        output.labels.append(label_row(study))
    return output


def _outputs(jobs: list[_Job], workers: int) -> Iterator[_PatientOutput]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_make_patient, jobs)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(
            _make_patient, jobs, chunksize=max(1, min(8, len(jobs) // (4 * workers)))
        )


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "output path exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(out_dir, "output folder is not empty (pass overwrite=True / --overwrite)")


def synthesize(
    out_dir: Path,
    patients: int,
    seed: int,
    size: int = 512,
    workers: int = 2,
    lateral_fraction: float = 0.35,
    compressed_fraction: float = 0.3,
    overwrite: bool = False,
) -> SynthSummary:
    """Writes `patients` phantom patients (1-4 studies each) to `out_dir`, deterministically.

    Args:
        out_dir: folder to write; must be empty or absent unless `overwrite`.
        patients: number of patients.
        seed: seed of everything; patient IDs and UIDs differ between seeds.
        size: image rows and columns.
        workers: processes rendering patients in parallel (output does not depend on it).
        lateral_fraction: probability that a study also has a lateral view.
        compressed_fraction: probability that an image is losslessly compressed.
        overwrite: allow writing into a non-empty folder.
    """
    out_dir = Path(out_dir)
    if patients < 1 or size < 64 or not 0.0 <= lateral_fraction <= 1.0:
        raise InputError(out_dir, "need patients >= 1, size >= 64 and 0 <= lateral_fraction <= 1")
    _check_out_dir(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    options = SamplingOptions(
        lateral_fraction=lateral_fraction, compressed_fraction=compressed_fraction
    )
    jobs = [_Job(out_dir, seed, number, size, options) for number in range(patients)]
    summary = SynthSummary(out_dir, patients, 0, 0, 0, 0, 0.0)
    with (
        (out_dir / REPORTS_FILE).open("w", encoding="utf-8") as reports,
        (out_dir / LABELS_FILE).open("w", encoding="utf-8", newline="") as labels,
    ):
        table = csv.DictWriter(labels, fieldnames=list(LABEL_COLUMNS), lineterminator="\n")
        table.writeheader()
        for output in _outputs(jobs, workers):
            for report in output.reports:
                reports.write(json.dumps(report, ensure_ascii=False) + "\n")
            table.writerows(output.labels)
            summary.studies += len(output.reports)
            summary.images += len(output.syntaxes)
            summary.lateral_images += output.laterals
            for syntax in output.syntaxes:
                summary.transfer_syntaxes[syntax] = summary.transfer_syntaxes.get(syntax, 0) + 1
    summary.compressed_images = summary.images - summary.transfer_syntaxes.get("explicit", 0)
    summary.seconds = time.perf_counter() - start
    log.info(
        "wrote %d studies (%d images) of %d patients to %s in %.1f s",
        summary.studies,
        summary.images,
        patients,
        out_dir,
        summary.seconds,
    )
    return summary
