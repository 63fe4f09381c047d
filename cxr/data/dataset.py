"""A torch Dataset over `Study` records: images per slot, prompt and report text, labels.

Labels keep their unknowns: `tube_line` float32 [11] and `observations` float32 [14] are NaN
where unknown, `change` int64 [5] is -1 (CHANGE_UNKNOWN); the losses mask them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cxr.data.reports import build_prompt, join_report
from cxr.errors import UnreadableImage
from cxr.io import ImageCache, preprocess, read_image
from cxr.types import IMAGE_SLOTS, Prompt, Study

log = logging.getLogger(__name__)


@dataclass
class ImageLoader:
    """Loads a preprocessed square image, through the on-disk cache when one is given."""

    image_size: int
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        self._cache = ImageCache(self.cache_dir, self.image_size) if self.cache_dir else None

    def __call__(self, path: str) -> np.ndarray:
        if self._cache is not None:
            return self._cache.get(path)
        return preprocess(read_image(path), self.image_size)


class StudyDataset(Dataset[dict[str, Any]]):
    """One item per study; a missing or unreadable image leaves its slot empty (masked)."""

    def __init__(self, studies: Sequence[Study], load_image: ImageLoader) -> None:
        self.studies = list(studies)
        self.load_image = load_image

    def __len__(self) -> int:
        return len(self.studies)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.item(index)

    def item(
        self,
        index: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        prompt_transform: Callable[[Prompt], Prompt] | None = None,
    ) -> dict[str, Any]:
        """The study at `index`, with `transform` applied to each present image and
        `prompt_transform` to its prompt."""
        study = self.studies[index]
        prompt = prompt_transform(study.prompt) if prompt_transform else study.prompt
        size = self.load_image.image_size
        images = torch.zeros(len(IMAGE_SLOTS), 1, size, size)
        present = torch.zeros(len(IMAGE_SLOTS), dtype=torch.bool)
        errors: list[str] = []
        for slot, name in enumerate(IMAGE_SLOTS):
            path = getattr(study.images, name)
            if not path:
                continue
            try:
                pixels = torch.from_numpy(self.load_image(path)).unsqueeze(0)
            except UnreadableImage as error:
                # The reason only: paths may hold patient ids; errors carries them to the caller.
                log.warning("study %s: %s image left out: %s", study.study_id, name, error.reason)
                errors.append(f"{name}: {error}")
                continue
            images[slot] = transform(pixels) if transform else pixels
            present[slot] = True
        return {
            "study_id": study.study_id,
            "images": images,
            "image_present": present,
            "image_errors": errors,
            "prompt": build_prompt(prompt),
            "report": join_report(study.targets.findings, study.targets.impression),
            "tube_line": torch.from_numpy(study.targets.tube_line.astype(np.float32)),
            "change": torch.from_numpy(study.targets.change.astype(np.int64)),
            "observations": torch.from_numpy(study.targets.observations.astype(np.float32)),
        }
