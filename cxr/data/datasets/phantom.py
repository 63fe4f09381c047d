"""Studies written by `cxr synth`: a DICOM tree with reports.jsonl and labels.csv at its root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cxr.data.datasets.records import read_labels, read_reports, studies_from_index
from cxr.errors import InputError
from cxr.io import index_folder
from cxr.types import Study


class PhantomDataset:
    """Phantom studies from a `cxr synth` output folder.

    Args:
        root: The folder `cxr synth` wrote.
        workers: Processes that read DICOM headers while indexing.
        prior_reports: Put the prior study's report into the prompt when there is a prior.
    """

    name = "phantom"

    def __init__(self, root: Path, workers: int = 2, prior_reports: bool = True) -> None:
        self.root = Path(root)
        self.workers = workers
        self.prior_reports = prior_reports

    def studies(self) -> Iterator[Study]:
        reports_path, labels_path = self.root / "reports.jsonl", self.root / "labels.csv"
        for required in (reports_path, labels_path):
            if not required.is_file():
                raise InputError(required, "missing; is this a folder written by `cxr synth`?")
        index = index_folder(self.root, workers=self.workers, progress=False)
        yield from studies_from_index(
            index.studies,
            read_reports(reports_path),
            read_labels(labels_path),
            source=self.name,
            prior_reports=self.prior_reports,
        )
