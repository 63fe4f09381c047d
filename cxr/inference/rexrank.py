"""`cxr rexrank`: reports for a ReXrank input JSON, written as ReXrank's output JSON.

This is what a ReXrank submission's `inference.py IN.json OUT.json IMG_ROOT` does
(scripts/rexrank_inference.py is that script). What ReXrank's files hold, and where ReXrank
says so, is in `cxr.evaluation.rexrank`.

Each input entry becomes a `Study`: its `key_image_path` is the frontal image (else the first
image whose view says frontal), the first image whose view says lateral is the lateral (only
when `frontal_lateral` pairs one view with each image), the indication and comparison of its
`context` go into the prompt, `subject_id` is the patient; ReXrank gives no prior. Image paths
are under IMG_ROOT; a leading "/" (MIMIC-CXR's) is read as relative to it. Images are read by
`cxr.io.read_image` (PNG and JPEG, as ReXrank gives them, or DICOM).

The studies go through `cxr generate`'s own code (`ReportGenerator`, `ReportOutputs`,
`report_studies`) into a work folder, by default `<OUT stem>.cxr/` beside OUT.json:
reports.jsonl, reports.csv and errors.jsonl, as `cxr generate` writes them. A rerun with the same
work folder skips the studies already reported. OUT.json is then written from reports.jsonl for
the chosen track: each reported study's input entry with `model_prediction` added. A study
that could not be reported (no frontal image given, or its file unreadable) is left out of
OUT.json, logged with its reason, and kept in errors.jsonl; the job goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from cxr.errors import InputError, require_option
from cxr.evaluation import rexrank as rexrank_format
from cxr.evaluation.rexrank import Track
from cxr.inference.commands import ReportOutputs, decoding_summary, exit_code, report_studies
from cxr.inference.generator import ReportGenerator
from cxr.inference.outputs import ErrorRecord
from cxr.io.studies import FRONTAL_VIEWS, LATERAL_VIEWS
from cxr.types import ImageRole, Prompt, Study, StudyImages, is_missing

log = logging.getLogger(__name__)

SOURCE = "rexrank"
# How many failed studies the log names one by one; errors.jsonl lists them all.
_LOGGED_FAILURES = 20


def view_role(view: Any) -> ImageRole:
    """The role of a ReXrank view label ("Frontal", "postero-anterior", "left lateral", ...)."""
    if is_missing(view) or not isinstance(view, str):
        return ImageRole.OTHER
    text = " ".join(view.upper().split())
    if text == "FRONTAL" or text.replace("-", "_") in FRONTAL_VIEWS:
        return ImageRole.FRONTAL
    if text in LATERAL_VIEWS:
        return ImageRole.LATERAL
    return ImageRole.OTHER


def image_file(img_root: Path, path: str) -> str:
    """Where a ReXrank image path points: under the image root, a leading "/" included."""
    return str(img_root / path.lstrip("/"))


def _paths_by_role(entry: Mapping[str, Any]) -> tuple[list[str], dict[ImageRole, list[str]]]:
    paths = [p for p in entry.get(rexrank_format.IMAGE_PATHS) or [] if isinstance(p, str) and p]
    views = entry.get(rexrank_format.VIEWS)
    by_role: dict[ImageRole, list[str]] = {role: [] for role in ImageRole}
    if isinstance(views, list) and len(views) == len(paths):
        for path, view in zip(paths, views, strict=True):
            by_role[view_role(view)].append(path)
    return paths, by_role


def rexrank_study(
    study_id: str, entry: Mapping[str, Any], img_root: Path, context: bool = True
) -> Study | ErrorRecord:
    """One input entry as a `Study` (module docstring), or why it cannot be reported."""
    paths, by_role = _paths_by_role(entry)
    key = entry.get(rexrank_format.KEY_IMAGE)
    frontal = key if isinstance(key, str) and key else next(iter(by_role[ImageRole.FRONTAL]), None)
    if frontal is None:
        return ErrorRecord(
            reason=f"no frontal image: no {rexrank_format.KEY_IMAGE} and no image of "
            f"{rexrank_format.IMAGE_PATHS} {paths} has a frontal view in "
            f"{rexrank_format.VIEWS} {entry.get(rexrank_format.VIEWS)}",
            study_id=study_id,
        )
    lateral = next((p for p in by_role[ImageRole.LATERAL] if p != frontal), None)
    indication, comparison = (
        rexrank_format.context_fields(entry.get(rexrank_format.CONTEXT)) if context else ("", "")
    )
    patient = rexrank_format.patient_id(entry)
    return Study(
        study_id=study_id,
        # Without a subject_id each study is its own patient, as in cxr.data's adapters.
        patient_id=patient or f"unknown-patient:{study_id}",
        images=StudyImages(
            frontal=image_file(img_root, frontal),
            lateral=image_file(img_root, lateral) if lateral else None,
        ),
        prompt=Prompt(indication=indication, comparison=comparison),
        source=SOURCE,
    )


def rexrank_studies(
    entries: Mapping[str, Mapping[str, Any]], img_root: Path, context: bool = True
) -> tuple[list[Study], list[ErrorRecord]]:
    """The studies of a ReXrank input, in input order, and the entries that cannot be one."""
    studies: list[Study] = []
    unusable: list[ErrorRecord] = []
    for study_id, entry in entries.items():
        result = rexrank_study(study_id, entry, img_root, context)
        if isinstance(result, Study):
            studies.append(result)
        else:
            unusable.append(result)
    unpaired = sum(
        1
        for entry in entries.values()
        if len(entry.get(rexrank_format.IMAGE_PATHS) or []) > 1
        and len(entry.get(rexrank_format.VIEWS) or []) != len(entry[rexrank_format.IMAGE_PATHS])
    )
    if unpaired:
        log.info(
            "%d studies list a different number of views than images: they are reported "
            "without a lateral image",
            unpaired,
        )
    return studies, unusable


def rexrank(
    input_json: Path,
    output_json: Path,
    img_root: Path,
    model: Path | None = None,
    track: Literal["findings", "findings_impression"] = "findings_impression",
    context: bool = True,
    work_dir: Path | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    workers: int = 2,
    seed: int = 0,
    strict: bool = False,
) -> int:
    """Generate reports for a ReXrank input JSON and write ReXrank's output JSON (a submission's inference.py).

    Reads IN.json ({study_id: {image_path, key_image_path, frontal_lateral, context, ...}}),
    reads each study's images under IMG_ROOT, generates its report as `cxr generate` does, and
    writes OUT.json: each reported study's input entry with `model_prediction` added. A study
    that cannot be reported is left out of OUT.json and listed, with the reason, in the work
    folder's errors.jsonl; the run goes on. Decoding follows the model folder's
    generation_config.json. Rerunning with the same work folder skips studies already reported.

    Args:
        input_json: ReXrank input JSON (IN.json), e.g. ReXRank_MIMICCXR_test.json.
        output_json: ReXrank output JSON to write (OUT.json).
        img_root: Folder the input's image paths are relative to (IMG_ROOT).
        model: Model folder written by `cxr export` (or ReportModel.save_pretrained).
        track: findings (model_prediction is the findings) or findings_impression
            ("Findings: ... Impression: ..."); scored by `cxr evaluate --section findings` and
            `--section report`.
        context: Give the model the indication and comparison of each study's context.
        work_dir: Folder for reports.jsonl, reports.csv and errors.jsonl (default: <OUT stem>.cxr
            beside OUT.json).
        batch_size: Studies per forward pass.
        device: Torch device, e.g. cpu or cuda:0.
        seed: Seed of sampling, set before every batch.
        workers: Processes that decode images.
        strict: Exit non-zero when any study failed.
    """
    require_option(model, "--model")
    assert model is not None
    chosen = Track(track)
    entries = rexrank_format.load_entries(input_json)
    if not img_root.is_dir():
        raise InputError(img_root, "IMG_ROOT is not a folder")
    # Before any image is read, so that a bad model folder fails at once.
    generator = ReportGenerator(model, device, batch_size, workers, None, None, seed)
    log.info("decoding with %s", decoding_summary(generator.generation_config))
    work = work_dir or output_json.with_name(f"{output_json.stem}.cxr")
    work.mkdir(parents=True, exist_ok=True)
    outputs = ReportOutputs(work, sr=False, key=None)
    studies, unusable = rexrank_studies(entries, img_root, context)
    outputs.record(unusable)
    todo = [study for study in studies if study.study_id not in outputs.done]
    log.info(
        "%d studies: %d already reported in %s, %d to do",
        len(entries),
        len(studies) - len(todo),
        work,
        len(todo),
    )
    report_studies(generator, todo, outputs)
    written = rexrank_format.write_predictions(
        outputs.reports.existing(), output_json, chosen, entries
    )
    failed = [study_id for study_id in entries if study_id not in set(written)]
    _log_failures(failed, outputs.errors.existing(), work / "errors.jsonl")
    log.info(
        "wrote %d of %d studies (track %s) to %s; %d failed",
        len(written),
        len(entries),
        chosen.value,
        output_json,
        len(failed),
    )
    return exit_code(len(written), len(failed), strict)


def _log_failures(failed: list[str], errors: list[dict[str, Any]], errors_path: Path) -> None:
    """Names each failed study with its first recorded reason (the first few, then a count)."""
    if not failed:
        return
    reasons: dict[str, str] = {}
    for row in errors:
        study_id = row.get("study_id")
        if study_id is not None:
            reasons.setdefault(str(study_id), str(row.get("reason", "")))
    for study_id in failed[:_LOGGED_FAILURES]:
        log.warning(
            "study %s not reported: %s", study_id, reasons.get(study_id, "no reason recorded")
        )
    if len(failed) > _LOGGED_FAILURES:
        log.warning("... and %d more studies", len(failed) - _LOGGED_FAILURES)
    log.warning("%d studies not in the output; their reasons are in %s", len(failed), errors_path)
