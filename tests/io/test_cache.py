"""cxr.io.cache (and `cxr cache`): preprocessing, keys, staleness, atomic parallel writes."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import cxr.io.cache as cache_module
from cxr.cli import main
from cxr.io import DicomHeader, ImageCache, UnreadableImage, XrayImage, preprocess, read_image


def _image(pixels: np.ndarray) -> XrayImage:
    return XrayImage(pixels.astype(np.float32), DicomHeader(), "memory")


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.npy"))


def test_preprocess_keeps_aspect_and_pads_dark() -> None:
    tall = preprocess(_image(np.ones((200, 100))), 64)
    assert tall.shape == (64, 64) and tall.dtype == np.float32
    np.testing.assert_allclose(tall[:, 16:48], 1.0, atol=1e-6)  # 32 columns of image, centred
    assert tall[:, :16].max() == 0.0 and tall[:, 48:].max() == 0.0


def test_preprocess_is_anti_aliased() -> None:
    checkerboard = (np.indices((256, 256)).sum(axis=0) % 2).astype(np.float32)
    small = preprocess(_image(checkerboard), 64)
    assert small.std() < 0.05 and small.mean() == pytest.approx(0.5, abs=0.05)


def test_preprocess_upscales_small_images_and_stays_in_range() -> None:
    rng = np.random.default_rng(0)
    result = preprocess(_image(rng.random((20, 30))), 90)
    assert result.shape == (90, 90)
    assert result.min() >= 0.0 and result.max() <= 1.0
    assert result[:15].max() == 0.0  # 60 rows of image, centred in 90


def test_get_decodes_once_and_is_keyed_by_sop_instance_uid(
    tmp_path: Path, make: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make.write_dicom(tmp_path / "chest.dcm", make.chest_phantom(), bits_stored=12)
    cache = ImageCache(tmp_path / "cache", 64)
    first = cache.get(path)
    expected = preprocess(read_image(path), 64)
    np.testing.assert_allclose(first, expected, atol=1 / 65535)
    [entry] = _entries(tmp_path / "cache")
    assert entry.stem == read_image(path).header.sop_instance_uid

    def no_decoding(path: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache_module, "read_image", no_decoding)
    np.testing.assert_array_equal(ImageCache(tmp_path / "cache", 64).get(path), first)
    assert cache.contains(path)


def test_changed_parameters_never_reuse_an_entry(
    tmp_path: Path, make: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make.write_dicom(tmp_path / "chest.dcm", make.chest_phantom(), bits_stored=12)
    small = ImageCache(tmp_path / "cache", 32)
    small.get(path)
    large = ImageCache(tmp_path / "cache", 48)
    assert not large.contains(path)
    assert large.get(path).shape == (48, 48)
    monkeypatch.setattr(cache_module, "PREPROCESS_VERSION", cache_module.PREPROCESS_VERSION + 1)
    newer = ImageCache(tmp_path / "cache", 32)
    assert newer.directory != small.directory and not newer.contains(path)


def test_png_key_follows_path_size_and_mtime(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.write_png(tmp_path / "chest.png", (make.chest_phantom() // 16).astype(np.uint8))
    cache = ImageCache(tmp_path / "cache", 32)
    key = cache.key(path)
    assert key.startswith("file-")
    cache.get(path)
    make.write_png(path, np.zeros((64, 64), np.uint8))
    os.utime(path, ns=(1, 1))
    assert cache.key(path) != key
    assert cache.get(path).max() == 0.0  # the new content, not the stale entry


def test_damaged_entry_is_rebuilt(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.write_dicom(tmp_path / "chest.dcm", make.chest_phantom(), bits_stored=12)
    cache = ImageCache(tmp_path / "cache", 32)
    good = cache.get(path)
    entry = cache.entry_path(path)
    entry.write_bytes(entry.read_bytes()[:40])
    np.testing.assert_array_equal(cache.get(path), good)
    np.save(entry, np.zeros((8, 8), np.uint16))  # wrong shape
    np.testing.assert_array_equal(cache.get(path), good)


def test_unreadable_file_raises_and_stores_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    cache = ImageCache(tmp_path / "cache", 32)
    with pytest.raises(UnreadableImage):
        cache.get(tmp_path / "notes.txt")
    assert _entries(tmp_path / "cache") == []


def _get_all(arguments: tuple[str, list[str]]) -> list[float]:
    directory, paths = arguments
    cache = ImageCache(Path(directory), 32)
    return [float(cache.get(path).sum()) for path in paths]


def test_parallel_processes_share_one_cache_safely(tmp_path: Path, make: SimpleNamespace) -> None:
    paths = [
        str(make.write_dicom(tmp_path / f"c{i}.dcm", make.chest_phantom() + i, bits_stored=12))
        for i in range(6)
    ]
    jobs = [(str(tmp_path / "cache"), paths), (str(tmp_path / "cache"), paths[::-1])]
    with ProcessPoolExecutor(max_workers=2) as pool:
        forward, backward = pool.map(_get_all, jobs)
    assert forward == backward[::-1]
    assert len(_entries(tmp_path / "cache")) == 6
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_cli_cache_fills_and_lists_bad_files(
    tmp_path: Path, make: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "dicom"
    for i in range(3):
        make.write_dicom(folder / f"c{i}.dcm", make.chest_phantom() + i, bits_stored=12)
    (folder / "notes.txt").write_text("not an image")
    arguments = ["cache", str(folder), "--cache-dir", str(tmp_path / "cache"), "--image-size", "32"]
    assert main([*arguments, "--workers", "1", "--progress", "false"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {folder / 'notes.txt'}: not DICOM" in printed
    assert "3 images cached" in printed
    assert len(_entries(tmp_path / "cache")) == 3
    assert main([*arguments, "--workers", "2", "--progress", "false"]) == 0  # all hits now
    assert len(_entries(tmp_path / "cache")) == 3


def test_cli_cache_of_a_missing_folder_exits_2(tmp_path: Path) -> None:
    assert main(["cache", str(tmp_path / "nowhere"), "--cache-dir", str(tmp_path / "c")]) == 2
