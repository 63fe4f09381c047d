"""The phantom thorax: lungs, mediastinum, heart, bones, diaphragm and stomach as density layers.

Densities are in arbitrary units where soft tissue is about 0.5, aerated lung about 0.2 and
bone or a device 0.1-0.5 more. Layers stay separate (`Layers`) so findings can change them
(fluid fills lung air, a pneumothorax removes lung markings) before `compose` adds them up.
Landmarks that devices follow (trachea, bronchi, oesophagus, veins) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr.synth.draw import (
    Path,
    bezier,
    curve,
    fill,
    grid,
    smoothstep,
    soften,
    soften_mask,
    splat,
    strokes,
)
from cxr.synth.truth import Side, Thorax

LUNG_AIR = 0.4


def side_sign(side: Side) -> float:
    """-1 for the patient's right (image left on a frontal view), +1 for the left."""
    return -1.0 if side is Side.RIGHT else 1.0


def cardiothoracic_ratio(severity: int, jitter: float) -> float:
    """Heart width over thoracic width for a cardiomegaly level (0 = normal heart)."""
    return (0.44, 0.545, 0.6, 0.66)[severity] + jitter


@dataclass
class Layers:
    """Density layers of one view; findings edit them, `compose` sums them."""

    body: np.ndarray
    lung: dict[Side, np.ndarray]
    vessels: np.ndarray
    solid: np.ndarray  # mediastinum, heart, bones
    opacity: np.ndarray  # 0..1 fraction of lung air replaced by fluid or tissue
    extra_air: np.ndarray  # pneumothorax, bubbles: additional lucency
    overlay: np.ndarray  # devices

    def lungs(self) -> np.ndarray:
        return np.maximum(self.lung[Side.RIGHT], self.lung[Side.LEFT])

    def compose(self) -> np.ndarray:
        lungs = self.lungs()
        air = LUNG_AIR * lungs * (1.0 - np.clip(self.opacity, 0.0, 1.0))
        markings = self.vessels * lungs * (1.0 - 0.6 * np.clip(self.opacity, 0.0, 1.0))
        return self.body - air - self.extra_air + markings + self.solid + self.overlay


# --- frontal landmarks -------------------------------------------------------------------


LUNG_WALL_POINTS = 41  # the first points of `lung_outline`: apex and lateral chest wall


def lung_outline(t: Thorax, side: Side) -> Path:
    """Frontal outline of one lung: apex, lateral wall, costophrenic angle, dome, medial border.

    The first LUNG_WALL_POINTS points run from the apex down the lateral wall.
    """
    s, mx = side_sign(side), t.midline_x
    med, half = t.mediastinum_half_width, t.lung_half_width
    dome = t.diaphragm_right_y if side is Side.RIGHT else t.diaphragm_left_y
    top = t.lung_top_y
    u = np.linspace(0.0, 1.0, 40)
    reach = np.sin(np.minimum(1.0, u / 0.55) * np.pi / 2) ** 0.6
    lateral = curve(
        mx + s * (med + 0.03 + (half - med - 0.03) * reach - 0.012 * u**3),
        top + 0.015 + u * (dome + 0.05 - top - 0.015),
    )
    v = np.linspace(0.0, 1.0, 30)
    cp_x, cardio_x = mx + s * (half - 0.012), mx + s * med * 1.05
    diaphragm = curve(
        cp_x + v * (cardio_x - cp_x), dome + 0.05 - 0.03 * v - 0.05 * np.sin(np.pi * v**0.8) ** 1.3
    )
    w = np.linspace(1.0, 0.0, 20)
    medial = curve(mx + s * med * (0.75 + 0.3 * w), top + 0.02 + w * (dome + 0.02 - top - 0.02))
    apex = np.array([[mx + s * (med + 0.018), top]])
    return np.concatenate([apex, lateral, diaphragm, medial])


def trachea_path(t: Thorax) -> Path:
    """Trachea centre line from the top of the image down to the carina."""
    return bezier(
        (t.midline_x, -0.02),
        (t.midline_x - t.cm(0.3), t.carina_y * 0.6),
        (t.midline_x, t.carina_y),
        n=40,
    )


def bronchus_path(t: Thorax, side: Side, length_cm: float) -> Path:
    """Main then lower-lobe bronchus from the carina; the right one is steeper."""
    s = side_sign(side)
    angle = np.radians(25.0 if side is Side.RIGHT else 45.0)
    main = t.cm(2.5 if side is Side.RIGHT else 5.0)
    knee = (t.midline_x + s * main * np.sin(angle), t.carina_y + main * np.cos(angle))
    length = t.cm(length_cm)
    beyond = max(length - main, 0.0)
    end = (knee[0] + s * beyond * 0.35, knee[1] + beyond * 0.94)
    path = bezier((t.midline_x, t.carina_y), knee, end, n=40)
    return _truncate(path, length)


def _truncate(path: Path, length: float) -> Path:
    steps = np.hypot(*np.diff(path, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    keep = arc <= length
    if keep.all():
        return path
    last = int(np.argmin(keep))
    frac = (length - arc[last - 1]) / max(steps[last - 1], 1e-9)
    tip = path[last - 1] + frac * (path[last] - path[last - 1])
    return np.concatenate([path[:last], tip[None]])


def oesophagus_x(t: Thorax, y: np.ndarray) -> np.ndarray:
    """The oesophagus runs just left of the midline, drifting left towards the GE junction."""
    gx, gy = t.ge_junction
    frac = np.clip((y - t.carina_y) / (gy - t.carina_y), 0.0, 1.0)
    return t.midline_x + t.cm(0.6) + frac**2 * (gx - t.midline_x - t.cm(0.6))


def heart_box(t: Thorax, ctr: float) -> tuple[float, float, float, float]:
    """(right border x, left border x, top y, bottom y) of the cardiac silhouette."""
    width = ctr * t.thoracic_width
    bottom = t.diaphragm_left_y + 0.015
    return (t.midline_x - 0.36 * width, t.midline_x + 0.64 * width, bottom - t.heart_height, bottom)


# --- frontal rendering -------------------------------------------------------------------


def _body(t: Thorax, size: int) -> np.ndarray:
    """Soft tissue: neck, sloping shoulders, chest wall; thicker in the middle like a cylinder."""
    x, y = grid(size)
    neck_bottom, shoulder = t.lung_top_y - 0.1, t.lung_top_y + 0.05
    ramp = np.clip((y - neck_bottom) / (shoulder - neck_bottom), 0.0, 1.0)
    widest = t.body_half_width + 0.11
    half = t.cm(6.0) + (widest - t.cm(6.0)) * np.sin(ramp * np.pi / 2) ** 0.7
    below = np.clip((y - shoulder) / 0.35, 0.0, 1.0)
    half = half - 0.1 * np.sin(below * np.pi / 2)
    u = np.abs(x - t.midline_x) / half
    thickness = np.sqrt(np.clip(1.0 - u**2, 0.0, 1.0))
    return (0.17 + 0.33 * thickness**0.6) * smoothstep(1.0 - u, 0.025)


def _vessels(t: Thorax, size: int, rng: np.random.Generator) -> np.ndarray:
    """Branching pulmonary vessels radiating from each hilum, thinning to the periphery."""
    roots = [
        (
            (t.midline_x + side_sign(side) * (t.mediastinum_half_width + 0.025), t.carina_y + 0.05),
            side_sign(side),
            (-165.0, -15.0),
            6,
        )
        for side in Side
    ]
    return vessel_tree(size, roots, rng)


def vessel_tree(
    size: int,
    roots: list[tuple[tuple[float, float], float, tuple[float, float], int]],
    rng: np.random.Generator,
) -> np.ndarray:
    """Branching vessels from (hilum, mirror sign, angle range in degrees, trunk count) roots."""
    starts, mids, ends, widths = [], [], [], []
    for hilum, s, (low, high), trunks in roots:
        stack = [(hilum, float(a), 0.11, 1.0) for a in np.radians(rng.uniform(low, high, trunks))]
        while stack:
            start, angle, length, width = stack.pop()
            direction = np.array([np.cos(angle) * s, -np.sin(angle)])
            end = np.asarray(start) + direction * length
            starts.append(start)
            mids.append((np.asarray(start) + end) / 2 + rng.normal(0, 0.006, 2))
            ends.append(end)
            widths.append(width)
            if length > 0.035:
                for turn in (-0.35, 0.35):
                    stack.append(
                        (
                            tuple(end),
                            angle + turn + rng.normal(0, 0.12),
                            length * rng.uniform(0.6, 0.8),
                            width * 0.65,
                        )
                    )
    u = np.linspace(0.0, 1.0, max(8, size // 16))[None, :, None]
    a, b, c = (np.asarray(v, dtype=np.float64)[:, None, :] for v in (starts, mids, ends))
    points = (1 - u) ** 2 * a + 2 * (1 - u) * u * b + u**2 * c
    weights = np.repeat(np.asarray(widths), points.shape[1]) * 0.35
    canvas = np.zeros((size, size), dtype=np.float32)
    splat(canvas, points.reshape(-1, 2), weights)
    return np.minimum(soften(canvas, 0.0035), 0.08)


def _ribs(t: Thorax, size: int, rng: np.random.Generator) -> np.ndarray:
    """Posterior ribs arching out from the spine, fainter anterior ribs sloping down medially."""
    spacing = (t.diaphragm_right_y - t.lung_top_y) / 8.6
    posterior, anterior = [], []
    for side in Side:
        s = side_sign(side)
        for k in range(11):
            y0 = t.lung_top_y - 0.03 + k * spacing
            u = np.linspace(0.0, 1.0, 24)
            x = t.midline_x + s * (t.cm(2.0) + u * (t.lung_half_width + 0.03 - t.cm(2.0)))
            y = y0 - 0.045 * np.sin(np.pi * u * 0.7) + (0.08 + 0.008 * k) * u**3
            posterior.append(curve(x, y + rng.normal(0, 0.002)))
        for k in range(7):
            y_lat = t.lung_top_y + 0.02 + k * spacing * 1.05
            u = np.linspace(0.0, 1.0, 16)
            x = t.midline_x + s * (t.lung_half_width - u * (t.lung_half_width - t.cm(3.5)))
            anterior.append(curve(x, y_lat + 0.13 * u**1.3))
    values = [0.07] * len(posterior) + [0.03] * len(anterior)
    return strokes(size, posterior + anterior, t.cm(0.85), crisp=1.3, values=values)


def _shoulder_girdle(t: Thorax, mask: np.ndarray) -> None:
    clavicles = []
    for side in Side:
        s = side_sign(side)
        start = (t.midline_x + s * t.cm(1.8), t.lung_top_y + 0.02)
        end = (t.midline_x + s * (t.lung_half_width + 0.05), t.lung_top_y - 0.045)
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.015)
        clavicles.append(bezier(start, mid, end, n=24))
        head = (t.midline_x + s * (t.lung_half_width + 0.1), t.lung_top_y + 0.01)
        theta = np.linspace(0, 2 * np.pi, 40)
        radius = t.cm(3.0)
        fill(mask, curve(head[0] + radius * np.cos(theta), head[1] + radius * np.sin(theta)), 0.12)
        blade = curve(
            np.array([0.0, 0.05, 0.02]) * s + t.midline_x + s * (t.lung_half_width - 0.02),
            np.array([t.lung_top_y, t.lung_top_y + 0.02, t.lung_top_y + 0.22]),
        )
        fill(mask, blade, 0.05)
    mask += 0.13 * strokes(mask.shape[0], clavicles, t.cm(1.6), crisp=1.8)


def _spine(t: Thorax, size: int) -> np.ndarray:
    x, y = grid(size)
    column = smoothstep(t.cm(2.2) - np.abs(x - t.midline_x), t.cm(0.4))
    discs = 0.8 + 0.2 * np.cos(np.pi * (y - t.carina_y) / t.cm(2.6)) ** 8
    return (0.08 * column * discs).astype(np.float32)


def _heart(t: Thorax, size: int, ctr: float) -> np.ndarray:
    """Cardiac silhouette thickness profile in [0, 1]: a tilted ellipse on the left dome."""
    right, left, top, bottom = heart_box(t, ctr)
    cx, cy = (right + left) / 2, bottom - 0.5 * (bottom - top)
    reach = 0.75 * max(left - right, bottom - top)
    r0, r1 = max(int((cy - reach) * size), 0), min(int((cy + reach) * size) + 1, size)
    c0, c1 = max(int((cx - reach) * size), 0), min(int((cx + reach) * size) + 1, size)
    x, y = grid(size)
    angle = np.radians(-25.0)
    dx, dy = x[:, c0:c1] - cx, y[r0:r1] - cy
    u = (dx * np.cos(angle) - dy * np.sin(angle)) / ((left - right) / 2 * 1.05)
    v = (dx * np.sin(angle) + dy * np.cos(angle)) / (0.5 * (bottom - top))
    r2 = u**2 + v**2
    heart = np.zeros((size, size), dtype=np.float32)
    heart[r0:r1, c0:c1] = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) ** 0.8 * smoothstep(1.0 - r2, 0.15)
    return heart


def _mediastinum(t: Thorax, size: int) -> np.ndarray:
    x, y = grid(size)
    upper = smoothstep(t.mediastinum_half_width * 0.95 - np.abs(x - t.midline_x), 0.01)
    solid = 0.07 * upper * smoothstep(t.carina_y + 0.08 - y, 0.04)
    knob = (
        (x - t.midline_x - t.mediastinum_half_width * 0.8) ** 2 + (y - t.carina_y + 0.035) ** 2
    ) / t.cm(1.8) ** 2
    return solid + 0.08 * np.sqrt(np.clip(1.0 - knob, 0.0, 1.0))


def _abdomen(t: Thorax, size: int) -> np.ndarray:
    """Stomach bubble under the left hemidiaphragm (a lucency)."""
    x, y = grid(size)
    sx, sy = t.stomach_center
    r = ((x - sx) / t.cm(3.2)) ** 2 + ((y - sy) / t.cm(1.8)) ** 2
    below = smoothstep(y - t.diaphragm_left_y - 0.02, 0.006)
    return (0.1 * smoothstep(1.0 - r, 0.3) * below).astype(np.float32)


def y_grid(size: int) -> np.ndarray:
    return grid(size)[1]


def frontal_layers(t: Thorax, size: int, ctr: float, rng: np.random.Generator) -> Layers:
    """The normal frontal thorax of a patient, before findings and devices."""
    zeros = np.zeros((size, size), dtype=np.float32)
    heart = _heart(t, size, ctr)
    lung = {}
    for side in Side:
        mask = zeros.copy()
        fill(mask, lung_outline(t, side))
        lung[side] = soften_mask(mask, 0.006) * (1.0 - 0.75 * heart)
    lungs = np.maximum(lung[Side.RIGHT], lung[Side.LEFT])
    ribs = _ribs(t, size, rng)
    girdle = zeros.copy()
    _shoulder_girdle(t, girdle)
    bones = soften_mask(girdle, 0.002) + ribs * (0.35 + 0.65 * lungs)
    airways = [trachea_path(t)] + [bronchus_path(t, side, 3.5) for side in Side]
    trachea = strokes(size, airways, t.cm(1.5), crisp=1.5)
    below = smoothstep(y_grid(size) - t.diaphragm_left_y - 0.03, 0.03)
    solid = (
        _mediastinum(t, size)
        + 0.15 * heart
        + _spine(t, size) * (1.0 - 0.6 * below)
        + bones
        - 0.11 * trachea
    )
    return Layers(
        body=_body(t, size),
        lung=lung,
        vessels=_vessels(t, size, rng),
        solid=solid,
        opacity=zeros.copy(),
        extra_air=_abdomen(t, size),
        overlay=zeros.copy(),
    )


# --- lateral rendering -------------------------------------------------------------------
# Lateral coordinates: x from anterior (image left) to posterior; heights match the frontal.

LATERAL_CENTER = 0.5


def lateral_depth(t: Thorax) -> tuple[float, float]:
    """(anterior chest wall x, posterior chest wall x) on the lateral view."""
    half = t.cm(11.5) * (t.body_half_width / 0.42)
    return LATERAL_CENTER - half, LATERAL_CENTER + half


def lateral_trachea_x(t: Thorax, y: np.ndarray | float) -> np.ndarray:
    """The trachea runs down and back: its x on the lateral view at height y."""
    anterior, posterior = lateral_depth(t)
    frac = np.clip(np.asarray(y, dtype=np.float64) / t.carina_y, 0.0, 1.2)
    return anterior + (posterior - anterior) * (0.38 + 0.14 * frac)


def lateral_lung_outline(t: Thorax) -> Path:
    """Superimposed lungs on the lateral: rounded apex, sternum in front, deep posterior sulcus."""
    anterior, posterior = lateral_depth(t)
    dome = (t.diaphragm_right_y + t.diaphragm_left_y) / 2
    front, back = anterior + t.cm(1.5), posterior - t.cm(2.5)
    v = np.linspace(0.0, 1.0, 40)
    diaphragm = curve(
        front + 0.03 + v * (back - front - 0.03),
        dome + 0.03 + 0.07 * v**4 - 0.06 * np.sin(np.pi * v**0.8),
    )
    u = np.linspace(0.0, 1.0, 30)
    posterior_wall = curve(back - 0.02 * u**2, dome + 0.1 - u * (dome + 0.1 - t.lung_top_y - 0.05))
    apex = bezier(
        (back - 0.02, t.lung_top_y + 0.05),
        (back - 0.04, t.lung_top_y - 0.03),
        ((front + back) / 2, t.lung_top_y - 0.02),
        (front + 0.06, t.lung_top_y + 0.1),
        n=30,
    )
    anterior_wall = bezier(
        (front + 0.06, t.lung_top_y + 0.1),
        (front, (t.lung_top_y + dome) / 2),
        (front + 0.03, dome + 0.03),
        n=30,
    )
    return np.concatenate([diaphragm, posterior_wall, apex, anterior_wall])


def lateral_heart(t: Thorax, ctr: float) -> tuple[float, float, float, float]:
    """(centre x, centre y, x radius, y radius) of the heart on the lateral view."""
    anterior, posterior = lateral_depth(t)
    depth = posterior - anterior
    rx = depth * 0.22 * (ctr / 0.44) ** 1.2
    bottom = t.diaphragm_left_y + 0.01
    return anterior + t.cm(1.0) + rx, bottom - t.heart_height * 0.45, rx, t.heart_height * 0.55


def lateral_layers(t: Thorax, size: int, ctr: float, rng: np.random.Generator) -> Layers:
    """The normal lateral thorax: one superimposed lung field, spine behind, heart in front."""
    x, y = grid(size)
    zeros = np.zeros((size, size), dtype=np.float32)
    anterior, posterior = lateral_depth(t)
    half = (posterior - anterior) / 2 + 0.03
    u = np.abs(x - LATERAL_CENTER) / half
    body = (0.3 + 0.34 * np.sqrt(np.clip(1 - u**2, 0, 1)) ** 0.5) * smoothstep(1.0 - u, 0.02)
    mask = zeros.copy()
    fill(mask, lateral_lung_outline(t))
    lung = soften_mask(mask, 0.008)
    solid = zeros.copy()
    spine_front = posterior - t.cm(7.5)
    column = smoothstep(x - spine_front, t.cm(0.3)) * smoothstep(
        spine_front + t.cm(4.0) - x, t.cm(0.3)
    )
    discs = 0.55 + 0.45 * (np.cos(np.pi * (y - t.carina_y) / t.cm(2.6)) ** 2) ** 3
    solid += 0.16 * column * discs
    solid += (
        0.08
        * smoothstep(x - spine_front - t.cm(4.5), t.cm(0.5))
        * smoothstep(posterior - x, t.cm(0.5))
    )
    sternum = smoothstep(anterior + t.cm(1.8) - x, t.cm(0.4)) * smoothstep(
        x - anterior - t.cm(0.3), t.cm(0.3)
    )
    solid += (
        0.07
        * sternum
        * smoothstep(y - t.lung_top_y - 0.06, 0.01)
        * smoothstep(t.diaphragm_right_y - 0.05 - y, 0.02)
    )
    hx, hy, rx, ry = lateral_heart(t, ctr)
    r = ((x - hx) / rx) ** 2 + ((y - hy) / ry) ** 2
    heart = np.sqrt(np.clip(1.0 - r, 0.0, 1.0)) ** 0.4
    solid += 0.14 * heart
    lung = lung * (1.0 - 0.6 * heart)
    heights = np.linspace(-0.02, t.carina_y + t.cm(2.0), 30)
    airway = strokes(size, [curve(lateral_trachea_x(t, heights), heights)], t.cm(1.6), crisp=1.5)
    solid -= 0.1 * airway
    ribs = []
    for k in range(10):
        y0 = t.lung_top_y + k * (t.diaphragm_right_y - t.lung_top_y) / 9
        xs = np.linspace(anterior + 0.05, posterior - t.cm(4.0), 20)
        ribs.append(
            curve(
                xs, y0 + 0.05 * ((xs - xs[0]) / (xs[-1] - xs[0]) - 0.7) ** 2 + rng.normal(0, 0.003)
            )
        )
    solid += 0.03 * strokes(size, ribs, t.cm(0.8), crisp=1.2)
    return Layers(
        body=body.astype(np.float32),
        lung={Side.RIGHT: lung, Side.LEFT: lung},
        vessels=_lateral_vessels(t, size, rng),
        solid=solid.astype(np.float32),
        opacity=zeros.copy(),
        extra_air=zeros.copy(),
        overlay=zeros.copy(),
    )


def _lateral_vessels(t: Thorax, size: int, rng: np.random.Generator) -> np.ndarray:
    hilum = (float(lateral_trachea_x(t, t.carina_y)) + t.cm(0.5), t.carina_y + 0.05)
    return vessel_tree(size, [(hilum, 1.0, (-170.0, 170.0), 9)], rng)
