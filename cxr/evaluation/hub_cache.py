"""Scorer weights from a local Hugging Face hub cache, never from the network.

A scorer's weights folder is a hub cache: the layout `hf download REPO [FILE...] --cache-dir
DIR` writes (`models--ORG--NAME/snapshots/COMMIT/FILE`, with `refs/main`). The scorer packages
load their models by hub id (`from_pretrained("bert-base-uncased")`, `hf_hub_download(...)`);
inside `hub_cache(DIR)` those calls resolve in DIR only, offline, so the loading code that runs
is the package's own. `missing_files` lists what a folder lacks, and `require` turns that into
an error that says which files to put where and the command that fetches them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cxr.errors import InputError


@dataclass(frozen=True)
class HubFile:
    """A file of a hub repository that a scorer loads (repo_id as the package names it)."""

    repo_id: str
    filename: str


def download_commands(needs: Sequence[HubFile], folder: Path | str) -> list[str]:
    """The commands that put `needs` into `folder` (run where the hub is reachable), one per
    repository."""
    repos = dict.fromkeys(need.repo_id for need in needs)
    return [
        f"hf download {repo} "
        + " ".join(need.filename for need in needs if need.repo_id == repo)
        + f" --cache-dir {folder}"
        for repo in repos
    ]


def missing_files(folder: Path, needs: Sequence[HubFile]) -> list[HubFile]:
    """The files of `needs` that the hub cache `folder` does not hold."""
    from huggingface_hub import try_to_load_from_cache

    missing = []
    for need in needs:
        found = try_to_load_from_cache(need.repo_id, need.filename, cache_dir=str(folder))
        if not isinstance(found, str) or not Path(found).is_file():
            missing.append(need)
    return missing


def require(scorer: str, folder: Path, needs: Sequence[HubFile]) -> None:
    """Raises InputError naming every missing file and how to fetch it."""
    if not folder.is_dir():
        raise InputError(folder, f"weights folder of scorer {scorer!r} is not a directory")
    missing = missing_files(folder, needs)
    if missing:
        lines = "\n".join(f"  {command}" for command in download_commands(missing, folder))
        raise InputError(
            folder,
            f"the hub cache of scorer {scorer!r} lacks {len(missing)} of its "
            f"{len(needs)} files; fetch them where the hub is reachable with\n{lines}",
        )


@contextmanager
def hub_cache(folder: Path) -> Iterator[None]:
    """Hub downloads and `from_pretrained` by hub id resolve in `folder`, offline."""
    from huggingface_hub import constants

    saved = (constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
    constants.HF_HUB_CACHE = str(folder)
    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE, offline = saved
        if offline is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = offline
