"""Preprocessed images on disk, so training decodes each DICOM once.

`preprocess` resizes the longer side to `image_size` (anti-aliased, aspect kept) and pads to a
square with 0 (dark, like air). `ImageCache` stores the result as uint16 `.npy` files keyed by
SOPInstanceUID (non-DICOM files: a hash of resolved path, size and mtime) under a folder named
by a hash of the preprocessing parameters and `PREPROCESS_VERSION`, so a changed parameter or
changed code can never reuse a stale entry. The key of each file is remembered in `keys/` per
(path, size, mtime), so a hit in a new process reads no DICOM header. Writes are atomic
(temporary file + rename): any number of DataLoader workers or processes may fill one cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from cxr.io.dicom import XrayImage, read_header, read_image

log = logging.getLogger(__name__)

# Bump when `preprocess` changes its output for the same parameters.
PREPROCESS_VERSION = 1
STORED_DTYPE = np.uint16
_STORED_MAX = float(np.iinfo(STORED_DTYPE).max)
_SAFE_KEY = re.compile(r"[0-9A-Za-z.\-_]{1,128}")


def preprocess(image: XrayImage, image_size: int) -> np.ndarray:
    """Resizes the longer side to `image_size` (anti-aliased) and pads to a square with 0.

    Returns:
        float32 array of shape (image_size, image_size) in [0, 1], bright = dense, the image
        centred.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    pixels = image.pixels
    height, width = pixels.shape
    scale = image_size / max(height, width)
    new_height = max(1, min(image_size, round(height * scale)))
    new_width = max(1, min(image_size, round(width * scale)))
    # Pillow's resampling widens its filter by the scale factor when shrinking: anti-aliased.
    resized = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F").resize(
        (new_width, new_height), Image.Resampling.LANCZOS
    )
    square = np.zeros((image_size, image_size), dtype=np.float32)
    top, left = (image_size - new_height) // 2, (image_size - new_width) // 2
    square[top : top + new_height, left : left + new_width] = np.asarray(resized)
    np.clip(square, 0.0, 1.0, out=square)  # Lanczos rings slightly beyond the input range
    return square


def preprocessing_parameters(image_size: int) -> dict[str, Any]:
    """Everything that determines `preprocess`'s output; its hash names the cache folder."""
    return {
        "image_size": image_size,
        "resize": "longer side, Pillow LANCZOS (anti-aliased)",
        "pad": "centred, value 0",
        "stored_dtype": np.dtype(STORED_DTYPE).name,
        "version": PREPROCESS_VERSION,
    }


class ImageCache:
    """Preprocessed images on disk; `get` decodes a file only the first time it is seen."""

    def __init__(self, directory: Path, image_size: int) -> None:
        self.image_size = image_size
        parameters = preprocessing_parameters(image_size)
        digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
        self.parameters_hash = digest[:16]
        self.directory = Path(directory) / f"size{image_size}-{self.parameters_hash}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_parameters(parameters)
        self._keys: dict[tuple[str, int, int], str] = {}

    def get(self, path: str | Path) -> np.ndarray:
        """The preprocessed image (float32, image_size x image_size, [0, 1], bright = dense).

        Raises:
            UnreadableImage: the file cannot be read (nothing is cached for it).
        """
        entry = self.entry_path(path)
        cached = self._load(entry)
        if cached is not None:
            return cached
        stored = _quantize(preprocess(read_image(path), self.image_size))
        entry.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(entry, lambda handle: np.save(handle, stored, allow_pickle=False))
        return _dequantize(stored)  # what every later hit returns, bit for bit

    def contains(self, path: str | Path) -> bool:
        """Whether a valid entry for this file exists already."""
        return self._load(self.entry_path(path)) is not None

    def entry_path(self, path: str | Path) -> Path:
        """Where the file's preprocessed image is (or would be) stored."""
        key = self.key(path)
        shard = hashlib.sha1(key.encode()).hexdigest()[:2]
        return self.directory / shard / f"{key}.npy"

    def key(self, path: str | Path) -> str:
        """SOPInstanceUID for DICOM; for PNG/JPEG a hash of resolved path, size and mtime."""
        resolved = Path(path).resolve()
        stat = resolved.stat()
        identity = (str(resolved), stat.st_size, stat.st_mtime_ns)
        if identity not in self._keys:
            self._keys[identity] = self._remembered_key(resolved, stat.st_size, stat.st_mtime_ns)
        return self._keys[identity]

    def _remembered_key(self, resolved: Path, size: int, mtime_ns: int) -> str:
        """The key, remembered on disk per (path, size, mtime): a new process reads no header."""
        marker = self.directory / "keys" / f"{_digest(f'{resolved}|{size}|{mtime_ns}')}.key"
        try:
            key = marker.read_text(encoding="ascii")
            if _SAFE_KEY.fullmatch(key):
                return key
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        key = self._compute_key(resolved, size, mtime_ns)
        marker.parent.mkdir(exist_ok=True)
        _atomic_write(marker, lambda handle: handle.write(key.encode("ascii")))
        return key

    def _compute_key(self, resolved: Path, size: int, mtime_ns: int) -> str:
        uid = read_header(resolved).sop_instance_uid
        if uid is not None:
            return uid if _SAFE_KEY.fullmatch(uid) else "uid-" + _digest(uid)
        return "file-" + _digest(f"{resolved}|{size}|{mtime_ns}")

    def _load(self, entry: Path) -> np.ndarray | None:
        try:
            stored = np.load(entry, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as error:
            log.warning("%s: damaged cache entry, decoding again (%s)", entry, error)
            return None
        expected = (self.image_size, self.image_size)
        if stored.shape != expected or stored.dtype != STORED_DTYPE:
            log.warning(
                "%s: cache entry has shape %s %s, decoding again", entry, stored.shape, stored.dtype
            )
            return None
        return _dequantize(stored)

    def _write_parameters(self, parameters: dict[str, Any]) -> None:
        target = self.directory / "parameters.json"
        if not target.exists():
            text = json.dumps(parameters, indent=2, sort_keys=True).encode()
            _atomic_write(target, lambda handle: handle.write(text))


def _quantize(pixels: np.ndarray) -> np.ndarray:
    return np.rint(pixels * _STORED_MAX).astype(STORED_DTYPE)


def _dequantize(stored: np.ndarray) -> np.ndarray:
    pixels = stored.astype(np.float32)
    pixels *= np.float32(1.0 / _STORED_MAX)
    return pixels


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _atomic_write(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Writes through a temporary file in the same folder, then renames it into place."""
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.chmod(temporary, 0o644)  # temporary files are private; cache entries are not
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
