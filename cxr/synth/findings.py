"""Draws findings into the anatomy layers, at the place and size the ground truth says.

Pleural effusion: dependent fluid with a meniscus, from costophrenic blunting to 60% of the
lung. Consolidation (and pneumonia, its infectious form): a fluffy lobar opacity. Edema:
perihilar haze. Pneumothorax: a visceral pleural line with no lung markings beyond it.
Atelectasis: plate-like basal bands. Cardiomegaly is the heart size chosen in `anatomy`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from cxr.synth.anatomy import (
    LUNG_WALL_POINTS,
    Layers,
    lateral_depth,
    lateral_trachea_x,
    lung_outline,
    side_sign,
)
from cxr.synth.draw import fill, grid, smoothstep, soften_mask, strokes
from cxr.synth.truth import Finding, FindingTruth, Lobe, Side, StudyTruth, Thorax

EFFUSION_HEIGHT = (0.0, 0.12, 0.32, 0.6)  # fraction of lung height, per severity level
PNEUMOTHORAX_SCALE = (1.0, 0.88, 0.76, 0.6)  # collapsed lung size, per severity level


def texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [0.5, 1.5], for fluffy airspace opacities."""
    coarse = gaussian_filter(rng.random((size // 8 + 1, size // 8 + 1)).astype(np.float32), 1.2)
    coarse = (coarse - coarse.mean()) / (coarse.std() + 1e-6)
    fine = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:size, :size]
    return np.clip(1.0 + 0.35 * gaussian_filter(fine, 3.0), 0.4, 1.6)


def _lung_height(t: Thorax, side: Side) -> float:
    dome = t.diaphragm_right_y if side is Side.RIGHT else t.diaphragm_left_y
    return dome - t.lung_top_y


def consolidation_center(t: Thorax, side: Side, lobe: Lobe) -> tuple[float, float]:
    """Centre of a lobar opacity on the frontal view."""
    s, height = side_sign(side), _lung_height(t, side)
    if lobe is Lobe.UPPER:
        return t.midline_x + s * 0.6 * t.lung_half_width, t.lung_top_y + 0.22 * height
    if lobe is Lobe.MIDDLE:
        return t.midline_x + s * 0.42 * t.lung_half_width, t.lung_top_y + 0.7 * height
    return t.midline_x + s * 0.62 * t.lung_half_width, t.lung_top_y + 0.82 * height


def _side_half(t: Thorax, side: Side, x: np.ndarray) -> np.ndarray:
    return smoothstep(side_sign(side) * (x - t.midline_x), 0.01)


def _effusion(layers: Layers, t: Thorax, f: FindingTruth, x: np.ndarray, y: np.ndarray) -> None:
    side = f.side or Side.RIGHT
    dome = t.diaphragm_right_y if side is Side.RIGHT else t.diaphragm_left_y
    lateral = np.clip(side_sign(side) * (x - t.midline_x) / t.lung_half_width, 0.0, 1.0)
    height = max(EFFUSION_HEIGHT[f.severity] * _lung_height(t, side), t.cm(1.5))
    level = dome + 0.05 - height - (0.05 + 0.05 * f.severity) * lateral**2
    fluid = smoothstep(y - level, 0.012) * _side_half(t, side, x)
    layers.opacity += 0.95 * fluid


def _consolidation(
    layers: Layers, t: Thorax, f: FindingTruth, x: np.ndarray, y: np.ndarray, fluff: np.ndarray
) -> None:
    side = f.side or Side.RIGHT
    cx, cy = consolidation_center(t, side, f.lobe or Lobe.LOWER)
    radius = (0.0, 0.05, 0.075, 0.1)[f.severity] * (t.lung_half_width / 0.32)
    r2 = ((x - cx) / (radius * 1.1)) ** 2 + ((y - cy) / radius) ** 2
    blob = np.exp(-r2 * 1.6) * fluff * _side_half(t, side, x)
    layers.opacity += np.clip((0.55 + 0.15 * f.severity) * blob, 0.0, 0.95)


def _edema(
    layers: Layers, t: Thorax, f: FindingTruth, x: np.ndarray, y: np.ndarray, fluff: np.ndarray
) -> None:
    amplitude = (0.0, 0.3, 0.5, 0.75)[f.severity]
    for side in Side:
        hx = t.midline_x + side_sign(side) * (t.mediastinum_half_width + 0.05)
        hy = t.carina_y + 0.08
        r2 = ((x - hx) / 0.16) ** 2 + ((y - hy) / 0.17) ** 2
        layers.opacity += amplitude * np.exp(-r2 * 1.5) * (0.7 + 0.3 * fluff)
    layers.vessels *= 1.0 + 0.6 * f.severity


def _pneumothorax(layers: Layers, t: Thorax, f: FindingTruth) -> None:
    side = f.side or Side.RIGHT
    size = layers.body.shape[0]
    outline = lung_outline(t, side)
    pivot = np.array(
        [
            t.midline_x + side_sign(side) * t.mediastinum_half_width,
            (t.diaphragm_right_y if side is Side.RIGHT else t.diaphragm_left_y),
        ]
    )
    collapsed = pivot + (outline - pivot) * PNEUMOTHORAX_SCALE[f.severity]
    inner = np.zeros((size, size), dtype=np.float32)
    fill(inner, collapsed)
    region = layers.lung[side] * (1.0 - soften_mask(inner, 0.002))
    layers.vessels *= 1.0 - region
    layers.extra_air += 0.09 * region
    wall = collapsed[:LUNG_WALL_POINTS]  # the pleural line: apex and lateral wall only
    line = strokes(size, [wall], max(1.6 / size, t.cm(0.12)), crisp=1.5)
    layers.solid += 0.13 * line * layers.lung[side]


def _atelectasis(layers: Layers, t: Thorax, f: FindingTruth, rng: np.random.Generator) -> None:
    side = f.side or Side.RIGHT
    s, size = side_sign(side), layers.body.shape[0]
    dome = t.diaphragm_right_y if side is Side.RIGHT else t.diaphragm_left_y
    paths = []
    for k in range(f.severity):
        y0 = dome - 0.04 - 0.035 * k + rng.normal(0, 0.005)
        x0 = t.midline_x + s * (t.mediastinum_half_width + 0.04)
        x1 = t.midline_x + s * (t.lung_half_width * 0.85)
        path = np.array([[x0, y0 + 0.012], [(x0 + x1) / 2, y0], [x1, y0 - 0.015]])
        paths.append(path)
    layers.opacity += 0.55 * strokes(size, paths, t.cm(0.35 + 0.15 * f.severity), crisp=1.2)


def draw_frontal(layers: Layers, study: StudyTruth, rng: np.random.Generator) -> None:
    """Draws every finding of a study into frontal layers (in place)."""
    t, size = study.thorax, layers.body.shape[0]
    x, y = grid(size)
    cloudy = any(f.finding in (Finding.CONSOLIDATION, Finding.EDEMA) for f in study.findings)
    fluff = texture(size, rng) if cloudy else np.ones((1, 1), dtype=np.float32)
    for f in study.findings:
        if f.finding is Finding.PLEURAL_EFFUSION:
            _effusion(layers, t, f, x, y)
        elif f.finding is Finding.CONSOLIDATION:
            _consolidation(layers, t, f, x, y, fluff)
        elif f.finding is Finding.EDEMA:
            _edema(layers, t, f, x, y, fluff)
        elif f.finding is Finding.PNEUMOTHORAX:
            _pneumothorax(layers, t, f)
        elif f.finding is Finding.ATELECTASIS:
            _atelectasis(layers, t, f, rng)


def lateral_consolidation_center(t: Thorax, lobe: Lobe) -> tuple[float, float]:
    anterior, posterior = lateral_depth(t)
    depth, height = posterior - anterior, t.diaphragm_right_y - t.lung_top_y
    if lobe is Lobe.UPPER:
        return anterior + 0.5 * depth, t.lung_top_y + 0.22 * height
    if lobe is Lobe.MIDDLE:
        return anterior + 0.3 * depth, t.lung_top_y + 0.7 * height
    return anterior + 0.72 * depth, t.lung_top_y + 0.82 * height


def draw_lateral(layers: Layers, study: StudyTruth, rng: np.random.Generator) -> None:
    """Draws the same findings on the lateral projection (pneumothorax is rarely visible there)."""
    t, size = study.thorax, layers.body.shape[0]
    x, y = grid(size)
    cloudy = any(f.finding in (Finding.CONSOLIDATION, Finding.EDEMA) for f in study.findings)
    fluff = texture(size, rng) if cloudy else np.ones((1, 1), dtype=np.float32)
    anterior, posterior = lateral_depth(t)
    dome = (t.diaphragm_right_y + t.diaphragm_left_y) / 2
    back = np.clip((x - anterior) / (posterior - anterior), 0.0, 1.0)
    effusion = study.severity(Finding.PLEURAL_EFFUSION)
    if effusion:
        height = max(EFFUSION_HEIGHT[effusion] * (dome - t.lung_top_y), t.cm(1.5))
        level = dome + 0.09 - height - 0.08 * back**2
        layers.opacity += 0.9 * smoothstep(y - level, 0.012)
    for f in study.findings:
        if f.finding is Finding.CONSOLIDATION:
            cx, cy = lateral_consolidation_center(t, f.lobe or Lobe.LOWER)
            radius = (0.0, 0.05, 0.075, 0.1)[f.severity]
            r2 = ((x - cx) / radius) ** 2 + ((y - cy) / radius) ** 2
            layers.opacity += np.clip(
                (0.45 + 0.15 * f.severity) * np.exp(-r2 * 1.6) * fluff, 0.0, 0.9
            )
        elif f.finding is Finding.ATELECTASIS:
            y0 = dome - 0.03 + rng.normal(0, 0.005)
            band = np.array([[anterior + 0.08, y0 - 0.02], [posterior - 0.08, y0 + 0.02]])
            layers.opacity += 0.5 * strokes(size, [band], t.cm(0.3 + 0.15 * f.severity), crisp=1.2)
    edema = study.severity(Finding.EDEMA)
    if edema:
        hx = float(lateral_trachea_x(t, t.carina_y))
        r2 = ((x - hx) / 0.18) ** 2 + ((y - t.carina_y - 0.07) / 0.18) ** 2
        layers.opacity += (0.0, 0.3, 0.5, 0.7)[edema] * np.exp(-r2 * 1.5) * fluff
