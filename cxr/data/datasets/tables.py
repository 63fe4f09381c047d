"""Reading the CSV tables datasets ship (plain or gzipped), and finding image files by name."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from cxr.data.splits import Split
from cxr.errors import InputError

IMAGE_SUFFIXES: tuple[str, ...] = (".dcm", ".jpg", ".jpeg", ".png")


def find_table(folder: Path, name: str) -> Path | None:
    """`folder/name.csv.gz` or `folder/name.csv`, whichever exists first; None if neither."""
    for candidate in (folder / f"{name}.csv.gz", folder / f"{name}.csv"):
        if candidate.is_file():
            return candidate
    return None


def read_table(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV (gzipped or not) read as text, checked for its `required` columns.

    Raises:
        InputError: the file is missing, unreadable or lacks a required column.
    """
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, ValueError, EOFError) as error:
        raise InputError(path, f"cannot read {what}: {error}") from error
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise InputError(path, f"{what} lacks column(s) {missing}; found {list(table.columns)}")
    return table


def index_images(folder: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> dict[str, str]:
    """File stem -> path of every image file under `folder` (recursively; the first path wins)."""
    wanted = tuple(suffix.lower() for suffix in suffixes)
    found: dict[str, str] = {}
    if not folder.is_dir():
        return found
    for directory, _, names in os.walk(folder):
        for name in sorted(names):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in wanted:
                found.setdefault(stem, os.path.join(directory, name))
    return found


def existing(path: str | None) -> str | None:
    """`path` when a file is there, else None (a dataset's images may not be downloaded)."""
    return path if path and os.path.isfile(path) else None


def parse_split(text: str) -> Split | None:
    """A dataset's split name as a `Split` (validate/valid/dev count as val); None if unknown."""
    name = text.strip().lower()
    aliases = {"validate": "val", "valid": "val", "validation": "val", "dev": "val"}
    name = aliases.get(name, name)
    return Split(name) if name in {s.value for s in Split} else None
