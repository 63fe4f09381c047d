"""The study index: a folder of DICOM files grouped into studies, with roles and priors.

Only headers are read (`stop_before_pixels`), in worker processes. Each usable image gets a
role (frontal, lateral, other) and the reason it was given; each study gets one frontal and one
lateral chosen by `pick_frontal` / `pick_lateral`, and the same patient's most recent earlier
study as its prior. Files that cannot be used are listed with their reason, never dropped
silently.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cxr.errors import InputError, UnreadableImage
from cxr.io.dicom import DicomHeader, read_header, unusable_reason
from cxr.jsonl import jsonl_records
from cxr.types import ImageRole

log = logging.getLogger(__name__)

FRONTAL_VIEWS = frozenset({"PA", "AP", "POSTERO_ANTERIOR", "ANTERO_POSTERIOR"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT", "LEFT LATERAL", "RIGHT LATERAL"})
# Recognised views that are neither: decubitus, obliques, lordotic, axial.
OTHER_VIEWS = frozenset(
    {"LLD", "RLD", "LLO", "RLO", "LAO", "RAO", "LPO", "RPO", "AP AXIAL", "LORDOTIC", "AP LLD",
     "AP RLD", "PA LLD", "PA RLD", "SWIMMERS", "OBLIQUE"}
)  # fmt: skip
FRONTAL_KEYWORDS = re.compile(r"\b(PA|AP|P-A|A-P|FRONTAL|POSTERO-?ANTERIOR|ANTERO-?POSTERIOR)\b")
LATERAL_KEYWORDS = re.compile(r"\b(LAT|LATERAL|LL|RL)\b")
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "CHEST_TO_PELVIS", "PORT CHEST"})
XRAY_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "OT", "PX"})
# Frontal preference: PA (erect, the reference view) over AP, over a frontal found otherwise.
_FRONTAL_RANK = {"PA": 0, "POSTERO_ANTERIOR": 0, "AP": 1, "ANTERO_POSTERIOR": 1}

SKIPPED_FILENAME = "skipped.jsonl"


@dataclass
class IndexedImage:
    """One usable image of a study, with its role and how the role was decided."""

    path: str
    sop_instance_uid: str | None
    role: ImageRole
    role_reason: str
    view_position: str | None = None
    acquisition_datetime: datetime | None = None


@dataclass
class IndexedStudy:
    """One study: its images, the chosen frontal/lateral, its prior and any flags."""

    study_id: str
    patient_id: str | None
    study_datetime: datetime | None
    frontal: str | None = None
    lateral: str | None = None
    prior_study_id: str | None = None
    images: list[IndexedImage] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class SkippedFile:
    """A file the index could not use, and why."""

    path: str
    reason: str


@dataclass
class StudyIndex:
    """Studies sorted by patient then datetime, and every file that was skipped."""

    studies: list[IndexedStudy]
    skipped: list[SkippedFile]

    @property
    def image_count(self) -> int:
        return sum(len(study.images) for study in self.studies)

    def write_jsonl(self, path: Path) -> Path:
        """Writes one JSON line per study to `path` and `skipped.jsonl` beside it.

        Returns:
            The path of the skipped-files list.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_lines(path, (_study_to_json(study) for study in self.studies))
        skipped_path = path.parent / SKIPPED_FILENAME
        _write_lines(skipped_path, ({"path": s.path, "reason": s.reason} for s in self.skipped))
        return skipped_path


def index_folder(root: Path, workers: int = 2, progress: bool = True) -> StudyIndex:
    """Scans `root` recursively, reading DICOM headers only, into a study index.

    Raises:
        InputError: `root` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    paths = sorted(str(path) for path in root.rglob("*") if path.is_file())
    log.info("reading %d file headers from %s with %d worker(s)", len(paths), root, workers)
    headers: list[tuple[str, DicomHeader]] = []
    skipped: list[SkippedFile] = []
    results = tqdm(
        _read_headers(paths, workers), total=len(paths), desc="headers", unit="file",
        disable=not progress,
    )  # fmt: skip
    for path, outcome in zip(paths, results, strict=True):
        if isinstance(outcome, str):
            skipped.append(SkippedFile(path, outcome))
        else:
            headers.append((path, outcome))
    return build_index(headers, skipped)


def build_index(
    headers: list[tuple[str, DicomHeader]], skipped: list[SkippedFile] | None = None
) -> StudyIndex:
    """Groups (path, header) pairs into studies with roles, chosen views, priors and flags."""
    skipped = list(skipped or [])
    by_study: dict[str, list[tuple[str, DicomHeader]]] = defaultdict(list)
    for path, header in headers:
        reason = unusable_reason(header)
        if reason is None and header.study_instance_uid is None:
            reason = "no StudyInstanceUID: the image cannot be grouped into a study"
        if reason is not None:
            skipped.append(SkippedFile(path, reason))
        else:
            by_study[header.study_instance_uid or ""].append((path, header))
    studies = [_build_study(uid, members, skipped) for uid, members in by_study.items()]
    link_priors(studies)
    studies.sort(key=_study_order)
    skipped.sort(key=lambda entry: entry.path)
    return StudyIndex(studies, skipped)


def read_study_index(path: Path) -> list[IndexedStudy]:
    """Reads a studies JSONL file written by `StudyIndex.write_jsonl`.

    Raises:
        InputError: the file is missing or a line is not a study record.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "study index not found")
    studies = []
    for number, record in jsonl_records(path):
        try:
            studies.append(_study_from_json(record))
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(path, f"line {number} is not a study record: {error}") from error
    return studies


# --- roles -------------------------------------------------------------------------------------


def assign_role(header: DicomHeader) -> tuple[ImageRole, str]:
    """The image's role and why: ViewPosition, then PatientOrientation, then series keywords.

    Images that are not projection radiographs (CT, MR, ...) are `other` whatever their view.
    """
    modality = (header.modality or "").upper()
    if modality and modality not in XRAY_MODALITIES:
        return ImageRole.OTHER, f"Modality={modality}"
    decided = _role_from_view(header.view_position)
    if decided is None:
        decided = _role_from_orientation(header.patient_orientation)
    if decided is None:
        decided = _role_from_keywords(header)
    return decided or (ImageRole.OTHER, "no view information")


def _role_from_view(view_position: str | None) -> tuple[ImageRole, str] | None:
    view = (view_position or "").upper().strip()
    reason = f"ViewPosition={view}"
    if view in FRONTAL_VIEWS:
        return ImageRole.FRONTAL, reason
    if view in LATERAL_VIEWS:
        return ImageRole.LATERAL, reason
    if view in OTHER_VIEWS:
        return ImageRole.OTHER, reason
    return None


def _role_from_orientation(orientation: str | None) -> tuple[ImageRole, str] | None:
    """PatientOrientation's row direction: L/R for a frontal view, A/P for a lateral one."""
    parts = (orientation or "").upper().split("\\")
    if len(parts) != 2 or not parts[0]:
        return None
    row_letters = set(parts[0])
    reason = f"PatientOrientation={orientation}"
    if row_letters <= {"L", "R"}:
        return ImageRole.FRONTAL, reason
    if row_letters <= {"A", "P"}:
        return ImageRole.LATERAL, reason
    return None


def _role_from_keywords(header: DicomHeader) -> tuple[ImageRole, str] | None:
    for name, text in (
        ("SeriesDescription", header.series_description),
        ("ProtocolName", header.protocol_name),
    ):
        words = (text or "").upper().replace("_", " ")
        frontal = FRONTAL_KEYWORDS.search(words)
        lateral = LATERAL_KEYWORDS.search(words)
        if frontal and not lateral:
            return ImageRole.FRONTAL, f"{name} contains {frontal.group(0)!r}"
        if lateral and not frontal:
            return ImageRole.LATERAL, f"{name} contains {lateral.group(0)!r}"
    return None


def pick_frontal(images: list[IndexedImage]) -> IndexedImage | None:
    """PA over AP over a frontal found from other evidence; then the latest acquisition.

    A repeated view is usually a retake of an image judged unsatisfactory, hence "latest".
    Ties are broken by path so that the choice is reproducible.
    """
    frontals = [image for image in images if image.role is ImageRole.FRONTAL]
    if not frontals:
        return None
    best_rank = min(_frontal_rank(image) for image in frontals)
    return _latest([image for image in frontals if _frontal_rank(image) == best_rank])


def _frontal_rank(image: IndexedImage) -> int:
    return _FRONTAL_RANK.get((image.view_position or "").upper().strip(), 2)


def pick_lateral(images: list[IndexedImage]) -> IndexedImage | None:
    """The latest lateral acquisition (ties broken by path)."""
    return _latest([image for image in images if image.role is ImageRole.LATERAL])


def _latest(images: list[IndexedImage]) -> IndexedImage | None:
    if not images:
        return None
    # Undated images sort before dated ones; among equals the first path wins.
    ordered = sorted(images, key=lambda image: image.path)
    return max(ordered, key=_acquisition_order)


def _acquisition_order(image: IndexedImage) -> tuple[bool, datetime]:
    return image.acquisition_datetime is not None, image.acquisition_datetime or datetime.min


# --- studies and priors --------------------------------------------------------------------------


def _build_study(
    study_id: str, members: list[tuple[str, DicomHeader]], skipped: list[SkippedFile]
) -> IndexedStudy:
    members = sorted(members, key=lambda member: member[0])
    headers = [header for _, header in members]
    study = IndexedStudy(
        study_id=study_id,
        patient_id=next((h.patient_id for h in headers if h.patient_id), None),
        study_datetime=next((h.study_datetime for h in headers if h.study_datetime), None),
    )
    kept_by_sop: dict[str, str] = {}
    for path, header in members:
        sop = header.sop_instance_uid
        if sop is not None and sop in kept_by_sop:
            study.flags.append(f"duplicate_sop:{path}")
            skipped.append(
                SkippedFile(path, f"duplicate SOPInstanceUID: {sop} is also {kept_by_sop[sop]}")
            )
            continue
        if sop is not None:
            kept_by_sop[sop] = path
        role, reason = assign_role(header)
        study.images.append(
            IndexedImage(path, sop, role, reason, header.view_position, header.acquisition_datetime)
        )
    study.flags.extend(_study_flags(headers))
    frontal, lateral = pick_frontal(study.images), pick_lateral(study.images)
    study.frontal = frontal.path if frontal else None
    study.lateral = lateral.path if lateral else None
    return study


def _study_flags(headers: list[DicomHeader]) -> list[str]:
    flags = []
    body_parts = {(h.body_part_examined or "").upper() for h in headers} - {""}
    flags += [f"non_chest_body_part:{part}" for part in sorted(body_parts - CHEST_BODY_PARTS)]
    modalities = {(h.modality or "").upper() for h in headers} - {""}
    flags += [f"non_xray_modality:{modality}" for modality in sorted(modalities - XRAY_MODALITIES)]
    patients = {h.patient_id for h in headers if h.patient_id}
    if len(patients) > 1:
        flags.append("conflicting_patient_id:" + ",".join(sorted(patients)))
    return flags


def link_priors(
    studies: Sequence[IndexedStudy],
    order: Callable[[IndexedStudy], Any] = lambda study: study.study_datetime,
) -> None:
    """Sets each study's prior: the same patient's latest study whose `order` is strictly smaller.

    The order is the study datetime unless given (a manifest may order by a follow-up number).
    Studies without a patient, or whose order is None, neither get nor serve as priors; studies
    of equal order are not each other's priors.
    """
    by_patient: dict[str, list[tuple[Any, IndexedStudy]]] = defaultdict(list)
    for study in studies:
        study.prior_study_id = None
        key = order(study)
        if study.patient_id and key is not None:
            by_patient[study.patient_id].append((key, study))
    for timeline in by_patient.values():
        timeline.sort(key=lambda entry: (entry[0], entry[1].study_id))
        latest_earlier: str | None = None
        previous: tuple[Any, IndexedStudy] | None = None
        for key, study in timeline:
            if previous is not None and previous[0] != key:
                latest_earlier = previous[1].study_id
            study.prior_study_id = latest_earlier
            previous = (key, study)


def _study_order(study: IndexedStudy) -> tuple[Any, ...]:
    return (
        study.patient_id is None,
        study.patient_id or "",
        study.study_datetime is None,
        study.study_datetime or datetime.min,
        study.study_id,
    )


# --- header reading --------------------------------------------------------------------------


def _header_or_reason(path: str) -> DicomHeader | str:
    """Runs in a worker process: the header, or the reason the file cannot be used."""
    try:
        return read_header(path)
    except UnreadableImage as error:
        return error.reason


def _read_headers(paths: list[str], workers: int) -> Iterator[DicomHeader | str]:
    if workers <= 1 or len(paths) < 2:
        yield from map(_header_or_reason, paths)
        return
    workers = min(workers, os.cpu_count() or 1, len(paths))
    chunk_size = max(1, min(256, len(paths) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_header_or_reason, paths, chunksize=chunk_size)


# --- JSON lines ------------------------------------------------------------------------------


def _write_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _study_to_json(study: IndexedStudy) -> dict[str, Any]:
    return {
        "study_id": study.study_id,
        "patient_id": study.patient_id,
        "study_datetime": _iso(study.study_datetime),
        "frontal": study.frontal,
        "lateral": study.lateral,
        "prior_study_id": study.prior_study_id,
        "images": [
            {
                "path": image.path,
                "sop_instance_uid": image.sop_instance_uid,
                "role": image.role.value,
                "role_reason": image.role_reason,
                "view_position": image.view_position,
                "acquisition_datetime": _iso(image.acquisition_datetime),
            }
            for image in study.images
        ],
        "flags": study.flags,
    }


def _study_from_json(record: dict[str, Any]) -> IndexedStudy:
    return IndexedStudy(
        study_id=record["study_id"],
        patient_id=record["patient_id"],
        study_datetime=_parse_iso(record["study_datetime"]),
        frontal=record["frontal"],
        lateral=record["lateral"],
        prior_study_id=record["prior_study_id"],
        images=[
            IndexedImage(
                path=image["path"],
                sop_instance_uid=image["sop_instance_uid"],
                role=ImageRole(image["role"]),
                role_reason=image["role_reason"],
                view_position=image["view_position"],
                acquisition_datetime=_parse_iso(image["acquisition_datetime"]),
            )
            for image in record["images"]
        ],
        flags=list(record["flags"]),
    )
