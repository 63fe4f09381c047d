"""`ReportGenerator`: load a saved model once, turn batches of studies into `Prediction`s."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import GenerationConfig

from cxr.data.collate import ReportCollator
from cxr.data.dataset import ImageLoader, StudyDataset
from cxr.data.reports import split_report
from cxr.errors import CxrError, InputError
from cxr.inference.outputs import ErrorRecord, Prediction
from cxr.models import ReportModel
from cxr.models.hub import resolve_model_folder
from cxr.tube_line import study_statuses
from cxr.types import (
    CHANGE_FINDINGS,
    IMAGE_SLOTS,
    OBSERVATIONS,
    TUBE_LINE_LABELS,
    Change,
    Study,
)

log = logging.getLogger(__name__)

_FRONTAL = IMAGE_SLOTS.index("frontal")


def model_fingerprint(model_dir: Path) -> str:
    """`<folder name>@<first 12 hex of the weights' sha256>`, to tell models apart in outputs."""
    digest = hashlib.sha256()
    # rglob: an adapter-only folder keeps its LoRA weights in decoder_adapter/
    for weights in sorted(model_dir.rglob("*.safetensors")):
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"{model_dir.resolve().name}@{digest.hexdigest()[:12]}"


class ReportGenerator:
    """Generates reports, tube/line, findings and change calls for studies.

    Args:
        model_dir: A folder written by `ReportModel.save_pretrained` (or `cxr export`).
        device: Torch device, e.g. cpu or cuda:0.
        batch_size: Studies per forward pass.
        num_workers: DataLoader processes that decode and preprocess images.
        cache_dir: Preprocessed-image cache shared with training; none decodes every time.
        generation_config: Decoding settings. The fields it sets replace the model folder's
            (its generation_config.json); those it leaves unset (None) keep them. None
            decodes exactly as the folder says.
        seed: Seed of sampling, set before every batch.

    Raises:
        CxrError: The resolved decoding settings contradict each other (e.g. a temperature
            without `do_sample`, which Hugging Face would silently ignore).
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        batch_size: int = 8,
        num_workers: int = 0,
        cache_dir: Path | None = None,
        generation_config: GenerationConfig | None = None,
        seed: int = 0,
    ) -> None:
        model_dir = resolve_model_folder(model_dir)
        if not (model_dir / "config.json").is_file():
            raise InputError(
                model_dir, "not a model folder (no config.json); make one with `cxr export`"
            )
        self.device = torch.device(device)
        self.model = ReportModel.from_pretrained(model_dir).to(self.device).eval()
        self.model_name = model_fingerprint(model_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.generation_config = self.model.resolve_generation_config(generation_config)
        _refuse_ignored_settings(self.generation_config, model_dir)
        self.seed = seed
        self.load_image = ImageLoader(self.model.encoder_config.image_size, cache_dir)
        self.collate = ReportCollator(self.model.tokenizer)
        self.thresholds = self.model.tube_line_thresholds.numpy()

    def generate(self, studies: Iterable[Study]) -> Iterator[Prediction | ErrorRecord]:
        """Predictions in input order; a study that cannot be reported yields an ErrorRecord."""
        for batch in self.generate_batches(studies):
            yield from batch

    def generate_batches(
        self, studies: Iterable[Study]
    ) -> Iterator[list[Prediction | ErrorRecord]]:
        """Like `generate`, one list per batch, so callers can write each batch durably."""
        study_list = list(studies)
        by_id = {study.study_id: study for study in study_list}
        loader = DataLoader(
            StudyDataset(study_list, self.load_image),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=self.collate,
        )
        for batch in loader:
            results: list[Prediction | ErrorRecord] = list(self._errors(batch))
            usable = batch["image_present"][:, _FRONTAL]
            if bool(usable.any()):
                results.extend(self.generate_batch(_select(batch, usable), by_id))
            yield results

    @staticmethod
    def _errors(batch: dict[str, Any]) -> Iterator[ErrorRecord]:
        for study_id, present, errors in zip(
            batch["study_id"], batch["image_present"], batch["image_errors"], strict=True
        ):
            for error in errors:
                yield ErrorRecord(reason=error, study_id=study_id)
            if not bool(present[_FRONTAL]):
                yield ErrorRecord(reason="no readable frontal image", study_id=study_id)

    @torch.inference_mode()
    def generate_batch(self, batch: dict[str, Any], studies: dict[str, Study]) -> list[Prediction]:
        """Predictions for one collated batch whose rows all have a frontal image."""
        started = time.perf_counter()
        tensors = {
            k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
        }
        torch.manual_seed(self.seed)
        # One pass of the encoder and the heads gives the labels and grounds the reports.
        texts, labels = self.model.predict(tensors, self.generation_config)
        per_study = (time.perf_counter() - started) / len(texts)
        present = batch["image_present"].tolist()
        return [
            self._prediction(
                studies[study_id],
                text,
                labels.tube_line[i],
                labels.observations[i],
                labels.change[i],
                present[i],
                per_study,
            )
            for i, (study_id, text) in enumerate(zip(batch["study_id"], texts, strict=True))
        ]

    def _prediction(
        self,
        study: Study,
        text: str,
        tube_line: torch.Tensor,
        observations: torch.Tensor,
        change: torch.Tensor,
        present: list[bool],
        seconds: float,
    ) -> Prediction:
        """One study's prediction; change is assessed only when its prior image was read."""
        findings, impression = split_report(text)
        probs = {
            label: round(float(p), 6) for label, p in zip(TUBE_LINE_LABELS, tube_line, strict=True)
        }
        observation_probs = {
            name: round(float(p), 6) for name, p in zip(OBSERVATIONS, observations, strict=True)
        }
        # Slots whose file was missing or could not be read were not used: they are not listed.
        used = dict(zip(IMAGE_SLOTS, present, strict=True))
        images = {slot: getattr(study.images, slot) for slot in IMAGE_SLOTS if used[slot]}
        assessed = used["frontal"] and used["prior_frontal"]
        calls, change_probs = {}, {}
        if assessed:
            for finding, row in zip(CHANGE_FINDINGS, change, strict=True):
                change_probs[finding] = {c.value: round(float(row[c.code]), 6) for c in Change}
                calls[finding] = Change.from_code(int(row.argmax())).value
        return Prediction(
            study_id=study.study_id,
            patient_id=study.patient_id,
            findings=findings,
            impression=impression,
            tube_line_probs=probs,
            tube_line_status=study_statuses(probs, self.thresholds),
            observation_probs=observation_probs,
            change=calls,
            change_probs=change_probs,
            prior_study_id=study.prior_study_id if assessed else None,
            images=images,
            model=self.model_name,
            seconds=seconds,
        )


def _refuse_ignored_settings(generation_config: GenerationConfig, model_dir: Path) -> None:
    """Raises a CxrError when a setting would be ignored: Hugging Face only logs a warning."""
    try:
        generation_config.validate(strict=True)
    except ValueError as error:
        raise CxrError(
            f"decoding settings (the options given, over {model_dir}/generation_config.json) "
            f"contradict each other: {error}"
        ) from error


def _select(batch: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """The rows of a collated batch where `rows` is true."""
    keep = rows.nonzero().flatten().tolist()
    selected: dict[str, Any] = {}
    for key, value in batch.items():
        selected[key] = value[rows] if isinstance(value, torch.Tensor) else [value[i] for i in keep]
    return selected
