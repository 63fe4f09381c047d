"""Ground truth of phantom studies: the records every other part of `cxr.synth` renders.

A `PatientTruth` holds 1-4 `StudyTruth` records on increasing dates. Each study knows its
anatomy (`Thorax`), its devices (`DeviceTruth`), its findings (`FindingTruth`), its views and
acquisition settings. Images, reports and labels are all rendered from these records, so
they agree by construction; the tests check that they also agree in the written files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from cxr.types import CHANGE_FINDINGS, TUBE_LINE_LABELS, Change


class Side(str, Enum):
    """The patient's side (patient right is on the image's left on a frontal view)."""

    LEFT = "left"
    RIGHT = "right"


class Finding(str, Enum):
    """Findings the phantom can draw; sided ones carry a `Side`."""

    CARDIOMEGALY = "cardiomegaly"
    PLEURAL_EFFUSION = "pleural_effusion"
    CONSOLIDATION = "consolidation"
    PNEUMONIA = "pneumonia"
    EDEMA = "edema"
    PNEUMOTHORAX = "pneumothorax"
    ATELECTASIS = "atelectasis"


SIDED_FINDINGS: frozenset[Finding] = frozenset(
    {
        Finding.PLEURAL_EFFUSION,
        Finding.CONSOLIDATION,
        Finding.PNEUMONIA,
        Finding.PNEUMOTHORAX,
        Finding.ATELECTASIS,
    }
)

# Severity words per finding, for levels 1, 2, 3 (0 = absent).
SEVERITY_WORDS: dict[Finding, tuple[str, str, str]] = {
    Finding.CARDIOMEGALY: ("mild", "moderate", "severe"),
    Finding.PLEURAL_EFFUSION: ("small", "moderate", "large"),
    Finding.CONSOLIDATION: ("mild", "moderate", "severe"),
    Finding.PNEUMONIA: ("mild", "moderate", "severe"),
    Finding.EDEMA: ("mild", "moderate", "severe"),
    Finding.PNEUMOTHORAX: ("small", "moderate", "large"),
    Finding.ATELECTASIS: ("mild", "moderate", "severe"),
}


class Lobe(str, Enum):
    """Where a consolidation sits; the middle lobe is right-sided, the lingula left-sided."""

    UPPER = "upper"
    MIDDLE = "middle"
    LOWER = "lower"


class View(str, Enum):
    """DICOM ViewPosition values the phantom writes."""

    PA = "PA"
    AP = "AP"
    LL = "LL"


class Setting(str, Enum):
    """Where the patient is imaged; decides the view and how likely devices are."""

    OUTPATIENT = "outpatient"
    WARD = "ward"
    ICU = "icu"


class Device(str, Enum):
    """Tubes and lines, named as the keys of cxr.types.TUBE_LINE_DEVICES."""

    ETT = "ETT"
    NGT = "NGT"
    CVC = "CVC"
    SWAN_GANZ = "Swan Ganz"


class Placement(str, Enum):
    """A device's position class, as RANZCR CLiP grades it."""

    NORMAL = "Normal"
    BORDERLINE = "Borderline"
    ABNORMAL = "Abnormal"
    INCOMPLETELY_IMAGED = "Incompletely Imaged"
    PRESENT = "Present"


class Variant(str, Enum):
    """How a device sits beyond its placement class (drives the drawn path and the text)."""

    STANDARD = "standard"
    LOW = "low"  # ETT close to the carina; CVC reaching into the atrium
    HIGH = "high"  # ETT high in the trachea; CVC in the upper SVC / brachiocephalic vein
    BRONCHIAL = "bronchial"  # ETT in the right main bronchus
    COILED = "coiled"  # NGT coiled in the oesophagus
    AIRWAY = "airway"  # NGT down the trachea into a bronchus
    GE_JUNCTION = "ge_junction"  # NGT tip at the gastro-oesophageal junction
    BEYOND_FIELD = "beyond_field"  # NGT leaving the image inferiorly
    ATRIAL = "atrial"  # CVC deep in the right atrium
    MISDIRECTED = "misdirected"  # CVC turned up the jugular or across to the other side


class Access(str, Enum):
    """Venous access of a central line."""

    RIGHT_IJ = "right internal jugular"
    LEFT_IJ = "left internal jugular"
    RIGHT_SUBCLAVIAN = "right subclavian"
    LEFT_SUBCLAVIAN = "left subclavian"


@dataclass(frozen=True)
class Thorax:
    """Patient anatomy in normalised frontal coordinates (x right on the image, y down, [0, 1]).

    One cm is `1 / fov_cm` in these units. The values are per patient, with small
    per-study jitter in inspiration, rotation and exposure (see `Acquisition`).
    """

    fov_cm: float
    midline_x: float
    body_half_width: float
    lung_half_width: float
    lung_top_y: float
    diaphragm_right_y: float
    diaphragm_left_y: float
    carina_y: float
    mediastinum_half_width: float
    heart_height: float

    def cm(self, value: float) -> float:
        """A length in cm as a normalised length."""
        return value / self.fov_cm

    @property
    def thoracic_width(self) -> float:
        return 2.0 * self.lung_half_width

    @property
    def cavoatrial_y(self) -> float:
        """Height of the cavoatrial junction (the lower end of the SVC)."""
        return self.carina_y + self.cm(3.5)

    @property
    def ge_junction(self) -> tuple[float, float]:
        return (self.midline_x + self.cm(2.5), self.diaphragm_left_y + self.cm(1.0))

    @property
    def stomach_center(self) -> tuple[float, float]:
        return (self.midline_x + self.cm(7.0), self.diaphragm_left_y + self.cm(3.0))


@dataclass(frozen=True)
class Acquisition:
    """How one image is taken and stored: projection jitter, exposure and DICOM encoding."""

    view: View
    modality: str  # "CR" or "DX"
    photometric: str  # "MONOCHROME1" or "MONOCHROME2"
    bits_stored: int
    transfer_syntax: str  # "explicit", "rle", "jpegls" or "j2k"
    window: bool
    rotation_deg: float
    zoom: float
    shift_x: float
    shift_y: float
    exposure: float
    gamma: float
    noise: float
    blur: float


@dataclass(frozen=True)
class DeviceTruth:
    """One tube or line and where its tip is (normalised frontal coordinates)."""

    device: Device
    placement: Placement
    variant: Variant = Variant.STANDARD
    tip_to_carina_cm: float = 0.0  # ETT: cm above the carina (negative = below, in a bronchus)
    tip_depth_cm: float = 0.0  # NGT/CVC/Swan-Ganz: variant-specific depth parameter
    access: Access | None = None
    side: Side | None = None  # Swan-Ganz: pulmonary artery; NGT airway: bronchus side


@dataclass(frozen=True)
class FindingTruth:
    """One present finding with its severity level (1-3) and, when sided, its side."""

    finding: Finding
    severity: int
    side: Side | None = None
    lobe: Lobe | None = None

    @property
    def key(self) -> str:
        """labels.csv name: the finding, with the side when it has one."""
        return f"{self.finding.value}_{self.side.value}" if self.side else self.finding.value

    @property
    def severity_word(self) -> str:
        return SEVERITY_WORDS[self.finding][self.severity - 1]


@dataclass(frozen=True)
class StudyTruth:
    """Everything true about one study; images, report and labels are drawn from it."""

    patient_id: str
    study_index: int
    study_uid: str
    short_id: str
    accession: str
    study_datetime: datetime
    setting: Setting
    thorax: Thorax
    frontal: Acquisition
    lateral: Acquisition | None
    devices: tuple[DeviceTruth, ...]
    findings: tuple[FindingTruth, ...]
    indication: str
    prior: StudyTruth | None = field(default=None, repr=False)

    @property
    def prior_study_id(self) -> str | None:
        return self.prior.study_uid if self.prior else None

    @property
    def folder_name(self) -> str:
        return f"{self.study_datetime:%Y%m%d}_{self.short_id}"

    def device(self, device: Device) -> DeviceTruth | None:
        return next((d for d in self.devices if d.device is device), None)

    def severity(self, finding: Finding, side: Side | None = None) -> int:
        """Severity level (0 = absent) of a finding on a side (or on either side when None)."""
        levels = [
            f.severity for f in self.findings if f.finding is finding and side in (None, f.side)
        ]
        return max(levels, default=0)

    def burden(self, finding: Finding) -> int:
        """Sum of severity levels over sides: what the change labels compare."""
        return sum(f.severity for f in self.findings if f.finding is finding)

    def tube_line_labels(self) -> dict[str, int]:
        """The 11 RANZCR CLiP columns: all 0 for an absent device, one status 1 when present."""
        labels = dict.fromkeys(TUBE_LINE_LABELS, 0)
        for device in self.devices:
            if device.device is Device.SWAN_GANZ:
                labels["Swan Ganz Catheter Present"] = 1
            else:
                labels[f"{device.device.value} - {device.placement.value}"] = 1
        return labels

    def changes(self) -> dict[str, Change] | None:
        """MS-CXR-T progression against the prior of each CHANGE_FINDINGS finding present in
        this study or its prior; None without a prior.

        As in MS-CXR-T, a finding absent from both studies has no label (it is left out, and
        is unknown in labels.csv and `Targets.change`): "stable" there would mostly teach that
        nothing is seen twice.
        """
        if self.prior is None:
            return None
        result: dict[str, Change] = {}
        for name in CHANGE_FINDINGS:
            finding = Finding(name)
            now, before = self.burden(finding), self.prior.burden(finding)
            if now == before == 0:
                continue
            delta = now - before
            result[name] = (
                Change.WORSENING if delta > 0 else Change.IMPROVING if delta < 0 else Change.STABLE
            )
        return result

    def findings_text(self) -> str:
        """labels.csv `findings` cell, e.g. "cardiomegaly:moderate;pleural_effusion_left:small"."""
        return ";".join(f"{f.key}:{f.severity_word}" for f in self.findings)


@dataclass(frozen=True)
class PatientTruth:
    """A phantom patient: serial studies on increasing dates."""

    patient_id: str
    patient_name: str
    sex: str
    birth_date: datetime
    studies: tuple[StudyTruth, ...]
