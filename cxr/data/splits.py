"""Patient-level splits: every study of a patient lands in the same split."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

import pandas as pd

from cxr.errors import InputError


class Split(str, Enum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


def hashed_split(patient_id: str, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """A split drawn from a hash of (seed, patient): stable when patients are added or removed."""
    digest = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < test_fraction:
        return Split.TEST
    if position < test_fraction + val_fraction:
        return Split.VAL
    return Split.TRAIN


def read_split_file(path: Path) -> dict[str, Split]:
    """patient_id -> split from a CSV with columns patient_id and split (train/val/test)."""
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, ValueError) as error:
        raise InputError(path, f"cannot read split file: {error}") from error
    missing = {"patient_id", "split"} - set(table.columns)
    if missing:
        raise InputError(path, f"split file lacks column(s) {sorted(missing)}")
    try:
        return {
            str(row.patient_id): Split(str(row.split).strip().lower()) for row in table.itertuples()
        }
    except ValueError as error:
        raise InputError(path, f"split must be train, val or test: {error}") from error


def assign_split(
    patient_id: str,
    split_file: Mapping[str, Split] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> Split:
    """The split file's entry for the patient when there is one, else the hashed split."""
    if split_file is not None and patient_id in split_file:
        return split_file[patient_id]
    return hashed_split(patient_id, val_fraction, test_fraction, seed)
