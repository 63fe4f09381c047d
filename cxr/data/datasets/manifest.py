"""Studies from a manifest: the `cxr index` JSONL output, or a table a user writes.

A user table is a CSV (plain or .gz) or JSON-lines file with one row per study or one row per
image, with these columns (only `study_id` is required; unknown columns are ignored):

- ``study_id``; ``patient_id`` (without it each study is its own patient);
- ``study_datetime`` (ISO 8601 or YYYYMMDD[HHMMSS]) or ``sequence`` (an integer order of a
  patient's studies, e.g. a follow-up number): the prior is the patient's latest earlier study;
  ``prior_study_id`` names the prior explicitly instead;
- images: ``frontal``, ``lateral`` (and ``prior_frontal``) paths, or ``image`` (+ ``view``: PA,
  AP, LL, LATERAL, ...; without a view the image counts as frontal), one row per image;
  relative paths are taken from the table's folder (or `image_root`); files not on disk leave
  their slot empty;
- report: ``report`` (free text, split into sections) or ``indication``, ``technique``,
  ``comparison``, ``findings``, ``impression``;
- labels: the RANZCR CLiP columns of `cxr.types.TUBE_LINE_LABELS` (0/1, empty = unknown),
  ``<finding>_progression`` (improving/stable/worsening) for `cxr.types.CHANGE_FINDINGS`, and
  the 14 CheXpert `cxr.types.OBSERVATIONS` under their CheXpert names (1 present, 0 absent;
  -1 uncertain and empty are unknown).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cxr.data.datasets.mimic_cxr import view_role
from cxr.data.datasets.records import (
    check_observation_labels,
    read_labels,
    read_reports,
    studies_from_index,
)
from cxr.data.datasets.sections import split_sections
from cxr.data.datasets.tables import existing
from cxr.errors import InputError
from cxr.io import IndexedImage, IndexedStudy, read_study_index
from cxr.io.studies import link_priors, pick_frontal, pick_lateral
from cxr.jsonl import jsonl_records, read_jsonl
from cxr.types import ImageRole, Study

log = logging.getLogger(__name__)

SECTION_COLUMNS = ("indication", "technique", "comparison", "findings", "impression")


def is_study_index(path: Path) -> bool:
    """True for a `cxr index` output: JSON lines whose records carry `images` and `flags`."""
    if path.suffix.lower() not in (".jsonl", ".json"):
        return False
    try:
        _, record = next(jsonl_records(path), (0, {}))
    except InputError:
        return False
    return {"images", "flags"} <= record.keys()


def read_user_table(path: Path) -> pd.DataFrame:
    """A user manifest (CSV, CSV.GZ or JSON lines) as text columns, empty where unknown.

    Raises:
        InputError: unreadable, or without a study_id column.
    """
    if path.suffix.lower() in (".jsonl", ".json"):
        table = pd.DataFrame(read_jsonl(path))
        table = table.astype(object).where(table.notna(), "").astype(str)
    else:
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as error:
            raise InputError(path, f"cannot read manifest: {error}") from error
    if "study_id" not in table.columns:
        raise InputError(path, f"manifest has no study_id column; found {list(table.columns)}")
    return table


def parse_datetime(text: str) -> datetime | None:
    """ISO 8601, YYYYMMDD or YYYYMMDDHHMMSS; None when empty.

    Raises:
        ValueError: a text that is none of these.
    """
    text = text.strip()
    if not text:
        return None
    if text.isdigit() and len(text) in (8, 14):
        return datetime.strptime(text, "%Y%m%d%H%M%S" if len(text) == 14 else "%Y%m%d")
    return datetime.fromisoformat(text)


def manifest_role(view: str) -> ImageRole:
    """A view column value as a role; an empty view means a frontal image."""
    return view_role(view)[0] if view.strip() else ImageRole.FRONTAL


class ManifestDataset:
    """Studies listed in a `cxr index` JSONL output or in a user-written CSV/JSONL table.

    Args:
        root: The studies JSONL written by `cxr index`, or a user table (see the module doc).
        reports: Optional JSONL of reports (study_id, indication, comparison, findings, impression).
        labels: Optional CSV of labels (study_id, tube/line, *_progression and observation
            columns).
        prior_reports: Put the prior study's report into the prompt when there is a prior.
        image_root: Folder that relative image paths of a user table start from; default the
            table's folder.
        check_images: Leave a user table's image slot empty when its file is not on disk; off
            keeps the paths as written (cache keys, files on a mount not reachable yet).
    """

    name = "manifest"

    def __init__(
        self,
        root: Path,
        reports: Path | None = None,
        labels: Path | None = None,
        prior_reports: bool = True,
        image_root: Path | None = None,
        check_images: bool = True,
    ) -> None:
        self.root = Path(root)
        self.reports = reports
        self.labels = labels
        self.prior_reports = prior_reports
        self.image_root = Path(image_root) if image_root else self.root.parent
        self.check_images = check_images

    def studies(self) -> Iterator[Study]:
        if not self.root.is_file():
            raise InputError(self.root, "manifest not found")
        reports = read_reports(self.reports) if self.reports else {}
        labels = read_labels(self.labels) if self.labels else {}
        if is_study_index(self.root):
            yield from studies_from_index(
                read_study_index(self.root),
                reports,
                labels,
                source=self.name,
                prior_reports=self.prior_reports,
            )
        else:
            yield from self._table_studies(read_user_table(self.root), reports, labels)

    def _path(self, text: str) -> str | None:
        if not text.strip():
            return None
        path = os.path.join(self.image_root, text.strip())
        return existing(path) if self.check_images else path

    def _table_studies(
        self,
        table: pd.DataFrame,
        reports: Mapping[str, Mapping[str, Any]],
        labels: Mapping[str, Mapping[str, Any]],
    ) -> Iterator[Study]:
        rows_by_study: dict[str, list[dict[str, str]]] = {}
        for row in table.to_dict(orient="records"):
            rows_by_study.setdefault(str(row["study_id"]), []).append(
                {str(k): str(v) for k, v in row.items()}
            )
        indexed = [self._indexed(study_id, rows) for study_id, rows in rows_by_study.items()]
        self._link_priors(indexed, rows_by_study, table.columns)
        table_reports = {study_id: _report_row(rows[0]) for study_id, rows in rows_by_study.items()}
        table_labels = {study_id: rows[0] for study_id, rows in rows_by_study.items()}
        check_observation_labels(table_labels, self.root)
        for study in studies_from_index(
            indexed,
            {**table_reports, **reports},
            {**table_labels, **labels},
            source=self.name,
            prior_reports=self.prior_reports,
        ):
            prior_frontal = rows_by_study[study.study_id][0].get("prior_frontal", "")
            if prior_frontal:
                study.images.prior_frontal = self._path(prior_frontal)
            yield study

    def _indexed(self, study_id: str, rows: list[dict[str, str]]) -> IndexedStudy:
        first = rows[0]
        try:
            moment = parse_datetime(first.get("study_datetime", ""))
        except ValueError as error:
            raise InputError(self.root, f"study {study_id}: study_datetime {error}") from error
        study = IndexedStudy(study_id, first.get("patient_id") or None, moment)
        if "image" in first:
            for row in rows:
                path = self._path(row["image"])
                if path:
                    view = row.get("view", "").strip().upper()
                    study.images.append(
                        IndexedImage(path, None, manifest_role(view), f"view={view}", view or None)
                    )
            frontal, lateral = pick_frontal(study.images), pick_lateral(study.images)
            study.frontal = frontal.path if frontal else None
            study.lateral = lateral.path if lateral else None
        else:
            study.frontal = self._path(first.get("frontal", ""))
            study.lateral = self._path(first.get("lateral", ""))
        return study

    def _link_priors(
        self,
        indexed: list[IndexedStudy],
        rows: Mapping[str, list[dict[str, str]]],
        columns: pd.Index,
    ) -> None:
        if "prior_study_id" in columns:
            for study in indexed:
                study.prior_study_id = rows[study.study_id][0]["prior_study_id"] or None
        elif "study_datetime" in columns:
            link_priors(indexed, lambda study: study.study_datetime)
        elif "sequence" in columns:
            sequences = {
                study_id: _sequence(entries[0].get("sequence", ""), self.root, study_id)
                for study_id, entries in rows.items()
            }
            link_priors(indexed, lambda study: sequences[study.study_id])


def _sequence(text: str, path: Path, study_id: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(float(text))
    except ValueError as error:
        raise InputError(path, f"study {study_id}: sequence {text!r} is not a number") from error


def _report_row(row: Mapping[str, str]) -> dict[str, str]:
    """Report sections from a table row: its `report` text, overridden by section columns."""
    sections = split_sections(row["report"]).as_row() if row.get("report", "").strip() else {}
    sections.update(
        {column: row[column] for column in SECTION_COLUMNS if row.get(column, "").strip()}
    )
    return sections
