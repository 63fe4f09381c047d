"""MIMIC-CXR (DICOM) and MIMIC-CXR-JPG, as downloaded from PhysioNet.

Layout under `root`: ``files/p10/p10000032/s50414267/<dicom_id>.dcm`` (or ``.jpg``) and the
report ``files/p10/p10000032/s50414267.txt``; the tables ``mimic-cxr-2.0.0-metadata.csv.gz``
(dicom_id, subject_id, study_id, ViewPosition, StudyDate, StudyTime) and
``mimic-cxr-2.0.0-split.csv.gz`` (dicom_id, study_id, subject_id, split), both shipped with
MIMIC-CXR-JPG. The view comes from ViewPosition, the prior from StudyDate/StudyTime, the
sections from the free-text report, the split from the official split file (by subject).

Observation labels come from one of the label tables MIMIC-CXR-JPG ships,
``mimic-cxr-2.0.0-chexpert.csv.gz`` or ``mimic-cxr-2.0.0-negbio.csv.gz`` (subject_id, study_id
and the 14 CheXpert observations: 1.0 positive, 0.0 negative, -1.0 uncertain, blank not
mentioned), both made by a labeler from the report. They become targets by a `LabelPolicy`:
by default uncertain is unknown ("ignore": the model is not taught a guess either way) and not
mentioned is absent ("negative": the table lists studies with a report, and what a report
does not mention its reader did not see; CheXpert trained its U-Ignore/U-Ones/U-Zeros
variants with blank as negative). A study the table does not list keeps them unknown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.data.datasets.records import studies_from_index
from cxr.data.datasets.sections import split_sections
from cxr.data.datasets.tables import existing, find_table, parse_split, read_table
from cxr.data.observations import LabelPolicy, NotMentioned, parse_choice
from cxr.data.splits import Split
from cxr.errors import InputError
from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.io import IndexedImage, IndexedStudy
from cxr.io.studies import FRONTAL_VIEWS, LATERAL_VIEWS, link_priors, pick_frontal, pick_lateral
from cxr.types import OBSERVATIONS, ImageRole, Study

log = logging.getLogger(__name__)

METADATA_TABLE = "mimic-cxr-2.0.0-metadata"
SPLIT_TABLE = "mimic-cxr-2.0.0-split"
METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime")
# MIMIC spellings of a lateral beyond the DICOM ones cxr.io knows.
EXTRA_LATERAL_VIEWS = frozenset({"XTABLE LATERAL"})

LABEL_TABLE_KEYS = ("subject_id", "study_id")


class LabelTable(str, Enum):
    """Which MIMIC-CXR-JPG label table gives the observation labels."""

    CHEXPERT = "chexpert"  # mimic-cxr-2.0.0-chexpert.csv(.gz): the CheXpert labeler
    NEGBIO = "negbio"  # mimic-cxr-2.0.0-negbio.csv(.gz): NegBio
    NONE = "none"  # observations stay unknown

    @property
    def file_name(self) -> str:
        """The table's name without .csv(.gz)."""
        return f"mimic-cxr-2.0.0-{self.value}"


def mimic_study_folder(subject_id: str, study_id: str) -> str:
    """``files/p10/p10000032/s50414267``: where MIMIC keeps a study's images."""
    return os.path.join("files", f"p{subject_id[:2]}", f"p{subject_id}", f"s{study_id}")


def mimic_datetime(study_date: str, study_time: str) -> datetime | None:
    """StudyDate (YYYYMMDD) and StudyTime (HHMMSS.fff, leading zeros often dropped) as a datetime."""
    date = study_date.strip().split(".")[0]
    if len(date) != 8 or not date.isdigit():
        return None
    whole, _, fraction = study_time.strip().partition(".")
    whole = whole.zfill(6) if whole.isdigit() else "000000"
    micro = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    try:
        return datetime.strptime(date + whole[:6], "%Y%m%d%H%M%S").replace(microsecond=micro)
    except ValueError:
        return None


def view_role(view_position: str) -> tuple[ImageRole, str]:
    """A MIMIC ViewPosition as an image role, with the reason."""
    view = view_position.strip().upper()
    reason = f"ViewPosition={view}" if view else "no ViewPosition"
    if view in FRONTAL_VIEWS:
        return ImageRole.FRONTAL, reason
    if view in LATERAL_VIEWS or view in EXTRA_LATERAL_VIEWS:
        return ImageRole.LATERAL, reason
    return ImageRole.OTHER, reason


def read_official_splits(table_path: Path) -> dict[str, Split]:
    """subject_id -> split from mimic-cxr-2.0.0-split.csv(.gz) (its split is by subject)."""
    table = read_table(table_path, ("subject_id", "split"), "MIMIC-CXR split table")
    splits: dict[str, Split] = {}
    for subject, name in zip(table["subject_id"], table["split"], strict=True):
        split = parse_split(name)
        if split is not None:
            splits.setdefault(subject, split)
    return splits


def read_observation_labels(table_path: Path, policy: LabelPolicy) -> dict[str, np.ndarray]:
    """study_id -> observation targets (float32 [14]) from a CheXpert or NegBio label table.

    Raises:
        InputError: unreadable, a column missing, or a cell that is no label (names the study).
    """
    table = read_table(table_path, (*LABEL_TABLE_KEYS, *OBSERVATIONS), "MIMIC-CXR label table")
    labels: dict[str, np.ndarray] = {}
    for row in table.to_dict(orient="records"):
        try:
            labels[str(row["study_id"])] = policy.targets(row)
        except ValueError as error:
            raise InputError(table_path, f"study {row['study_id']}: {error}") from error
    return labels


class MimicCxrDataset:
    """MIMIC-CXR studies from the DICOM tree, with reports, views, priors and the official split.

    Args:
        root: The folder holding ``files/`` (the MIMIC-CXR download).
        metadata_dir: Folder of mimic-cxr-2.0.0-metadata/split.csv(.gz); default `root`.
        reports_dir: Folder holding ``files/pXX/pNNN/sNNN.txt`` (from mimic-cxr-reports.zip);
            default `root`.
        official_split: Put each subject in the official split instead of a hashed one.
        prior_reports: Put the prior study's report into the prompt when there is a prior.
        label_table: Observation labels from the MIMIC-CXR-JPG table in `metadata_dir`:
            chexpert | negbio | none. A table that is not there leaves them unknown.
        uncertain: What an uncertain (-1) label becomes: ignore (unknown, not trained on) |
            positive (U-Ones) | negative (U-Zeros).
        not_mentioned: What a blank (not mentioned) label becomes: negative (absent) | ignore
            (unknown).
    """

    name = "mimic_cxr"
    image_suffix = ".dcm"

    def __init__(
        self,
        root: Path,
        metadata_dir: Path | None = None,
        reports_dir: Path | None = None,
        official_split: bool = True,
        prior_reports: bool = True,
        label_table: str = LabelTable.CHEXPERT.value,
        uncertain: str = UncertainMapping.IGNORE.value,
        not_mentioned: str = NotMentioned.NEGATIVE.value,
    ) -> None:
        self.root = Path(root)
        self.metadata_dir = Path(metadata_dir) if metadata_dir else self.root
        self.reports_dir = Path(reports_dir) if reports_dir else self.root
        self.official_split = official_split
        self.prior_reports = prior_reports
        self.label_table = parse_choice(LabelTable, label_table, "label_table")
        self.label_policy = LabelPolicy(
            parse_choice(UncertainMapping, uncertain, "uncertain"),
            parse_choice(NotMentioned, not_mentioned, "not_mentioned"),
        )

    def _table(self, name: str) -> Path | None:
        return find_table(self.metadata_dir, name)

    def patient_splits(self) -> dict[str, Split]:
        """subject_id -> official split; empty when turned off or the split table is absent."""
        path = self._table(SPLIT_TABLE)
        if not self.official_split or path is None:
            return {}
        return read_official_splits(path)

    def indexed_studies(self) -> list[IndexedStudy]:
        """Studies from the metadata table: images by role, chosen views, priors by date/time."""
        path = self._table(METADATA_TABLE)
        if path is None:
            raise InputError(
                self.metadata_dir / f"{METADATA_TABLE}.csv.gz",
                "missing; it ships with MIMIC-CXR-JPG (give metadata_dir if it lies elsewhere)",
            )
        table = read_table(path, METADATA_COLUMNS, "MIMIC-CXR metadata table")
        studies = _group_studies(table, self.root, self.image_suffix)
        link_priors(studies)
        return studies

    def read_reports(self, studies: list[IndexedStudy]) -> dict[str, dict[str, str]]:
        """study_id -> report sections, for the studies whose report file exists."""
        reports: dict[str, dict[str, str]] = {}
        for study in studies:
            path = (
                self.reports_dir
                / f"{mimic_study_folder(study.patient_id or '', study.study_id)}.txt"
            )
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            except OSError as error:
                raise InputError(path, f"cannot read report: {error}") from error
            reports[study.study_id] = split_sections(text).as_row()
        return reports

    def observation_labels(self) -> dict[str, np.ndarray]:
        """study_id -> observation targets from the chosen label table; empty when none."""
        if self.label_table is LabelTable.NONE:
            return {}
        path = self._table(self.label_table.file_name)
        if path is None:
            log.warning(
                "%s: no %s.csv(.gz) in %s: observation labels stay unknown",
                self.name,
                self.label_table.file_name,
                self.metadata_dir,
            )
            return {}
        return read_observation_labels(path, self.label_policy)

    def studies(self) -> Iterator[Study]:
        indexed = self.indexed_studies()
        reports = self.read_reports(indexed)
        observations = self.observation_labels()
        log.info(
            "%s: %d studies, %d with a report, %d with observation labels",
            self.name,
            len(indexed),
            len(reports),
            sum(study.study_id in observations for study in indexed),
        )
        for study in studies_from_index(
            indexed, reports, {}, source=self.name, prior_reports=self.prior_reports
        ):
            if study.study_id in observations:
                study.targets.observations = observations[study.study_id].copy()
            yield study


class MimicCxrJpgDataset(MimicCxrDataset):
    """MIMIC-CXR-JPG: the same tree with JPG images (reports from MIMIC-CXR via `reports_dir`).

    Args:
        root: The folder holding ``files/`` and the mimic-cxr-2.0.0-*.csv.gz tables.
        metadata_dir: Folder of mimic-cxr-2.0.0-metadata/split.csv(.gz); default `root`.
        reports_dir: Folder holding ``files/pXX/pNNN/sNNN.txt`` (from MIMIC-CXR's
            mimic-cxr-reports.zip); default `root`.
        official_split: Put each subject in the official split instead of a hashed one.
        prior_reports: Put the prior study's report into the prompt when there is a prior.
        label_table: Observation labels from the table in `metadata_dir`: chexpert | negbio |
            none. A table that is not there leaves them unknown.
        uncertain: What an uncertain (-1) label becomes: ignore (unknown, not trained on) |
            positive (U-Ones) | negative (U-Zeros).
        not_mentioned: What a blank (not mentioned) label becomes: negative (absent) | ignore
            (unknown).
    """

    name = "mimic_cxr_jpg"
    image_suffix = ".jpg"


def _group_studies(table: pd.DataFrame, root: Path, suffix: str) -> list[IndexedStudy]:
    studies: dict[str, IndexedStudy] = {}
    columns = (table[c] for c in METADATA_COLUMNS)
    for dicom_id, subject, study_id, view, date, time in zip(*columns, strict=True):
        study = studies.get(study_id)
        if study is None:
            study = studies[study_id] = IndexedStudy(study_id, subject, mimic_datetime(date, time))
        role, reason = view_role(view)
        path = os.path.join(root, mimic_study_folder(subject, study_id), dicom_id + suffix)
        study.images.append(
            IndexedImage(path, dicom_id, role, reason, view.strip().upper() or None)
        )
    missing = 0
    for study in studies.values():
        study.frontal, study.lateral = (
            _on_disk(study.images, pick_frontal),
            _on_disk(study.images, pick_lateral),
        )
        missing += study.frontal is None and any(
            image.role is ImageRole.FRONTAL for image in study.images
        )
    if missing:
        log.warning(
            "%d MIMIC-CXR studies have no frontal image on disk under %s; their slot stays empty",
            missing,
            root,
        )
    return list(studies.values())


def _on_disk(
    images: list[IndexedImage], pick: Callable[[list[IndexedImage]], IndexedImage | None]
) -> str | None:
    """The path `pick` chooses, among the images on disk when its first choice is missing."""
    chosen = pick(images)
    if chosen is None or existing(chosen.path):
        return chosen.path if chosen else None
    fallback = pick([image for image in images if existing(image.path)])
    return fallback.path if fallback else None
