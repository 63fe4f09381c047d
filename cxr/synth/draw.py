"""Vectorised raster primitives in normalised coordinates (x right, y down, both in [0, 1]).

Paths are (N, 2) float arrays of (x, y). Masks are float32 images of the canvas size.
Polygons are filled by PIL's scanline fill and lines are splatted points blurred across
the line, so nothing here loops over pixels in Python.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

Path = np.ndarray


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: x as a (1, size) row, y as a (size, 1) column."""
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)
    return axis[None, :], axis[:, None]


def fill(mask: np.ndarray, path: Path, value: float = 1.0) -> None:
    """Fills the polygon `path` into `mask` (in place) with `value` (PIL scanline fill)."""
    size = mask.shape[0]
    image = Image.new("1", (size, size), 0)
    ImageDraw.Draw(image).polygon([(float(x), float(y)) for x, y in path * size], fill=1)
    mask[np.asarray(image, dtype=bool)] = value


def resample(path: Path, step: float) -> Path:
    """Points along the polyline every `step` (normalised units)."""
    segment = np.hypot(*np.diff(path, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(segment)])
    if arc[-1] <= 0:
        return path[:1].copy()
    at = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step)) + 1))
    return np.stack([np.interp(at, arc, path[:, 0]), np.interp(at, arc, path[:, 1])], axis=1)


def strokes(
    size: int,
    paths: list[Path],
    width: float,
    crisp: float = 2.5,
    values: list[float] | None = None,
) -> np.ndarray:
    """Thick polylines of `width` (normalised) as a soft-edged mask, each path at its value.

    Points every half pixel are accumulated, blurred across the line and clipped: `crisp`
    sets how flat-topped the profile is (1 = Gaussian ridge, larger = sharper edges). Loops
    and crossings cost nothing extra, and all paths of one width share a single blur.
    """
    canvas = np.zeros((size, size), dtype=np.float32)
    levels = values or [1.0] * len(paths)
    points = [resample(p, 0.5 / size) for p in paths if len(p)]
    if not points:
        return canvas
    every = np.concatenate(points)
    value = np.concatenate([np.full(len(p), v) for p, v in zip(points, levels, strict=True)])
    sigma = max(width * size / (2 * np.sqrt(2 * np.log(2 * crisp))), 0.5)
    splat(canvas, every, value * np.sqrt(2 * np.pi) * sigma / 2)
    margin = int(np.ceil(4 * sigma)) + 1
    cols, rows = (every[:, 0] * size).astype(int), (every[:, 1] * size).astype(int)
    r0, r1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, size)
    c0, c1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, size)
    if r0 >= r1 or c0 >= c1:
        return canvas
    window = gaussian_filter(canvas[r0:r1, c0:c1], sigma, mode="constant", truncate=3.0)
    canvas[r0:r1, c0:c1] = np.clip(crisp * window, 0.0, max(levels))
    return canvas


def splat(canvas: np.ndarray, points: Path, weights: np.ndarray) -> None:
    """Adds `weights` at the pixels of `points` (N, 2), in place: thin lines before a blur."""
    size = canvas.shape[0]
    cols = np.clip((points[:, 0] * size).astype(np.int64), 0, size - 1)
    rows = np.clip((points[:, 1] * size).astype(np.int64), 0, size - 1)
    inside = (points[:, 0] >= 0) & (points[:, 0] < 1) & (points[:, 1] >= 0) & (points[:, 1] < 1)
    flat = np.bincount(rows[inside] * size + cols[inside], weights[inside], minlength=size * size)
    canvas += flat.reshape(size, size).astype(canvas.dtype)


def soften(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with `sigma` in normalised units."""
    size = image.shape[0]
    return gaussian_filter(image, sigma * size, mode="nearest", truncate=3.0)


def soften_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a mask that is zero outside a region: only that region's box is blurred."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows) == 0:
        return mask.copy()
    size = mask.shape[0]
    margin = int(np.ceil(3 * sigma * size)) + 1
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, size)
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, size)
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = gaussian_filter(
        mask[r0:r1, c0:c1], sigma * size, mode="constant", truncate=3.0
    )
    return out


def smoothstep(value: np.ndarray, width: float) -> np.ndarray:
    """0 below -width, 1 above +width, smooth between (a soft edge of a signed distance)."""
    t = np.clip(value / (2 * width) + 0.5, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def curve(x: np.ndarray, y: np.ndarray) -> Path:
    """(x, y) arrays as a path."""
    return np.stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)], axis=1)


def bezier(*controls: tuple[float, float], n: int = 48) -> Path:
    """A Bezier curve through control points (x, y) of any degree."""
    t = np.linspace(0.0, 1.0, n)[:, None, None]
    points = np.broadcast_to(np.asarray(controls, dtype=np.float64), (n, len(controls), 2))
    while points.shape[1] > 1:
        points = points[:, :-1] * (1 - t) + points[:, 1:] * t
    return np.ascontiguousarray(points[:, 0])


def polyline(*points: tuple[float, float]) -> Path:
    return np.asarray(points, dtype=np.float64)
