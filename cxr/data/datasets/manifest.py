"""Studies from a `cxr index` manifest, with optional reports and labels files keyed by study_id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cxr.data.datasets.records import read_labels, read_reports, studies_from_index
from cxr.io import read_study_index
from cxr.types import Study


class ManifestDataset:
    """Studies listed in a `cxr index` JSONL output.

    Args:
        root: The studies JSONL written by `cxr index`.
        reports: Optional JSONL of reports (study_id, indication, comparison, findings, impression).
        labels: Optional CSV of labels (study_id, tube/line columns, *_progression columns).
        prior_reports: Put the prior study's report into the prompt when there is a prior.
    """

    name = "manifest"

    def __init__(
        self,
        root: Path,
        reports: Path | None = None,
        labels: Path | None = None,
        prior_reports: bool = True,
    ) -> None:
        self.root = Path(root)
        self.reports = reports
        self.labels = labels
        self.prior_reports = prior_reports

    def studies(self) -> Iterator[Study]:
        yield from studies_from_index(
            read_study_index(self.root),
            read_reports(self.reports) if self.reports else {},
            read_labels(self.labels) if self.labels else {},
            source=self.name,
            prior_reports=self.prior_reports,
        )
