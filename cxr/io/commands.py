"""`cxr index` and `cxr cache`: the ingest layer on the command line."""

from __future__ import annotations

import functools
import logging
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from cxr.errors import InputError, UnreadableImage
from cxr.io.cache import ImageCache
from cxr.io.studies import SkippedFile, index_folder

log = logging.getLogger(__name__)

_MOST_COMMON_REASONS = 5


def index(
    dicom_dir: Path, output: Path = Path("studies.jsonl"), workers: int = 2, progress: bool = True
) -> int:
    """Scan a DICOM folder into a study index (one JSON line per study) and skipped.jsonl.

    Args:
        dicom_dir: Folder to scan recursively; only headers are read.
        output: The studies JSONL file to write; skipped.jsonl is written beside it.
        workers: Processes reading headers in parallel (1 reads in this process).
        progress: Show a progress bar.
    """
    study_index = index_folder(dicom_dir, workers=workers, progress=progress)
    try:
        skipped_path = study_index.write_jsonl(output)
    except OSError as error:
        raise InputError(output, f"cannot write the study index: {error}") from error
    with_prior = sum(study.prior_study_id is not None for study in study_index.studies)
    print(
        f"{len(study_index.studies)} studies ({with_prior} with a prior), "
        f"{study_index.image_count} images, {len(study_index.skipped)} skipped files"
    )
    print(f"studies: {output}")
    print(f"skipped: {skipped_path}")
    _print_reasons(study_index.skipped)
    return 0


def cache(
    dicom_dir: Path,
    cache_dir: Path = Path("cxr-cache"),
    image_size: int = 512,
    workers: int = 2,
    progress: bool = True,
) -> int:
    """Fill the preprocessed-image cache for every DICOM/PNG/JPEG file in a folder.

    Args:
        dicom_dir: Folder to scan recursively.
        cache_dir: Cache folder; entries go into a subfolder named by the preprocessing parameters.
        image_size: Side of the square images stored (longer side resized, then padded).
        workers: Processes decoding in parallel (1 decodes in this process).
        progress: Show a progress bar.
    """
    if not Path(dicom_dir).is_dir():
        raise InputError(dicom_dir, "not a folder")
    paths = sorted(str(path) for path in Path(dicom_dir).rglob("*") if path.is_file())
    try:
        ImageCache(cache_dir, image_size)  # creates the folder once, before the workers race
    except OSError as error:
        raise InputError(cache_dir, f"cannot create the cache folder: {error}") from error
    reasons = _fill(paths, cache_dir, image_size, workers, progress)
    skipped = [
        SkippedFile(path, reason)
        for path, reason in zip(paths, reasons, strict=True)
        if reason is not None
    ]
    for entry in skipped:
        print(f"skipped {entry.path}: {entry.reason}")
    print(f"{len(paths) - len(skipped)} images cached in {cache_dir}, {len(skipped)} files skipped")
    return 0


def _fill(
    paths: list[str], cache_dir: Path, image_size: int, workers: int, progress: bool
) -> list[str | None]:
    jobs = [(path, str(cache_dir), image_size) for path in paths]
    bar = {"total": len(jobs), "desc": "cache", "unit": "file", "disable": not progress}
    if workers <= 1 or len(paths) < 2:
        return [_cache_one(job) for job in tqdm(jobs, **bar)]
    workers = min(workers, os.cpu_count() or 1)
    chunk_size = max(1, min(32, len(paths) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(_cache_one, jobs, chunksize=chunk_size), **bar))


@functools.lru_cache(maxsize=4)
def _worker_cache(cache_dir: str, image_size: int) -> ImageCache:
    """One ImageCache per worker process, so its in-memory key memo is reused across files."""
    return ImageCache(Path(cache_dir), image_size)


def _cache_one(job: tuple[str, str, int]) -> str | None:
    """Runs in a worker: caches one file; returns None, or the reason it was skipped."""
    path, cache_dir, image_size = job
    try:
        _worker_cache(cache_dir, image_size).get(path)
    except UnreadableImage as error:
        return error.reason
    return None


def _print_reasons(skipped: list[SkippedFile]) -> None:
    counts = Counter(entry.reason.split(":")[0] for entry in skipped)
    for reason, count in counts.most_common(_MOST_COMMON_REASONS):
        print(f"  {count:6d} x {reason}")
