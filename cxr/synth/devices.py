"""Tube and line paths, positioned by ground truth, and their drawing as radio-opaque lines.

`frontal_path(thorax, device)` is the device's centre line in normalised frontal coordinates;
its last point is the tip (for an incompletely imaged NGT the tip lies below the image).
Zones, relative to the anatomy:
- ETT: tip `tip_to_carina_cm` above the carina along the trachea; negative = down the right
  main bronchus.
- NGT: down the oesophagus, through the GE junction into the stomach (normal), stopping at the
  junction (borderline), coiled in the oesophagus or down the airway (abnormal), or leaving
  the field inferiorly (incompletely imaged).
- CVC: from its access vein into the SVC; tip `tip_depth_cm` below the cavoatrial junction
  (normal -2.5..0.5, borderline -5.5..-4 or 1.5..2.5, abnormal atrial 4.5..6.5) or, when
  misdirected, turned up the jugular vein.
- Swan-Ganz: SVC, right atrium, right ventricle, pulmonary trunk, into a pulmonary artery.
"""

from __future__ import annotations

import numpy as np

from cxr.synth.anatomy import (
    Layers,
    bronchus_path,
    lateral_depth,
    lateral_trachea_x,
    oesophagus_x,
    trachea_path,
)
from cxr.synth.draw import Path, bezier, polyline, resample, strokes
from cxr.synth.truth import Access, Device, DeviceTruth, Side, StudyTruth, Thorax, Variant

# (width in cm, density) of each device's stroke; wide and dense enough to survive 128 px.
DEVICE_STYLE: dict[Device, tuple[float, float]] = {
    Device.ETT: (0.85, 0.2),
    Device.NGT: (0.5, 0.34),
    Device.CVC: (0.45, 0.34),
    Device.SWAN_GANZ: (0.45, 0.3),
}


def _join(*parts: Path) -> Path:
    return np.concatenate([p for p in parts if len(p)])


def _until_y(path: Path, tip_y: float) -> Path:
    """The descending path cut where it reaches height `tip_y`."""
    below = np.nonzero(path[:, 1] >= tip_y)[0]
    if len(below) == 0:
        return path
    k = int(below[0])
    if k == 0:
        return path[:1]
    a, b = path[k - 1], path[k]
    frac = (tip_y - a[1]) / max(b[1] - a[1], 1e-9)
    return np.concatenate([path[:k], (a + frac * (b - a))[None]])


def _ett(t: Thorax, d: DeviceTruth) -> Path:
    trachea = trachea_path(t)
    if d.tip_to_carina_cm >= 0:
        return _until_y(trachea, t.carina_y - t.cm(d.tip_to_carina_cm))
    bronchus = bronchus_path(t, Side.RIGHT, -d.tip_to_carina_cm)
    return _join(trachea, bronchus[1:])


def _oesophagus(t: Thorax, until_y: float) -> Path:
    y = np.linspace(-0.02, until_y, 60)
    return np.stack([oesophagus_x(t, y), y], axis=1)


def _stomach(t: Thorax) -> Path:
    gx, gy = t.ge_junction
    sx, sy = t.stomach_center
    return bezier(
        (gx, gy),
        (gx + t.cm(2.0), gy + t.cm(3.0)),
        (sx + t.cm(3.0), sy + t.cm(4.0)),
        (sx + t.cm(4.0), sy - t.cm(1.0)),
        n=60,
    )


def _along(path: Path, length: float) -> Path:
    """The first `length` (normalised) of a path."""
    points = resample(path, 0.001)
    steps = np.hypot(*np.diff(points, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    return points[arc <= length] if length < arc[-1] else points


def _ngt(t: Thorax, d: DeviceTruth) -> Path:
    gx, gy = t.ge_junction
    if d.variant is Variant.AIRWAY:
        return _join(trachea_path(t), bronchus_path(t, d.side or Side.RIGHT, d.tip_depth_cm)[1:])
    if d.variant is Variant.COILED:
        center_y = t.carina_y - t.cm(d.tip_depth_cm) + t.cm(4.0)
        radius = t.cm(1.4)
        cx = float(oesophagus_x(t, np.array([center_y]))[0])
        down = _oesophagus(t, center_y + radius)
        theta = np.linspace(np.pi / 2, np.pi / 2 + 4.3 * np.pi, 120)
        wobble = 1.0 + 0.15 * np.sin(theta * 1.5)
        coil = np.stack(
            [
                cx + radius * wobble * np.cos(theta),
                center_y + radius * wobble * np.sin(theta) - t.cm(0.8) * (theta - theta[0]) / 6,
            ],
            axis=1,
        )
        return _join(down, coil)
    gullet = _oesophagus(t, gy)
    if d.variant is Variant.GE_JUNCTION:
        if d.tip_depth_cm <= 0:
            return _until_y(gullet, gy + t.cm(d.tip_depth_cm))
        return _join(gullet, _along(_stomach(t), t.cm(d.tip_depth_cm)))
    if d.variant is Variant.BEYOND_FIELD:
        sx, sy = t.stomach_center
        tail = bezier(
            (gx, gy),
            (gx + t.cm(3.0), gy + t.cm(4.0)),
            (sx, sy + t.cm(8.0)),
            (sx - t.cm(2.0), 1.2),
            n=60,
        )
        return _join(gullet, tail)
    return _join(gullet, _along(_stomach(t), t.cm(d.tip_depth_cm)))


def _svc_x(t: Thorax) -> float:
    return t.midline_x - max(t.mediastinum_half_width * 0.6, t.cm(2.2))


def _venous_entry(t: Thorax, access: Access) -> Path:
    """From the access vein down to the top of the SVC."""
    svc_top = (_svc_x(t), t.carina_y - t.cm(4.0))
    s = -1.0 if access in (Access.RIGHT_IJ, Access.RIGHT_SUBCLAVIAN) else 1.0
    confluence = (t.midline_x + s * t.cm(3.2), t.lung_top_y + 0.05)
    if access in (Access.RIGHT_IJ, Access.LEFT_IJ):
        start = (t.midline_x + s * t.cm(3.8), -0.02)
    else:
        start = (t.midline_x + s * (t.lung_half_width + 0.06), t.lung_top_y + 0.03)
    first = bezier(start, ((start[0] + confluence[0]) / 2, confluence[1] - 0.01), confluence, n=30)
    second = bezier(confluence, (svc_top[0], confluence[1] + 0.02), svc_top, n=30)
    return _join(first, second[1:])


def subclavian_confluence(t: Thorax, access: Access) -> tuple[float, float]:
    """Where a subclavian vein meets the jugular (the turn a misdirected line misses)."""
    s = -1.0 if access in (Access.RIGHT_IJ, Access.RIGHT_SUBCLAVIAN) else 1.0
    return (t.midline_x + s * t.cm(3.2), t.lung_top_y + 0.05)


def _cvc(t: Thorax, d: DeviceTruth) -> Path:
    access = d.access or Access.RIGHT_IJ
    if d.variant is Variant.MISDIRECTED:
        s = -1.0 if access is Access.RIGHT_SUBCLAVIAN else 1.0
        start = (t.midline_x + s * (t.lung_half_width + 0.06), t.lung_top_y + 0.03)
        cx, cy = subclavian_confluence(t, access)
        tip = (cx + s * t.cm(0.4), cy - t.cm(d.tip_depth_cm))
        return _join(
            bezier(start, ((start[0] + cx) / 2, cy - 0.01), (cx, cy), n=30),
            bezier((cx, cy), (cx, cy - t.cm(1.0)), tip, n=20)[1:],
        )
    entry = _venous_entry(t, access)
    tip_y = t.cavoatrial_y + t.cm(d.tip_depth_cm)
    x0, y0 = entry[-1]
    if tip_y <= t.cavoatrial_y:
        return _join(entry, polyline((x0, y0), (x0, tip_y))[1:])
    atrium = bezier(
        (x0, y0),
        (x0, t.cavoatrial_y),
        (x0 + t.cm(0.6), (t.cavoatrial_y + tip_y) / 2),
        (x0 + t.cm(1.2), tip_y),
        n=40,
    )
    return _join(entry, atrium[1:])


def _swan_ganz(t: Thorax, d: DeviceTruth) -> Path:
    entry = _venous_entry(t, Access.RIGHT_IJ)
    x0, y0 = entry[-1]
    atrium_y = t.cavoatrial_y + t.cm(2.5)
    ventricle = (t.midline_x + t.cm(3.0), t.cavoatrial_y + t.cm(6.0))
    trunk = (t.midline_x + t.cm(1.8), t.carina_y + t.cm(1.0))
    if d.side is Side.LEFT:
        tip = (t.midline_x + t.cm(3.5 + d.tip_depth_cm), t.carina_y + t.cm(0.2))
    else:
        tip = (t.midline_x - t.cm(2.5 + d.tip_depth_cm), t.carina_y + t.cm(2.0))
    heart = bezier(
        (x0, y0), (x0, atrium_y), (x0 + t.cm(1.0), ventricle[1] + t.cm(1.5)), ventricle, n=50
    )
    outflow = bezier(ventricle, (ventricle[0] + t.cm(1.5), trunk[1] + t.cm(2.0)), trunk, n=40)
    artery = bezier(trunk, (trunk[0], trunk[1] - t.cm(1.0)), tip, n=30)
    return _join(entry, heart[1:], outflow[1:], artery[1:])


def frontal_path(t: Thorax, device: DeviceTruth) -> Path:
    """Centre line of a device on the frontal view; the last point is its tip."""
    build = {Device.ETT: _ett, Device.NGT: _ngt, Device.CVC: _cvc, Device.SWAN_GANZ: _swan_ganz}
    return build[device.device](t, device)


def tip(t: Thorax, device: DeviceTruth) -> tuple[float, float]:
    x, y = frontal_path(t, device)[-1]
    return float(x), float(y)


def _lateral_reference(
    t: Thorax, device: DeviceTruth, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(frontal x, lateral x) of the structure a device follows, at heights y."""
    airway_x = lateral_trachea_x(t, np.minimum(y, t.carina_y))
    if device.device is Device.ETT or device.variant is Variant.AIRWAY:
        return np.full_like(y, t.midline_x), airway_x + 0.4 * np.maximum(y - t.carina_y, 0.0)
    if device.device is Device.NGT:
        gy = t.ge_junction[1]
        gullet = lateral_trachea_x(t, np.minimum(y, gy)) + t.cm(1.6)
        return oesophagus_x(t, y), gullet - 1.0 * np.maximum(y - gy, 0.0)
    vein = airway_x - t.cm(2.2) - 0.7 * np.maximum(y - t.cavoatrial_y, 0.0)
    return np.full_like(y, _svc_x(t)), vein


def lateral_path(t: Thorax, device: DeviceTruth) -> Path:
    """The device on the lateral view: same heights, depth from the structure it follows."""
    path = frontal_path(t, device)
    front_ref, lateral_ref = _lateral_reference(t, device, path[:, 1])
    anterior, posterior = lateral_depth(t)
    x = np.clip(lateral_ref + 0.5 * (path[:, 0] - front_ref), anterior, posterior)
    return np.stack([x, path[:, 1]], axis=1)


def _draw(layers: Layers, t: Thorax, device: DeviceTruth, path: Path) -> None:
    size = layers.overlay.shape[0]
    width_cm, density = DEVICE_STYLE[device.device]
    width = max(t.cm(width_cm), 2.2 / size)
    layers.overlay += density * strokes(size, [path], width)
    if device.device is Device.ETT:
        layers.overlay += 0.12 * strokes(size, [path], max(width * 0.3, 1.2 / size))


def draw_frontal(layers: Layers, study: StudyTruth) -> None:
    """Draws every device of a study into frontal layers (in place)."""
    for device in study.devices:
        _draw(layers, study.thorax, device, frontal_path(study.thorax, device))


def draw_lateral(layers: Layers, study: StudyTruth) -> None:
    """Draws every device of a study into lateral layers (in place)."""
    for device in study.devices:
        _draw(layers, study.thorax, device, lateral_path(study.thorax, device))


__all__ = ["draw_frontal", "draw_lateral", "draw_leads", "frontal_path", "lateral_path", "tip"]


def draw_leads(layers: Layers, study: StudyTruth, rng: np.random.Generator) -> None:
    """ECG electrodes and their wires: radio-opaque distractors that no label describes."""
    t, size = study.thorax, layers.overlay.shape[0]
    wires = []
    for _ in range(int(rng.integers(2, 5))):
        x = t.midline_x + rng.uniform(-1.0, 1.0) * (t.lung_half_width + 0.04)
        y = rng.uniform(t.lung_top_y - 0.04, t.lung_top_y + 0.25)
        radius = t.cm(0.9)
        theta = np.linspace(0.0, 2 * np.pi, 24)
        wires.append(np.stack([x + radius * np.cos(theta), y + radius * np.sin(theta)], axis=1))
        edge = (1.1 if x > t.midline_x else -0.1, rng.uniform(0.0, 0.6))
        bend = (x + rng.normal(0.0, 0.1), (y + edge[1]) / 2 + rng.normal(0.0, 0.05))
        wires.append(bezier((x, y + radius), bend, edge, n=30))
    layers.overlay += 0.16 * strokes(size, wires, max(t.cm(0.2), 1.2 / size), crisp=1.5)
