"""Renders a study's frontal and lateral images from its ground truth.

`render_view` builds the anatomy layers, lets findings and devices edit them, sums them into a
density image and then "acquires" it: rotation, zoom and shift of the patient in the field,
exposure and gamma, detector blur and noise. Output is float32 in [0, 1], bright = dense.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import affine_transform, gaussian_filter

from cxr.synth import devices, findings
from cxr.synth.anatomy import Layers, cardiothoracic_ratio, frontal_layers, lateral_layers
from cxr.synth.truth import Acquisition, Finding, Setting, StudyTruth


def _ctr(study: StudyTruth, rng: np.random.Generator) -> float:
    return cardiothoracic_ratio(
        study.severity(Finding.CARDIOMEGALY), float(rng.uniform(-0.02, 0.02))
    )


def layers_for(study: StudyTruth, lateral: bool, size: int, rng: np.random.Generator) -> Layers:
    """Anatomy with the study's findings and devices drawn in, before acquisition."""
    ctr = _ctr(study, rng)
    if lateral:
        layers = lateral_layers(study.thorax, size, ctr, rng)
        findings.draw_lateral(layers, study, rng)
        devices.draw_lateral(layers, study)
    else:
        layers = frontal_layers(study.thorax, size, ctr, rng)
        findings.draw_frontal(layers, study, rng)
        devices.draw_frontal(layers, study)
        if study.setting is not Setting.OUTPATIENT and rng.random() < 0.6:
            devices.draw_leads(layers, study, rng)
    return layers


def acquire(density: np.ndarray, acquisition: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Positions, exposes and degrades a density image like a detector would."""
    size = density.shape[0]
    angle = np.radians(acquisition.rotation_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rotation / acquisition.zoom
    center = np.array([size / 2, size / 2])
    shift = np.array([acquisition.shift_y, acquisition.shift_x]) * size
    offset = center - matrix @ (center + shift)
    placed = affine_transform(
        density.astype(np.float32, copy=False), matrix, offset=offset, order=1, mode="nearest"
    )
    exposed = (1.0 - np.exp(-1.8 * np.maximum(placed, 0.0))) / (1.0 - np.exp(-1.8 * 1.05))
    image = np.clip(exposed + acquisition.exposure, 0.0, 1.0) ** acquisition.gamma
    blur = acquisition.blur * size / 512
    noise = acquisition.noise * rng.standard_normal((size, size), dtype=np.float32)
    # blurred noise is correlated like a detector's; the unblurred share keeps it grainy
    image = gaussian_filter(image + noise, blur, truncate=2.5) + 0.4 * noise
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def render_view(study: StudyTruth, lateral: bool, size: int, seed: int) -> np.ndarray:
    """The frontal (or lateral) image of a study, float32 [0, 1], bright = dense."""
    role = 1 if lateral else 0
    rng = np.random.default_rng([seed, abs(hash_text(study.patient_id)), study.study_index, role])
    acquisition = study.lateral if lateral else study.frontal
    if acquisition is None:
        raise ValueError(f"study {study.study_uid} has no lateral view")
    density = layers_for(study, lateral, size, rng).compose()
    return acquire(density, acquisition, rng)


def hash_text(text: str) -> int:
    """A stable (process-independent) integer from a string, for seeding."""
    value = 0
    for char in text.encode():
        value = (value * 131 + char) % (2**61 - 1)
    return value
