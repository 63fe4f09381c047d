"""cxr's own report model as a backend: report text and label heads from one pass."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from cxr.data.collate import ReportCollator
from cxr.data.dataset import ImageLoader, StudyDataset
from cxr.inference.backends.base import (
    BackendOptions,
    BatchOutput,
    StudyLabels,
    StudyOutput,
    image_errors,
)
from cxr.models import ReportModel
from cxr.types import IMAGE_SLOTS, Study

_FRONTAL = IMAGE_SLOTS.index("frontal")


class CxrModelBackend:
    """A folder written by `ReportModel.save_pretrained` (or `cxr export`)."""

    def __init__(self, model_dir: Path, options: BackendOptions) -> None:
        self.options = options
        self.device = torch.device(options.device)
        self.model = ReportModel.from_pretrained(model_dir).to(self.device).eval()
        self.generation_config = self.model.resolve_generation_config(options.generation_config)
        self.load_image = ImageLoader(self.model.encoder_config.image_size, options.cache_dir)
        self.collate = ReportCollator(self.model.tokenizer)
        self.tube_line_thresholds: np.ndarray | None = self.model.tube_line_thresholds.numpy()

    def batches(self, studies: Sequence[Study]) -> Iterator[BatchOutput]:
        loader = DataLoader(
            StudyDataset(list(studies), self.load_image),
            batch_size=self.options.batch_size,
            num_workers=self.options.num_workers,
            collate_fn=self.collate,
        )
        for batch in loader:
            errors = [
                record
                for study_id, present, reasons in zip(
                    batch["study_id"], batch["image_present"], batch["image_errors"], strict=True
                )
                for record in image_errors(study_id, reasons, bool(present[_FRONTAL]))
            ]
            usable = batch["image_present"][:, _FRONTAL]
            if bool(usable.any()):
                outputs, seconds = self.generate_batch(_select(batch, usable))
                yield BatchOutput(outputs, errors, seconds)
            else:
                yield BatchOutput([], errors)

    @torch.inference_mode()
    def generate_batch(self, batch: dict[str, Any]) -> tuple[list[StudyOutput], float]:
        """Outputs of one collated batch whose rows all have a frontal, and seconds per study."""
        started = time.perf_counter()
        tensors = {
            k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
        }
        torch.manual_seed(self.options.seed)
        # One pass of the encoder and the heads gives the labels and grounds the reports.
        texts, labels = self.model.predict(tensors, self.generation_config)
        per_study = (time.perf_counter() - started) / len(texts)
        present = batch["image_present"].tolist()
        outputs = [
            StudyOutput(
                study_id,
                text,
                dict(zip(IMAGE_SLOTS, present[i], strict=True)),
                StudyLabels(
                    labels.tube_line[i].cpu().numpy(),
                    labels.observations[i].cpu().numpy(),
                    labels.change[i].cpu().numpy(),
                ),
            )
            for i, (study_id, text) in enumerate(zip(batch["study_id"], texts, strict=True))
        ]
        return outputs, per_study


def _select(batch: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """The rows of a collated batch where `rows` is true."""
    keep = rows.nonzero().flatten().tolist()
    selected: dict[str, Any] = {}
    for key, value in batch.items():
        selected[key] = value[rows] if isinstance(value, torch.Tensor) else [value[i] for i in keep]
    return selected
