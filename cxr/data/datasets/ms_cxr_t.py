"""MS-CXR-T temporal image classification: prior -> current MIMIC-CXR image pairs with the
progression (improving / stable / worsening) of five findings.

`root` is the MIMIC-CXR-JPG (or MIMIC-CXR) folder holding ``files/``; the table is
``MS_CXR_T_temporal_image_classification_v1.0.0.csv`` (columns dicom_id, previous_dicom_id,
study_id, previous_study_id, subject_id and ``<finding>_progression``), in `root` unless given.
Its dicom ids may be bare (``<hash>``) or carry the study folder (``p10/p10000032/s5.../<hash>``).
With MIMIC-CXR reports present (`reports_dir`), the current study's report is the target too.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cxr.data.datasets.mimic_cxr import SPLIT_TABLE, mimic_study_folder, read_official_splits
from cxr.data.datasets.records import report_text
from cxr.data.datasets.sections import split_sections
from cxr.data.datasets.tables import existing, find_table, read_table
from cxr.data.splits import Split
from cxr.errors import InputError
from cxr.types import (
    CHANGE_FINDINGS,
    CHANGE_UNKNOWN,
    Change,
    Prompt,
    Study,
    StudyImages,
    Targets,
    change_column,
)

log = logging.getLogger(__name__)

LABELS_FILE = "MS_CXR_T_temporal_image_classification_v1.0.0.csv"
KEY_COLUMNS = ("dicom_id", "previous_dicom_id", "study_id", "previous_study_id", "subject_id")


def change_labels(row: Mapping[Any, Any], path: Path) -> list[int]:
    """The five findings' progression as `Change` values, -1 where the table leaves it empty."""
    labels = []
    for finding in CHANGE_FINDINGS:
        text = str(row.get(change_column(finding)) or "").strip()
        try:
            labels.append(Change.parse(text).code if text else CHANGE_UNKNOWN)
        except ValueError as error:
            raise InputError(
                path, f"{change_column(finding)}={text!r} is not improving/stable/worsening"
            ) from error
    return labels


class MsCxrTDataset:
    """MS-CXR-T pairs as studies: the current image, its prior image and five change labels.

    Args:
        root: The MIMIC-CXR-JPG (or MIMIC-CXR) folder holding ``files/``.
        labels: The MS-CXR-T temporal image classification CSV; default
            `root`/MS_CXR_T_temporal_image_classification_v1.0.0.csv.
        image_suffix: Suffix of the image files: .jpg (MIMIC-CXR-JPG) or .dcm (MIMIC-CXR).
        reports_dir: Folder holding MIMIC-CXR ``files/pXX/pNNN/sNNN.txt`` reports; none leaves
            the reports unknown.
        metadata_dir: Folder of mimic-cxr-2.0.0-split.csv(.gz), for the official MIMIC split;
            default `root`.
        official_split: Put each subject in the official MIMIC-CXR split when the table is there.
    """

    name = "ms_cxr_t"

    def __init__(
        self,
        root: Path,
        labels: Path | None = None,
        image_suffix: str = ".jpg",
        reports_dir: Path | None = None,
        metadata_dir: Path | None = None,
        official_split: bool = True,
    ) -> None:
        self.root = Path(root)
        self.labels = Path(labels) if labels else self.root / LABELS_FILE
        self.image_suffix = image_suffix
        self.reports_dir = Path(reports_dir) if reports_dir else None
        self.metadata_dir = Path(metadata_dir) if metadata_dir else self.root
        self.official_split = official_split

    def patient_splits(self) -> dict[str, Split]:
        """subject_id -> official MIMIC-CXR split; empty when off or the split table is absent."""
        path = find_table(self.metadata_dir, SPLIT_TABLE)
        return read_official_splits(path) if self.official_split and path else {}

    def _image(self, subject: str, study: str, dicom_id: str) -> str | None:
        folder, _, bare = dicom_id.strip().rpartition("/")
        relative = os.path.join("files", folder) if folder else mimic_study_folder(subject, study)
        return existing(os.path.join(self.root, relative, bare + self.image_suffix))

    def _report(self, subject: str, study: str) -> dict[str, str]:
        if self.reports_dir is None:
            return {}
        path = self.reports_dir / f"{mimic_study_folder(subject, study)}.txt"
        if not path.is_file():
            return {}
        return split_sections(path.read_text(encoding="utf-8", errors="replace")).as_row()

    def studies(self) -> Iterator[Study]:
        table = read_table(self.labels, KEY_COLUMNS, "MS-CXR-T table")
        rows = table.to_dict(orient="records")
        repeats = Counter(row["study_id"] for row in rows)
        log.info("ms_cxr_t: %d pairs over %d current studies", len(rows), len(repeats))
        for row in rows:
            subject, study, prior = row["subject_id"], row["study_id"], row["previous_study_id"]
            report, prior_report = self._report(subject, study), self._report(subject, prior)
            targets = Targets(
                findings=report.get("findings") or None, impression=report.get("impression") or None
            )
            targets.change[:] = change_labels(row, self.labels)
            # A current study paired with several priors gives one study per pair.
            bare_id = row["dicom_id"].rpartition("/")[2]
            yield Study(
                study_id=study if repeats[study] == 1 else f"{study}_{bare_id}",
                patient_id=subject,
                images=StudyImages(
                    frontal=self._image(subject, study, row["dicom_id"]),
                    prior_frontal=self._image(subject, prior, row["previous_dicom_id"]),
                ),
                prompt=Prompt(
                    indication=report.get("indication", ""),
                    technique=report.get("technique", ""),
                    comparison=report.get("comparison", ""),
                    prior_report=report_text(prior_report),
                ),
                targets=targets,
                prior_study_id=prior or None,
                source=self.name,
            )
