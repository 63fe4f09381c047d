"""IU X-ray (Open-I, Indiana University): the official XML reports, or an R2Gen-style folder.

Two layouts under `root`:

- The official downloads extracted: ``NLMCXR_reports.tgz`` (one Open-I XML per report, found
  recursively; sections from the labelled abstract COMPARISON / INDICATION / FINDINGS /
  IMPRESSION; images named by ``parentImage id``) and ``NLMCXR_png.tgz`` (``CXR1_1_IM-0001-3001.png``).
- An R2Gen-style folder: ``annotation.json`` ({split: [{id, report, image_path, split}]}, the
  report being the findings) with ``images/<id>/0.png`` (frontal) and ``1.png`` (lateral). The
  test split's key in the widely shared file is four spaces; the entry's own `split` is used.

IU gives one report per patient, so study and patient are both ``CXR<number>``; there are no
priors. Views: a table of DICOM headers (``imageid``, ``View Position``, e.g. the Open-I
``nlmcxr_dicom_metadata.csv``) marks the lateral when it names one; otherwise the report's
images are taken in order, frontal first then lateral, as the collection's "PA and lateral"
protocol lists them (the header view is often PA on both images, hence this order).

Observation labels: the XML layout gives them from each report's major MeSH terms
(`cxr.data.datasets.mesh`); annotation.json has none, so they stay unknown there (a data
source's `label_reports` can read them from the report text instead).
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxr.data.datasets.mesh import mesh_observations
from cxr.data.datasets.tables import existing, index_images, parse_split, read_table
from cxr.data.splits import Split
from cxr.errors import InputError
from cxr.io.studies import LATERAL_VIEWS
from cxr.types import Prompt, Study, StudyImages, Targets

log = logging.getLogger(__name__)

ANNOTATION_FILE = "annotation.json"
_IMAGE_ID = re.compile(r"CXR(?P<report>\d+)_(?:\d+_)?(?P<image>IM-\d+(?:-\d+)+)")
_REPORT_ID = re.compile(r"CXR(?P<report>\d+)")
_XML_SECTIONS = {
    "COMPARISON": "comparison",
    "INDICATION": "indication",
    "FINDINGS": "findings",
    "IMPRESSION": "impression",
}
_IU_LATERAL_VIEWS = LATERAL_VIEWS | {"LARGE LATERAL"}


def image_key(identifier: str) -> str | None:
    """``CXR1_1_IM-0001-3001`` and ``CXR1_IM-0001-3001`` (the spellings in the XML, the PNG
    names and the DICOM table) as one key; None for a name that is no IU image id."""
    match = _IMAGE_ID.search(identifier)
    return f"CXR{match['report']}_{match['image']}" if match else None


def report_key(identifier: str) -> str:
    """``CXR2384`` from ``CXR2384_IM-0942`` or ``CXR1_1_IM-0001``: the study (and patient) id."""
    match = _REPORT_ID.search(identifier)
    if match is None:
        raise ValueError(f"{identifier!r} is no IU X-ray id")
    return f"CXR{match['report']}"


@dataclass(frozen=True)
class OpenIReport:
    """What cxr reads from one Open-I report XML."""

    study_id: str  # CXR<n>
    sections: dict[str, str]
    image_ids: list[str]
    mesh_major: list[str] = field(default_factory=list)  # "Opacity/lung/base/left/mild", ...


def read_open_i_xml(path: Path) -> OpenIReport:
    """Report id, sections by name, image ids and major MeSH terms of one Open-I report XML.

    Raises:
        InputError: not a readable Open-I report.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise InputError(path, f"not a readable XML file: {error}") from error
    uid = root.find("uId")
    if uid is None or not uid.get("id"):
        raise InputError(path, "no <uId id=...>: not an Open-I report")
    sections = {
        _XML_SECTIONS[label]: " ".join((element.text or "").split())
        for element in root.iter("AbstractText")
        if (label := (element.get("Label") or "").upper()) in _XML_SECTIONS
    }
    images = [element.get("id") or "" for element in root.iter("parentImage")]
    mesh = [" ".join((element.text or "").split()) for element in root.iterfind("MeSH/major")]
    return OpenIReport(
        report_key(uid.get("id") or ""), sections, [i for i in images if i], [m for m in mesh if m]
    )


def read_view_table(path: Path) -> dict[str, str]:
    """Image key -> ViewPosition from a table with ``imageid`` and ``View Position`` columns."""
    table = read_table(path, ("imageid", "View Position"), "IU view table")
    views = {}
    for identifier, view in zip(table["imageid"], table["View Position"], strict=True):
        key = image_key(identifier)
        if key and view.strip():
            views[key] = view.strip().upper()
    return views


def order_views(image_keys: list[str], views: dict[str, str]) -> tuple[str | None, str | None]:
    """(frontal, lateral) image keys of one report: a lateral named by the view table, else
    the report's images in order (frontal, then lateral)."""
    ordered = sorted(image_keys)
    laterals = [key for key in ordered if views.get(key) in _IU_LATERAL_VIEWS]
    if laterals:
        others = [key for key in ordered if key not in laterals]
        return (others[0] if others else None), laterals[0]
    return (ordered[0] if ordered else None), (ordered[1] if len(ordered) > 1 else None)


class IuXrayDataset:
    """IU X-ray reports (Open-I XML or R2Gen annotation.json) with their images when present.

    Args:
        root: The folder the official NLMCXR_reports.tgz (+ NLMCXR_png.tgz) were extracted
            into, or an R2Gen-style folder with annotation.json.
        annotation: The R2Gen-style annotation JSON; default `root`/annotation.json if present.
        images: Folder of the images; default `root` (XML layout) or `root`/images (R2Gen).
        view_table: CSV of DICOM headers with imageid and View Position (may be .csv.gz).
        official_split: With annotation.json, put each study in the split the file gives.
        mesh_labels: With the XML layout, take observation labels from each report's major
            MeSH terms (untagged observations absent, "No Indexing" unknown); off leaves
            them unknown.
    """

    name = "iu_xray"

    def __init__(
        self,
        root: Path,
        annotation: Path | None = None,
        images: Path | None = None,
        view_table: Path | None = None,
        official_split: bool = True,
        mesh_labels: bool = True,
    ) -> None:
        self.root = Path(root)
        default_annotation = self.root / ANNOTATION_FILE
        self.annotation = (
            Path(annotation)
            if annotation
            else (default_annotation if default_annotation.is_file() else None)
        )
        self.images = (
            Path(images) if images else (self.root / "images" if self.annotation else self.root)
        )
        self.view_table = Path(view_table) if view_table else None
        self.official_split = official_split
        self.mesh_labels = mesh_labels

    def patient_splits(self) -> dict[str, Split]:
        """Study (= patient) -> split from annotation.json; empty for the XML layout."""
        if not self.official_split or self.annotation is None:
            return {}
        splits = {}
        for key, entry in _annotation_entries(self.annotation):
            split = parse_split(str(entry.get("split") or key)) or parse_split(key) or Split.TEST
            splits[report_key(str(entry["id"]))] = split
        return splits

    def studies(self) -> Iterator[Study]:
        if self.annotation is not None:
            yield from self._annotation_studies(self.annotation)
        else:
            yield from self._xml_studies()

    # --- official XML -------------------------------------------------------------------------

    def _xml_studies(self) -> Iterator[Study]:
        paths = sorted(self.root.rglob("*.xml"))
        if not paths:
            raise InputError(
                self.root, "no Open-I report XML files (NLMCXR_reports.tgz) and no annotation.json"
            )
        on_disk = {
            image_key(stem) or stem: path for stem, path in index_images(self.images).items()
        }
        views = read_view_table(self.view_table) if self.view_table else {}
        log.info("iu_xray: %d report XML files, %d images on disk", len(paths), len(on_disk))
        for path in paths:
            report = read_open_i_xml(path)
            keys = [key for key in (image_key(i) for i in report.image_ids) if key]
            frontal, lateral = order_views(keys, views)
            study = _study(
                report.study_id,
                report.sections,
                StudyImages(
                    frontal=on_disk.get(frontal) if frontal else None,
                    lateral=on_disk.get(lateral) if lateral else None,
                ),
            )
            if self.mesh_labels:
                study.targets.observations = mesh_observations(report.mesh_major)
            yield study

    # --- R2Gen-style annotation.json ------------------------------------------------------------

    def _annotation_studies(self, annotation: Path) -> Iterator[Study]:
        for _, entry in _annotation_entries(annotation):
            paths = [str(self.images / p) for p in entry.get("image_path") or []]
            yield _study(
                report_key(str(entry["id"])),
                {"findings": " ".join(str(entry.get("report") or "").split())},
                StudyImages(
                    frontal=existing(paths[0]) if paths else None,
                    lateral=existing(paths[1]) if len(paths) > 1 else None,
                ),
            )


def _annotation_entries(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(split key, entry) of an R2Gen-style annotation.json."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read annotation JSON: {error}") from error
    if not isinstance(content, dict):
        raise InputError(path, "expected {split: [entries]} at the top level")
    for key, entries in content.items():
        for entry in entries:
            if not isinstance(entry, dict) or "id" not in entry:
                raise InputError(path, f"an entry of split {key!r} has no id")
            yield key, entry


def _study(study_id: str, sections: dict[str, str], images: StudyImages) -> Study:
    return Study(
        study_id=study_id,
        patient_id=study_id,
        images=images,
        prompt=Prompt(
            indication=sections.get("indication", ""), comparison=sections.get("comparison", "")
        ),
        targets=Targets(
            findings=sections.get("findings") or None, impression=sections.get("impression") or None
        ),
        source=IuXrayDataset.name,
    )
