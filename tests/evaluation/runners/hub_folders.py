"""Tiny scorer weights written as a Hugging Face hub cache, the layout `hf download
--cache-dir` writes, so the scorer packages' own loading code finds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

COMMIT = "0" * 40


def snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of `repo_id` in `cache` (created, with refs/main)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    folder = repo / "snapshots" / COMMIT
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_to_hub_cache(cache: Path, repo_id: str, save: Callable[[Path], object]) -> Path:
    """Calls `save(folder)` (e.g. `model.save_pretrained`) into the snapshot of `repo_id`."""
    folder = snapshot(cache, repo_id)
    save(folder)
    return folder
