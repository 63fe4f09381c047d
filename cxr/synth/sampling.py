"""Draws the ground truth of phantom patients: anatomy, serial findings, devices, acquisitions.

Everything is drawn from `numpy.random.default_rng([seed, patient_number])`, so a patient's
truth depends only on the seed and its number, never on the worker that renders it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from cxr.synth.truth import (
    SIDED_FINDINGS,
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

TRANSFER_SYNTAXES: tuple[str, ...] = ("rle", "jpegls", "j2k")

# Per-patient probability that a finding is present at the first study, per setting.
_ONSET: dict[Finding, float] = {
    Finding.CARDIOMEGALY: 0.22,
    Finding.PLEURAL_EFFUSION: 0.18,
    Finding.CONSOLIDATION: 0.16,
    Finding.EDEMA: 0.14,
    Finding.PNEUMOTHORAX: 0.06,
    Finding.ATELECTASIS: 0.14,
}
_SETTING_WEIGHT = {Setting.OUTPATIENT: 0.6, Setting.WARD: 1.0, Setting.ICU: 1.5}
_DEVICE_RATE: dict[Setting, dict[Device, float]] = {
    Setting.OUTPATIENT: {Device.ETT: 0.0, Device.NGT: 0.0, Device.CVC: 0.03, Device.SWAN_GANZ: 0.0},
    Setting.WARD: {Device.ETT: 0.0, Device.NGT: 0.25, Device.CVC: 0.35, Device.SWAN_GANZ: 0.0},
    Setting.ICU: {Device.ETT: 0.75, Device.NGT: 0.65, Device.CVC: 0.7, Device.SWAN_GANZ: 0.2},
}
_PLACEMENTS: dict[Device, tuple[tuple[Placement, float], ...]] = {
    Device.ETT: (
        (Placement.NORMAL, 0.6),
        (Placement.BORDERLINE, 0.25),
        (Placement.ABNORMAL, 0.15),
    ),
    Device.NGT: (
        (Placement.NORMAL, 0.55),
        (Placement.BORDERLINE, 0.15),
        (Placement.ABNORMAL, 0.12),
        (Placement.INCOMPLETELY_IMAGED, 0.18),
    ),
    Device.CVC: (
        (Placement.NORMAL, 0.6),
        (Placement.BORDERLINE, 0.25),
        (Placement.ABNORMAL, 0.15),
    ),
    Device.SWAN_GANZ: ((Placement.PRESENT, 1.0),),
}


@dataclass(frozen=True)
class SamplingOptions:
    """Knobs of the study mix that are not per-patient randomness."""

    lateral_fraction: float = 0.35
    compressed_fraction: float = 0.3
    max_studies: int = 4


def patient_id(seed: int, number: int) -> str:
    """PatientID of the `number`-th phantom patient of a seed; differs between seeds."""
    return f"PH{seed}-{number:05d}"


_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "cxr.synth")


def derived_uid(*parts: object) -> str:
    """A valid 2.25 UID (a name-based UUID, version 5) that depends only on `parts`.

    pydicom's `generate_uid(prefix=None, ...)` ignores its entropy sources and returns a random
    UUID, so the deterministic UID is built here the way DICOM PS3.5 B.2 describes.
    """
    name = "\x1f".join(map(str, parts))
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def _choice(rng: np.random.Generator, options: tuple[tuple[Placement, float], ...]) -> Placement:
    weights = np.array([w for _, w in options])
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def sample_thorax(rng: np.random.Generator) -> Thorax:
    """A patient's anatomy; the carina is low enough for every ETT position to be in view."""
    fov_cm = float(rng.uniform(36.0, 43.0))
    lung_top = float(rng.uniform(0.08, 0.14))
    lung_height = float(rng.uniform(0.56, 0.66))
    diaphragm_right = lung_top + lung_height
    carina = max(lung_top + float(rng.uniform(0.28, 0.33)) * lung_height, 0.05 + 10.5 / fov_cm)
    lung_half_width = float(rng.uniform(0.29, 0.36))
    return Thorax(
        fov_cm=fov_cm,
        midline_x=float(rng.uniform(0.48, 0.52)),
        body_half_width=lung_half_width + float(rng.uniform(0.05, 0.1)),
        lung_half_width=lung_half_width,
        lung_top_y=lung_top,
        diaphragm_right_y=diaphragm_right,
        diaphragm_left_y=diaphragm_right + float(rng.uniform(0.01, 0.035)),
        carina_y=carina,
        mediastinum_half_width=float(rng.uniform(0.05, 0.07)),
        heart_height=float(rng.uniform(0.26, 0.32)) * lung_height / 0.6,
    )


def _study_thorax(rng: np.random.Generator, base: Thorax) -> Thorax:
    """Per-study inspiration: the diaphragm moves a little between studies."""
    shift = float(rng.uniform(-0.025, 0.025))
    return replace(
        base,
        diaphragm_right_y=base.diaphragm_right_y + shift,
        diaphragm_left_y=base.diaphragm_left_y + shift,
    )


def sample_acquisition(
    rng: np.random.Generator, view: View, options: SamplingOptions
) -> Acquisition:
    """Projection jitter, exposure and DICOM encoding of one image."""
    modality = "CR" if rng.random() < 0.5 else "DX"
    mono1 = rng.random() < (0.45 if modality == "CR" else 0.15)
    compressed = rng.random() < options.compressed_fraction
    return Acquisition(
        view=view,
        modality=modality,
        photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
        bits_stored=int(rng.choice([10, 12, 12, 14, 15, 16])),
        transfer_syntax=str(rng.choice(TRANSFER_SYNTAXES)) if compressed else "explicit",
        window=bool(rng.random() < 0.6),
        rotation_deg=float(rng.normal(0.0, 2.5)),
        zoom=float(rng.uniform(0.94, 1.06)),
        shift_x=float(rng.normal(0.0, 0.015)),
        shift_y=float(rng.normal(0.0, 0.015)),
        exposure=float(rng.uniform(-0.12, 0.12)),
        gamma=float(rng.uniform(0.8, 1.25)),
        noise=float(rng.uniform(0.008, 0.03)),
        blur=float(rng.uniform(0.3, 1.2)),
    )


def _evolve(rng: np.random.Generator, level: int, finding: Finding, weight: float) -> int:
    """Next severity level of one finding (0 = absent), a small Markov step."""
    if level == 0:
        onset = _ONSET[finding] * weight * 0.5
        return int(rng.integers(1, 3)) if rng.random() < onset else 0
    if finding is Finding.CARDIOMEGALY:
        step = int(rng.choice([-1, 0, 1], p=[0.05, 0.9, 0.05]))
    else:
        step = int(rng.choice([-3, -1, 0, 1], p=[0.15, 0.3, 0.35, 0.2]))
    return int(np.clip(level + step, 0 if finding is not Finding.CARDIOMEGALY else 1, 3))


def _finding_keys() -> list[tuple[Finding, Side | None]]:
    keys: list[tuple[Finding, Side | None]] = []
    for finding in _ONSET:
        if finding in SIDED_FINDINGS:
            keys.extend((finding, side) for side in Side)
        else:
            keys.append((finding, None))
    return keys


def _findings_series(
    rng: np.random.Generator, n_studies: int, setting: Setting
) -> list[tuple[FindingTruth, ...]]:
    """Findings of each study; pneumonia is the consolidation of an infected patient."""
    weight = _SETTING_WEIGHT[setting]
    infectious = bool(rng.random() < 0.6)
    lobes = {
        Side.RIGHT: Lobe(str(rng.choice(["upper", "middle", "lower", "lower"]))),
        Side.LEFT: Lobe(str(rng.choice(["upper", "lower", "lower"]))),
    }
    levels: dict[tuple[Finding, Side | None], int] = {}
    for finding, side in _finding_keys():
        present = rng.random() < _ONSET[finding] * weight
        levels[(finding, side)] = int(rng.integers(1, 4)) if present else 0
    series: list[tuple[FindingTruth, ...]] = []
    for index in range(n_studies):
        if index > 0:
            levels = {key: _evolve(rng, lvl, key[0], weight) for key, lvl in levels.items()}
        study: list[FindingTruth] = []
        for (finding, side), level in levels.items():
            if level == 0:
                continue
            lobe = lobes[side] if finding is Finding.CONSOLIDATION and side else None
            study.append(FindingTruth(finding, level, side, lobe))
            if finding is Finding.CONSOLIDATION and infectious:
                study.append(FindingTruth(Finding.PNEUMONIA, level, side, lobe))
        series.append(tuple(sorted(study, key=lambda f: f.key)))
    return series


def _sample_device(rng: np.random.Generator, device: Device, thorax: Thorax) -> DeviceTruth:
    placement = _choice(rng, _PLACEMENTS[device])
    if device is Device.ETT:
        return _sample_ett(rng, placement, thorax)
    if device is Device.NGT:
        return _sample_ngt(rng, placement)
    if device is Device.CVC:
        return _sample_cvc(rng, placement)
    side = Side.RIGHT if rng.random() < 0.7 else Side.LEFT
    return DeviceTruth(device, placement, tip_depth_cm=float(rng.uniform(2.0, 4.0)), side=side)


def _sample_ett(rng: np.random.Generator, placement: Placement, thorax: Thorax) -> DeviceTruth:
    """ETT tip: normal 3-7 cm above the carina; borderline 1-2.5 or 7.5-8.5; abnormal beyond."""
    if placement is Placement.NORMAL:
        return DeviceTruth(Device.ETT, placement, tip_to_carina_cm=float(rng.uniform(3.0, 7.0)))
    if placement is Placement.BORDERLINE:
        low = rng.random() < 0.5
        distance = float(rng.uniform(1.0, 2.5) if low else rng.uniform(7.5, 8.5))
        variant = Variant.LOW if low else Variant.HIGH
        return DeviceTruth(Device.ETT, placement, variant, tip_to_carina_cm=distance)
    if rng.random() < 0.6:
        distance = -float(rng.uniform(1.5, 3.0))
        return DeviceTruth(Device.ETT, placement, Variant.BRONCHIAL, tip_to_carina_cm=distance)
    highest = (thorax.carina_y - 0.04) * thorax.fov_cm
    distance = min(float(rng.uniform(9.5, 10.5)), highest)
    return DeviceTruth(Device.ETT, placement, Variant.HIGH, tip_to_carina_cm=distance)


def _sample_ngt(rng: np.random.Generator, placement: Placement) -> DeviceTruth:
    """NGT: depth is cm below the GE junction (normal), or above it (coiled) etc."""
    if placement is Placement.NORMAL:
        return DeviceTruth(Device.NGT, placement, tip_depth_cm=float(rng.uniform(6.0, 11.0)))
    if placement is Placement.BORDERLINE:
        depth = float(rng.uniform(-1.0, 1.5))
        return DeviceTruth(Device.NGT, placement, Variant.GE_JUNCTION, tip_depth_cm=depth)
    if placement is Placement.INCOMPLETELY_IMAGED:
        return DeviceTruth(Device.NGT, placement, Variant.BEYOND_FIELD)
    if rng.random() < 0.5:
        depth = float(rng.uniform(4.0, 10.0))  # cm above the carina where the coil sits
        return DeviceTruth(Device.NGT, placement, Variant.COILED, tip_depth_cm=depth)
    side = Side.RIGHT if rng.random() < 0.7 else Side.LEFT
    depth = float(rng.uniform(4.0, 8.0))  # cm down the bronchus
    return DeviceTruth(Device.NGT, placement, Variant.AIRWAY, tip_depth_cm=depth, side=side)


def _sample_cvc(rng: np.random.Generator, placement: Placement) -> DeviceTruth:
    """CVC tip depth is cm below the cavoatrial junction (negative = above, in the SVC)."""
    access = Access(str(rng.choice([a.value for a in Access], p=[0.5, 0.15, 0.2, 0.15])))
    if placement is Placement.NORMAL:
        depth = float(rng.uniform(-2.5, 0.5))
        return DeviceTruth(Device.CVC, placement, tip_depth_cm=depth, access=access)
    if placement is Placement.BORDERLINE:
        high = rng.random() < 0.6
        depth = float(rng.uniform(-5.5, -4.0) if high else rng.uniform(1.5, 2.5))
        variant = Variant.HIGH if high else Variant.LOW
        return DeviceTruth(Device.CVC, placement, variant, tip_depth_cm=depth, access=access)
    if rng.random() < 0.5:
        depth = float(rng.uniform(4.5, 6.5))
        return DeviceTruth(Device.CVC, placement, Variant.ATRIAL, tip_depth_cm=depth, access=access)
    if access in (Access.RIGHT_IJ, Access.LEFT_IJ):
        access = Access.RIGHT_SUBCLAVIAN if access is Access.RIGHT_IJ else Access.LEFT_SUBCLAVIAN
    depth = float(rng.uniform(3.0, 5.0))  # cm travelled up the jugular or across
    return DeviceTruth(
        Device.CVC, placement, Variant.MISDIRECTED, tip_depth_cm=depth, access=access
    )


def _devices_series(
    rng: np.random.Generator, n_studies: int, setting: Setting, thorax: Thorax
) -> list[tuple[DeviceTruth, ...]]:
    """Devices per study: placed, kept (often repositioned) or removed between studies."""
    rates = _DEVICE_RATE[setting]
    current: dict[Device, DeviceTruth] = {}
    series: list[tuple[DeviceTruth, ...]] = []
    for _ in range(n_studies):
        for device, rate in rates.items():
            if device in current:
                roll = rng.random()
                if roll < 0.2:
                    del current[device]
                elif roll < 0.6:
                    current[device] = _sample_device(rng, device, thorax)
            elif rng.random() < rate:
                current[device] = _sample_device(rng, device, thorax)
        series.append(tuple(current[d] for d in Device if d in current))
    return series


def _indication(
    rng: np.random.Generator, setting: Setting, devices: tuple[DeviceTruth, ...], has_prior: bool
) -> str:
    """Clinical question; drawn from the setting and history, not from this study's image."""
    options = {
        Setting.OUTPATIENT: [
            "Cough.",
            "Chest pain.",
            "Shortness of breath.",
            "Pre-operative evaluation.",
            "Chronic cough, smoker.",
        ],
        Setting.WARD: [
            "Shortness of breath.",
            "Fever.",
            "Hypoxia.",
            "Fever and cough.",
            "Evaluate for pneumonia.",
            "Chest pain.",
        ],
        Setting.ICU: [
            "Intubated patient.",
            "Respiratory failure.",
            "Sepsis.",
            "Evaluate tube and line position.",
            "Post-operative, hypoxia.",
        ],
    }[setting]
    if has_prior and rng.random() < 0.4:
        options = [*options, "Follow-up.", "Interval change?"]
    if any(d.device is Device.CVC for d in devices) and rng.random() < 0.3:
        return "Line placement."
    return str(rng.choice(options))


def _short_id(study_uid: str) -> str:
    return hashlib.sha1(study_uid.encode()).hexdigest()[:8]


def sample_patient(seed: int, number: int, options: SamplingOptions | None = None) -> PatientTruth:
    """The full ground truth of the `number`-th patient of a seed."""
    options = options or SamplingOptions()
    rng = np.random.default_rng([seed, number])
    pid = patient_id(seed, number)
    setting = Setting(str(rng.choice([s.value for s in Setting], p=[0.35, 0.3, 0.35])))
    n_studies = int(rng.choice(np.arange(1, options.max_studies + 1)))
    thorax = sample_thorax(rng)
    findings = _findings_series(rng, n_studies, setting)
    devices = _devices_series(rng, n_studies, setting, thorax)
    when = datetime(2012, 1, 1) + timedelta(days=int(rng.integers(0, 4000)))
    studies: list[StudyTruth] = []
    prior: StudyTruth | None = None
    for index in range(n_studies):
        when = when + timedelta(days=int(rng.integers(1, 40)) if index else 0)
        moment = when.replace(
            hour=int(rng.integers(0, 24)),
            minute=int(rng.integers(0, 60)),
            second=int(rng.integers(0, 60)),
        )
        uid = derived_uid(seed, pid, index, "study")
        frontal_view = (
            View.AP
            if setting is Setting.ICU or rng.random() < 0.3 * (setting is Setting.WARD)
            else View.PA
        )
        lateral = (
            sample_acquisition(rng, View.LL, options)
            if rng.random() < options.lateral_fraction
            else None
        )
        study = StudyTruth(
            patient_id=pid,
            study_index=index,
            study_uid=uid,
            short_id=_short_id(uid),
            accession=f"A{int(hashlib.sha1(uid.encode()).hexdigest()[:10], 16) % 10**9:09d}",
            study_datetime=moment,
            setting=setting,
            thorax=_study_thorax(rng, thorax),
            frontal=sample_acquisition(rng, frontal_view, options),
            lateral=lateral,
            devices=devices[index],
            findings=findings[index],
            indication=_indication(rng, setting, devices[index], prior is not None),
            prior=prior,
        )
        studies.append(study)
        prior = study
    sex = "F" if rng.random() < 0.5 else "M"
    birth = datetime(1935, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 60)))
    return PatientTruth(pid, f"PHANTOM^{pid.replace('-', '^')}", sex, birth, tuple(studies))
