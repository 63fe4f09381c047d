"""`cxr generate`: reports for every study in a DICOM folder, resumable."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from tqdm import tqdm
from transformers import GenerationConfig

from cxr.data.datasets.records import read_reports, studies_from_index
from cxr.errors import CxrError, require_option
from cxr.inference.backends import Engine
from cxr.inference.generator import ReportGenerator
from cxr.inference.outputs import ErrorRecord, JsonlAppender, Prediction, error_row, write_csv
from cxr.io import IndexedStudy, index_folder
from cxr.types import Study

log = logging.getLogger(__name__)

PSEUDONYM_KEY_ENV = "CXR_PSEUDONYM_KEY"


def pseudonym(patient_id: str, key: str) -> str:
    """A keyed hash of a patient id: stable for one key, not reversible without it."""
    return hmac.new(key.encode(), patient_id.encode(), hashlib.sha256).hexdigest()[:16]


class Pseudonymizer:
    """Replaces every known patient id, wherever it occurs in a text, by its keyed hash.

    Patient ids also hide in file paths (PACS exports name folders after the patient), so
    image paths and error reasons are rewritten too, not only the patient_id field.
    """

    def __init__(self, patient_ids: Iterable[str | None], key: str) -> None:
        self.key = key
        known = sorted({pid for pid in patient_ids if pid}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, known))) if known else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: pseudonym(match.group(0), self.key), text)

    def prediction(self, prediction: Prediction) -> None:
        """Hides the patient in a prediction, in place (a missing id stays missing)."""
        if prediction.patient_id:
            prediction.patient_id = pseudonym(prediction.patient_id, self.key)
        prediction.images = {slot: self(path) for slot, path in prediction.images.items()}

    def error(self, error: ErrorRecord) -> ErrorRecord:
        return replace(
            error, reason=self(error.reason), path=self(error.path) if error.path else None
        )


def _no_frontal(study: IndexedStudy) -> ErrorRecord:
    """Why a study cannot be reported: the roles its images were given, and why."""
    roles = "; ".join(
        f"{Path(image.path).name}: {image.role.value} ({image.role_reason})"
        for image in study.images
    )
    return ErrorRecord(
        reason=f"study has no frontal image (images: {roles})", study_id=study.study_id
    )


def _pending(
    studies: list[Study], indexed: dict[str, IndexedStudy], done: set[str]
) -> tuple[list[Study], list[ErrorRecord]]:
    todo, errors = [], []
    for study in studies:
        if study.study_id in done:
            continue
        if study.images.frontal is None:
            errors.append(_no_frontal(indexed[study.study_id]))
        else:
            todo.append(study)
    return todo, errors


def generate(
    dicom_dir: Path,
    model: str | None = None,
    output: Path | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    num_beams: int | None = None,
    do_sample: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
    device: str = "cpu",
    seed: int = 0,
    workers: int = 2,
    cache_dir: Path | None = None,
    prior_reports: Path | None = None,
    sr: bool = False,
    pseudonymize: bool = False,
    strict: bool = False,
    trust_remote_code: bool = False,
    engine: Literal["transformers", "vllm"] = "transformers",
) -> int:
    """Generate reports for every study in a DICOM folder.

    Indexes the folder (studies, frontal/lateral roles, priors), then writes reports.jsonl,
    reports.csv and errors.jsonl into the output folder (and DICOM SR files with --sr).
    Rerunning with the same output folder skips the studies already reported.

    The model is cxr's own (a folder `cxr export` wrote) or a Hugging Face vision-language
    model: Gemma 3 (MedGemma), Qwen2.5-VL (Lingshu), Qwen3-VL (RadVLM), LLaVA, and, with
    --trust-remote-code, MAIRA-2 and CheXagent-2. The kind is read from the folder's
    config.json; each family gets its own prompt (images, indication, prior report). A model
    without label heads leaves tube/line, findings and change "not assessed".

    Decoding follows the model folder's generation_config.json (a Hugging Face
    GenerationConfig; greedy by default); each decoding option given replaces that one field.

    Args:
        dicom_dir: Folder of DICOM files, searched recursively.
        model: Model folder written by `cxr export` (or ReportModel.save_pretrained) or of a Hugging Face vision-language model, or a Hugging Face Hub repo id (org/name) of one, read from the local hub cache when offline.
        output: Output folder (-o).
        batch_size: Studies per forward pass.
        max_new_tokens: Longest report generated, in tokens (default: the model folder's).
        num_beams: Beam width; 1 is greedy, or plain sampling with --do-sample true
            (default: the model folder's).
        do_sample: Hugging Face's `do_sample`: --do-sample (or --do-sample true) samples
            (with --temperature, --top-p, --top-k), false decodes deterministically, greedy or
            by beam search (default: the model folder's; false in a folder cxr wrote).
        temperature: Sampling temperature; used only when sampling (default: the model folder's).
        top_p: Nucleus sampling mass; used only when sampling (default: the model folder's).
        top_k: Sample from the k likeliest tokens; used only when sampling (default: the model
            folder's, or Hugging Face's 50).
        repetition_penalty: Hugging Face repetition penalty; 1.0 is none (default: the model
            folder's).
        device: Torch device, e.g. cpu or cuda:0.
        seed: Seed of sampling, set before every batch.
        workers: Processes that read headers and decode images.
        cache_dir: Preprocessed-image cache folder to use and fill.
        prior_reports: JSONL of reports keyed by study_id (indication, technique, comparison,
            findings, impression): a study's prior report (findings and impression of its
            prior study in the folder) and the study's own indication, technique and
            comparison, when present, go into its prompt. Its own findings are never read.
        sr: Also write one DICOM Comprehensive SR per study into OUTPUT/sr/.
        pseudonymize: Replace patient ids in the outputs by a keyed hash; the key is read from
            the environment variable CXR_PSEUDONYM_KEY.
        strict: Exit non-zero when any file or study failed.
        trust_remote_code: Run the Python code a model folder ships (MAIRA-2, CheXagent-2:
            config.json's auto_map); read it first. Without this flag such a folder is refused.
        engine: What runs a Hugging Face model: transformers, or vllm (CUDA GPU only; in its
            own environment, built by `make vllm-env`).
    """
    require_option(model, "--model")
    require_option(output, "-o/--output")
    assert model is not None and output is not None
    key = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if pseudonymize and not key:
        raise CxrError(
            f"--pseudonymize needs a secret key in the environment variable {PSEUDONYM_KEY_ENV}"
        )
    # Before indexing, so that a bad model folder or option fails at once. An option left out
    # is None, which a GenerationConfig treats as unset: the folder's value stays.
    given = _generation_config(
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        do_sample=do_sample,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
    )
    generator = ReportGenerator(
        model,
        device,
        batch_size,
        workers,
        cache_dir,
        given,
        seed,
        trust_remote_code,
        Engine(engine),
    )
    log.info("decoding with %s", decoding_summary(generator.generation_config))
    output.mkdir(parents=True, exist_ok=True)
    outputs = ReportOutputs(output, sr, key if pseudonymize else None)
    index = index_folder(dicom_dir, workers=workers)
    if pseudonymize:
        outputs.hide = Pseudonymizer((s.patient_id for s in index.studies), key)
    outputs.record(ErrorRecord(reason=s.reason, path=s.path) for s in index.skipped)
    prior_rows = read_reports(prior_reports) if prior_reports else {}
    studies = list(studies_from_index(index.studies, prior_rows, {}, source="generate"))
    todo, unusable = _pending(studies, {s.study_id: s for s in index.studies}, outputs.done)
    outputs.record(unusable)
    # Counted in this folder: reports.jsonl may also hold studies of another folder.
    already = len(studies) - len(todo) - len(unusable)
    log.info("%d studies: %d already reported, %d to do", len(studies), already, len(todo))

    reported, failed = report_studies(generator, todo, outputs)
    failed += len(unusable)
    log.info(
        "reported %d, skipped %d (already done), failed %d studies, %d unreadable files; outputs in %s",
        reported,
        already,
        failed,
        len(index.skipped),
        output,
    )
    return exit_code(reported + already, failed + len(index.skipped), strict)


def report_studies(
    generator: ReportGenerator, studies: list[Study], outputs: ReportOutputs
) -> tuple[int, int]:
    """Reports `studies` (each with a frontal image) into `outputs`, each batch written
    durably, then rewrites reports.csv; returns (studies reported, studies failed)."""
    reported = failed = 0
    with tqdm(total=len(studies), unit="study", desc="generate", disable=None) as progress:
        for batch in generator.generate_batches(studies):
            batch_reported, batch_failed = outputs.write(batch)
            reported, failed = reported + batch_reported, failed + batch_failed
            progress.update(len({r.study_id for r in batch if r.study_id}))
    write_csv(outputs.output / "reports.jsonl", outputs.output / "reports.csv")
    return reported, failed


def _generation_config(**options: object) -> GenerationConfig:
    try:
        return GenerationConfig(**options)
    except ValueError as error:  # a value Hugging Face rejects, e.g. --max-new-tokens 0
        raise CxrError(f"decoding option: {error}") from error


def decoding_summary(generation_config: GenerationConfig) -> str:
    """The decoding settings that are set, without the tokenizer's token ids."""
    settings = generation_config.to_diff_dict()
    hidden = {"pad_token_id", "eos_token_id", "bos_token_id", "transformers_version"}
    return ", ".join(
        f"{name}={value}"
        for name, value in sorted(settings.items())
        if name not in hidden and not name.startswith("_")
    )


class ReportOutputs:
    """The files of one `cxr generate` run: reports, errors and SR, written batch by batch."""

    def __init__(self, output: Path, sr: bool, key: str | None) -> None:
        self.output = output
        self.sr = sr
        self.key = key
        self.hide: Pseudonymizer | None = None
        self.reports = JsonlAppender(output / "reports.jsonl")
        self.done = {row["study_id"] for row in self.reports.existing()}
        self.errors = _restart_errors(output / "errors.jsonl", self.done)

    def record(self, failures: Iterable[ErrorRecord]) -> None:
        hide = self.hide
        self.errors.append(error_row(hide.error(e) if hide else e) for e in failures)

    def write(self, batch: list[Prediction | ErrorRecord]) -> tuple[int, int]:
        """Writes one batch durably; returns (studies reported, studies failed)."""
        predictions = [r for r in batch if isinstance(r, Prediction)]
        failures = [r for r in batch if isinstance(r, ErrorRecord)]
        if self.sr:
            failures.extend(_write_sr(self.output / "sr", predictions, self.key))
        if self.hide:
            for prediction in predictions:
                self.hide.prediction(prediction)
        self.reports.append(p.to_row() for p in predictions)
        self.record(failures)
        reported_ids = {p.study_id for p in predictions}
        failed = {e.study_id for e in failures if e.study_id not in (None, *reported_ids)}
        return len(predictions), len(failed)


def _restart_errors(path: Path, done: set[str]) -> JsonlAppender:
    """errors.jsonl as this run starts: the rows of studies already reported are kept (an
    image they had to leave out, an SR not written); everything else this run finds again."""
    kept = [row for row in JsonlAppender(path).existing() if row.get("study_id") in done]
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), "utf-8")
    os.replace(partial, path)
    return JsonlAppender(path)


def exit_code(reported: int, failures: int, strict: bool) -> int:
    """0, or 1 when no study was reported, or with `strict` when anything failed."""
    if reported == 0:
        log.error("no study could be reported; see errors.jsonl for the reasons")
        return 1
    if strict and failures:
        log.error("%d failures and --strict was given; see errors.jsonl", failures)
        return 1
    return 0


def _write_sr(folder: Path, predictions: list[Prediction], key: str | None) -> list[ErrorRecord]:
    """Writes one DICOM SR per prediction; a study whose SR fails is recorded, not fatal."""
    from pydicom.errors import InvalidDicomError

    from cxr.inference.sr import read_headers, write_report_sr

    folder.mkdir(parents=True, exist_ok=True)
    hide = (lambda patient_id: pseudonym(patient_id, key)) if key else None
    failures = []
    for prediction in predictions:
        paths = [
            prediction.images[slot] for slot in ("frontal", "lateral") if slot in prediction.images
        ]
        try:
            write_report_sr(prediction, read_headers(paths), folder, pseudonymize=hide)
        except (CxrError, InvalidDicomError, OSError, ValueError) as error:
            failures.append(
                ErrorRecord(reason=f"DICOM SR not written: {error}", study_id=prediction.study_id)
            )
    return failures
