"""JSON Lines: the one reader of every .jsonl file cxr reads (reports, study indexes,
manifests, predictions). A line that is not a JSON object is an `InputError` naming the file
and the line; blank lines are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cxr.errors import InputError


def jsonl_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON Lines file."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from error
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(path, f"line {number} is not JSON: {error}") from error
            if not isinstance(record, dict):
                raise InputError(path, f"line {number} is not a JSON object")
            yield number, record


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every object of a JSON Lines file, in file order."""
    return [record for _, record in jsonl_records(path)]
