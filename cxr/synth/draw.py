"""Vectorised raster primitives in normalised coordinates (x right, y down, both in [0, 1]).

Paths are (N, 2) float arrays of (x, y). Masks are float32 images of the canvas size.
Polygons go through `skimage.draw.polygon`, so nothing here loops over pixels in Python.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.draw import disk, polygon

Path = np.ndarray


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: x as a (1, size) row, y as a (size, 1) column."""
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)
    return axis[None, :], axis[:, None]


def fill(mask: np.ndarray, path: Path, value: float = 1.0) -> None:
    """Fills the polygon `path` into `mask` (in place) with `value`."""
    size = mask.shape[0]
    rows, cols = polygon(path[:, 1] * size - 0.5, path[:, 0] * size - 0.5, mask.shape)
    mask[rows, cols] = value


def polygon_mask(size: int, path: Path) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.float32)
    fill(mask, path)
    return mask


def resample(path: Path, step: float) -> Path:
    """Points along the polyline every `step` (normalised units)."""
    segment = np.hypot(*np.diff(path, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(segment)])
    if arc[-1] <= 0:
        return path[:1].copy()
    at = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step)) + 1))
    return np.stack([np.interp(at, arc, path[:, 0]), np.interp(at, arc, path[:, 1])], axis=1)


def stroke(mask: np.ndarray, path: Path, width: float, value: float = 1.0, chunk: int = 40) -> None:
    """Draws a thick polyline of `width` (normalised) into `mask`, in place, with round ends.

    The outline is built from offset curves in chunks of `chunk` pixels, so loops and crossings
    stay filled; a path that does not curl back on itself can use one large chunk.
    """
    size = mask.shape[0]
    points = resample(path, 1.0 / size)
    if len(points) < 2:
        return
    tangent = np.gradient(points, axis=0)
    tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * (width / 2)
    left, right = points + normal, points - normal
    for start in range(0, len(points) - 1, chunk):
        stop = min(start + chunk + 1, len(points))
        outline = np.concatenate([left[start:stop], right[start:stop][::-1]])
        fill(mask, outline, value)
    radius = max(width * size / 2, 0.5)
    for end in (points[0], points[-1]):
        rows, cols = disk((end[1] * size - 0.5, end[0] * size - 0.5), radius, shape=mask.shape)
        mask[rows, cols] = value


def splat(canvas: np.ndarray, points: Path, weights: np.ndarray) -> None:
    """Adds `weights` at the pixels of `points` (N, 2), in place: thin lines before a blur."""
    size = canvas.shape[0]
    cols = np.clip((points[:, 0] * size).astype(np.int64), 0, size - 1)
    rows = np.clip((points[:, 1] * size).astype(np.int64), 0, size - 1)
    inside = (points[:, 0] >= 0) & (points[:, 0] < 1) & (points[:, 1] >= 0) & (points[:, 1] < 1)
    flat = np.bincount(rows[inside] * size + cols[inside], weights[inside], minlength=size * size)
    canvas += flat.reshape(size, size).astype(canvas.dtype)


def blot(mask: np.ndarray, center: tuple[float, float], radius: float, value: float = 1.0) -> None:
    """A filled disk of `radius` (normalised) at `center` (x, y)."""
    size = mask.shape[0]
    rows, cols = disk((center[1] * size - 0.5, center[0] * size - 0.5), radius * size,
                      shape=mask.shape)
    mask[rows, cols] = value


def soften(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with `sigma` in normalised units."""
    size = image.shape[0]
    return gaussian_filter(image, sigma * size, mode="nearest", truncate=3.0)


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
