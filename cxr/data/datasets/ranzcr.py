"""RANZCR CLiP (Kaggle competition): tube and line placement labels, no reports.

Layout under `root`: ``train.csv`` (StudyInstanceUID, the 11 label columns of
`cxr.types.TUBE_LINE_LABELS`, PatientID) and ``train/<StudyInstanceUID>.jpg`` (or DICOM/PNG
files of the same names in the folder given as `images`). Every image is a frontal chest
radiograph; the table has no dates, so there are no priors. ``train_annotations.csv`` (line
positions) is not needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cxr.data.datasets.tables import index_images, read_table
from cxr.errors import InputError
from cxr.types import TUBE_LINE_LABELS, Study, StudyImages, Targets

log = logging.getLogger(__name__)

LABELS_FILE = "train.csv"


class RanzcrDataset:
    """RANZCR CLiP studies: one frontal image each, with the 11 tube/line labels.

    Args:
        root: The folder the competition data was extracted into.
        labels: The labels table; default `root`/train.csv.
        images: Folder of the images named <StudyInstanceUID>.jpg/.dcm/.png; default `root`/train.
    """

    name = "ranzcr"

    def __init__(self, root: Path, labels: Path | None = None, images: Path | None = None) -> None:
        self.root = Path(root)
        self.labels = Path(labels) if labels else self.root / LABELS_FILE
        self.images = Path(images) if images else self.root / "train"

    def studies(self) -> Iterator[Study]:
        table = read_table(
            self.labels, ("StudyInstanceUID", "PatientID", *TUBE_LINE_LABELS), "RANZCR CLiP labels"
        )
        try:
            labels = table[list(TUBE_LINE_LABELS)].replace("", "nan").astype(np.float32).to_numpy()
        except ValueError as error:
            raise InputError(
                self.labels, f"a label column holds a value that is not 0/1: {error}"
            ) from error
        on_disk = index_images(self.images)
        log.info(
            "ranzcr: %d studies, %d images on disk under %s", len(table), len(on_disk), self.images
        )
        for row, (uid, patient) in enumerate(
            zip(table["StudyInstanceUID"], table["PatientID"], strict=True)
        ):
            yield Study(
                study_id=uid,
                patient_id=patient or f"unknown-patient:{uid}",
                images=StudyImages(frontal=on_disk.get(uid)),
                targets=Targets(tube_line=labels[row].copy()),
                source=self.name,
            )
