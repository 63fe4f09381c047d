"""Reading predictions and references into one table per file, keyed by `study_id`, and
reading one cell of such a table.

Accepted files:
- JSONL (`.jsonl`, read by `cxr.jsonl.read_jsonl`): one object per line. Flat columns are the contract; one level of nesting
  is flattened too (`{"tube_line": {"ETT - Normal": 0.9}}` gives the column "ETT - Normal",
  `{"change": {"edema": "stable"}}` gives "edema_progression").
- CSV (`.csv`): one row per study.
- R2Gen-style annotation JSON (`.json`, {split: [{id, report, ...}]}): text only; `id` becomes
  `study_id`, `report` the report text. The test split may be keyed "test" or by whitespace
  (IU X-ray's annotation.json uses four spaces).
- ReXrank JSON (`.json`, {study_id: {image_path, section_findings, model_prediction, ...}}):
  read by `cxr.evaluation.rexrank`, as references (its sections) or as predictions (its
  `model_prediction`), whichever side the file is given for.

A `.json` file is told apart by its content; one that is neither is an InputError saying so.

A cell is missing as `cxr.types.is_missing` says (None, NaN / pd.NA, blank text);
`cell_text` and `cell_number` read a cell with that rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cxr.errors import InputError
from cxr.evaluation import rexrank
from cxr.jsonl import read_json, read_jsonl
from cxr.types import CHANGE_FINDINGS, change_column, is_missing

_ID_COLUMNS = {"study_id": str, "patient_id": str}


def cell_text(value: Any) -> str:
    """A cell as stripped text; "" when missing."""
    return "" if is_missing(value) else str(value).strip()


def cell_number(value: Any) -> float:
    """A cell as a float; NaN when missing."""
    return math.nan if is_missing(value) else float(value)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if not isinstance(value, dict):
            flat[key] = value
            continue
        for inner, inner_value in value.items():
            name = change_column(inner) if key == "change" and inner in CHANGE_FINDINGS else inner
            flat[name] = inner_value
    return flat


def _split_key(splits: dict[str, Any], split: str) -> str:
    if split in splits:
        return split
    if split == "test":
        blank = [k for k in splits if not k.strip()]
        if blank:
            return blank[0]
    raise InputError("annotation", f"no {split!r} split (splits: {sorted(splits)!r})")


def _is_annotation(data: Any) -> bool:
    return isinstance(data, dict) and all(isinstance(v, list) for v in data.values())


def _read_json(path: Path, split: str, references: bool) -> pd.DataFrame:
    """An R2Gen-style annotation or a ReXrank file, told apart by content."""
    data = read_json(path)
    if _is_annotation(data):
        return _read_annotation(path, data, split)
    if rexrank.is_rexrank(data):
        return rexrank.read_table(path, data, references)
    raise InputError(
        path,
        "unknown JSON: expected an R2Gen-style annotation ({split: [{id, report}, ...]}) "
        f"or {rexrank.FORMAT_HINT}",
    )


def _read_annotation(path: Path, splits: dict[str, Any], split: str) -> pd.DataFrame:
    try:
        entries = splits[_split_key(splits, split)]
    except InputError as error:
        raise InputError(path, error.reason) from error
    return pd.DataFrame(
        [{"study_id": str(e["id"]), "report": e.get("report", "")} for e in entries]
    )


def read_table(path: str | Path, split: str = "test", references: bool = False) -> pd.DataFrame:
    """One file as a DataFrame with a string `study_id` column, ids unique.

    Args:
        path: a .jsonl, .csv, R2Gen-style annotation .json or ReXrank .json file.
        split: the split read from an annotation JSON ("test" also finds the blank key).
        references: read the file as references; this decides only which text of a ReXrank
            file is read (its sections, else its `model_prediction`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        table = pd.DataFrame([_flatten(row) for row in read_jsonl(path)])
    elif suffix == ".csv":
        table = pd.read_csv(path, dtype=_ID_COLUMNS, keep_default_na=True)
    elif suffix == ".json":
        table = _read_json(path, split, references)
    else:
        raise InputError(
            path, "unknown format: expected .jsonl, .csv, or an annotation or ReXrank .json"
        )
    if "study_id" not in table.columns:
        raise InputError(path, "no study_id column")
    table["study_id"] = table["study_id"].astype(str)
    if "patient_id" in table.columns:
        table["patient_id"] = table["patient_id"].map(lambda v: None if pd.isna(v) else str(v))
    duplicated = table["study_id"][table["study_id"].duplicated()].unique()
    if len(duplicated):
        raise InputError(path, f"{len(duplicated)} study ids appear twice, e.g. {duplicated[0]!r}")
    return table


def split_paths(paths: str | Sequence[str]) -> list[str]:
    """A path list from a comma-separated string or a list of (comma-separated) strings."""
    items = [paths] if isinstance(paths, str) else list(paths)
    return [p.strip() for item in items for p in item.split(",") if p.strip()]


def read_joined(paths: Sequence[str | Path], split: str = "test") -> pd.DataFrame:
    """Several files joined on study_id (e.g. reports.jsonl and labels.csv of `cxr synth`).

    A study may appear in only some files; where two files give the same column for a study,
    the earlier file's non-missing value is kept.
    """
    if not paths:
        raise InputError("--references", "no file given")
    joined: pd.DataFrame | None = None
    for path in paths:
        table = read_table(path, split, references=True).set_index("study_id")
        joined = table if joined is None else joined.combine_first(table)
    assert joined is not None
    return joined.reset_index()
