"""JSON Lines and JSON files: the one reader of every .jsonl file cxr reads (reports, study
indexes, manifests, predictions), where a line that is not a JSON object is an `InputError`
naming the file and the line (blank lines are skipped), and of every .json file it reads
(`read_json`), where a missing, unreadable or malformed file is an `InputError` naming it."""

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


def read_json(path: str | Path) -> Any:
    """A JSON file parsed (a bare NaN, as Python's json writes it, is a number)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(path, "file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise InputError(path, f"not JSON: {error}") from error
