"""The records every part of cxr shares: label vocabularies and the `Study`.

A `Study` is what a dataset adapter produces and what the data module, the model and
inference consume, whatever the source (DICOM folder, phantom, MIMIC-CXR, IU X-ray, ...).
Missing views, reports and labels are normal: they are `None`, NaN or -1, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

import numpy as np

# RANZCR CLiP label columns, in the competition's order and spelling.
TUBE_LINE_LABELS: tuple[str, ...] = (
    "ETT - Abnormal",
    "ETT - Borderline",
    "ETT - Normal",
    "NGT - Abnormal",
    "NGT - Borderline",
    "NGT - Incompletely Imaged",
    "NGT - Normal",
    "CVC - Abnormal",
    "CVC - Borderline",
    "CVC - Normal",
    "Swan Ganz Catheter Present",
)

# Indices of TUBE_LINE_LABELS per device; the statuses of one device exclude each other.
TUBE_LINE_DEVICES: dict[str, tuple[int, ...]] = {
    "ETT": (0, 1, 2),
    "NGT": (3, 4, 5, 6),
    "CVC": (7, 8, 9),
    "Swan Ganz": (10,),
}

# MS-CXR-T findings, in the dataset's order; labels.csv columns are f"{finding}_progression".
CHANGE_FINDINGS: tuple[str, ...] = (
    "consolidation",
    "pleural_effusion",
    "pneumonia",
    "pneumothorax",
    "edema",
)


class Change(str, Enum):
    """Progression of one finding between the prior and the current study.

    The value is the label's text everywhere it is written (labels.csv, reports.jsonl, SR);
    the order of the members is the class index of change labels and logits.
    """

    IMPROVING = "improving"
    STABLE = "stable"
    WORSENING = "worsening"

    @property
    def code(self) -> int:
        """Class index in change label arrays and logits."""
        return list(Change).index(self)

    @classmethod
    def from_code(cls, code: int) -> Change:
        """The member whose class index is `code`."""
        return list(cls)[code]

    @classmethod
    def parse(cls, text: str) -> Change:
        """A label text in any case and spacing; ValueError names an unknown one."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(c.value for c in cls)
            raise ValueError(f"unknown change label {text!r} (expected one of {known})") from None


CHANGE_UNKNOWN = -1

# The 14 CheXpert observations, in CheXpert's column order and spelling: the findings head's
# outputs, the reports.jsonl / labels.csv columns of their probabilities and labels, and what
# the offline labeler reads from report text.
OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
# The 5 observations CheXpert's competition and most report-generation papers score.
COMMON_OBSERVATIONS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Pleural Effusion",
)
# A findings-head probability at or above this calls the observation present.
OBSERVATION_THRESHOLD = 0.5

# What an output says of a label its system did not assess (no prior study, no label head).
NOT_ASSESSED = "not assessed"


class ImageRole(str, Enum):
    """What an image is within its study."""

    FRONTAL = "frontal"
    LATERAL = "lateral"
    OTHER = "other"


def change_column(finding: str) -> str:
    """labels.csv / MS-CXR-T column name for a finding's progression label."""
    return f"{finding}_progression"


def is_missing(value: object) -> bool:
    """True for what a table cell holds where nothing is known: None, a blank text, or a
    scalar NaN (float or numpy NaN, NaT, pandas NA)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if np.ndim(value) != 0:  # type: ignore[arg-type]
        return False
    try:
        return bool(value != value)  # NaN and NaT are the values unequal to themselves
    except TypeError:  # pandas NA has no truth value
        return True


def join_sections(findings: str | None, impression: str | None) -> str:
    """Findings and impression as one plain text, a space between ("" when neither is known):
    the text that is scored, and a prior report as the prompt shows it."""
    parts = [part.strip() for part in (findings, impression) if part and part.strip()]
    return " ".join(parts)


@dataclass
class StudyImages:
    """Paths (or cache keys) of the images a study brings; any may be missing."""

    frontal: str | None = None
    lateral: str | None = None
    prior_frontal: str | None = None


@dataclass
class Prompt:
    """Context given to the model before it writes the report."""

    indication: str = ""
    technique: str = ""
    comparison: str = ""
    prior_report: str = ""


def _unknown_tube_line() -> np.ndarray:
    return np.full(len(TUBE_LINE_LABELS), np.nan, dtype=np.float32)


def _unknown_observations() -> np.ndarray:
    return np.full(len(OBSERVATIONS), np.nan, dtype=np.float32)


def _unknown_change() -> np.ndarray:
    return np.full(len(CHANGE_FINDINGS), CHANGE_UNKNOWN, dtype=np.int64)


@dataclass
class Targets:
    """What the model should produce; unknown parts are None, NaN (tube/line, observations)
    or -1 (change).

    `observations` holds the 14 OBSERVATIONS as 1.0 (present), 0.0 (absent) or NaN (unknown);
    an adapter decides what an uncertain source label becomes. `change` is known only where
    the finding is present in at least one study of the pair (MS-CXR-T's rule).
    """

    findings: str | None = None
    impression: str | None = None
    tube_line: np.ndarray = field(default_factory=_unknown_tube_line)
    change: np.ndarray = field(default_factory=_unknown_change)
    observations: np.ndarray = field(default_factory=_unknown_observations)

    @property
    def report(self) -> str | None:
        """Findings and impression as one text (`join_sections`), or None when neither is known."""
        return join_sections(self.findings, self.impression) or None


@dataclass
class Study:
    """One chest X-ray study, whatever dataset it came from."""

    study_id: str
    patient_id: str
    study_datetime: datetime | None = None
    images: StudyImages = field(default_factory=StudyImages)
    prompt: Prompt = field(default_factory=Prompt)
    targets: Targets = field(default_factory=Targets)
    prior_study_id: str | None = None
    source: str = ""


# Image slots a model sees for one study, in the order of the batch's image axis.
IMAGE_SLOTS: tuple[str, ...] = ("frontal", "lateral", "prior_frontal")
