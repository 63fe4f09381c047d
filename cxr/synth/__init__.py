"""Phantom chest X-ray studies with exact ground truth: DICOM files, reports and labels.

`synthesize(out_dir, patients, seed)` writes a folder; `sample_patient(seed, number)` gives
the ground truth (`PatientTruth` / `StudyTruth`) without writing anything; `render_view`
draws one image of a study; `label_row` and `observation_labels` give its labels.csv row and
its 14 CheXpert observations. `cxr.data.datasets.records.read_labels` reads labels.csv back.
"""

from __future__ import annotations

from cxr.synth.labels import LABEL_COLUMNS, label_row
from cxr.synth.observations import observation_labels
from cxr.synth.phantom import render_view
from cxr.synth.reports import Report, render_report
from cxr.synth.sampling import SamplingOptions, patient_id, sample_patient
from cxr.synth.synthesize import LABELS_FILE, REPORTS_FILE, SynthSummary, synthesize
from cxr.synth.truth import (
    Access,
    Acquisition,
    Device,
    DeviceTruth,
    Finding,
    FindingTruth,
    Lobe,
    PatientTruth,
    Placement,
    Setting,
    Side,
    StudyTruth,
    Thorax,
    Variant,
    View,
)

__all__ = [
    "LABELS_FILE",
    "LABEL_COLUMNS",
    "REPORTS_FILE",
    "Access",
    "Acquisition",
    "Device",
    "DeviceTruth",
    "Finding",
    "FindingTruth",
    "Lobe",
    "PatientTruth",
    "Placement",
    "Report",
    "SamplingOptions",
    "Setting",
    "Side",
    "StudyTruth",
    "SynthSummary",
    "Thorax",
    "Variant",
    "View",
    "label_row",
    "observation_labels",
    "patient_id",
    "render_report",
    "render_view",
    "sample_patient",
    "synthesize",
]
