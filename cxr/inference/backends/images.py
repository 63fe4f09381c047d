"""A study's images as the processors of vision-language models take them: 8-bit RGB pictures.

Pixels come from `cxr.io.read_image` only (float32 in [0, 1], bright = dense, DICOM quirks
handled there), so a radiograph looks as it is read: bone and devices white. The processor of
each model resizes and normalises the picture itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from cxr.errors import UnreadableImage
from cxr.io import XrayImage, read_image
from cxr.types import Study

log = logging.getLogger(__name__)


def to_picture(image: XrayImage) -> Image.Image:
    """8-bit RGB of a read image, grey levels spread over 0-255 as read (bright = dense)."""
    levels = np.rint(np.clip(image.pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(levels).convert("RGB")


@dataclass
class StudyPictures:
    """One study with the pictures of the image slots that could be read, and why others not."""

    study: Study
    pictures: dict[str, Image.Image] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def slots(self) -> list[str]:
        """The slots given to the model, in the order the prompt shows them."""
        return list(self.pictures)


class PictureDataset(Dataset[StudyPictures]):
    """One item per study: the pictures of `slots` (those the model family takes), in order.

    A missing slot is left out; an unreadable one too, its reason kept in `errors`.
    """

    def __init__(self, studies: Sequence[Study], slots: Sequence[str]) -> None:
        self.studies = list(studies)
        self.slots = tuple(slots)

    def __len__(self) -> int:
        return len(self.studies)

    def __getitem__(self, index: int) -> StudyPictures:
        study = self.studies[index]
        item = StudyPictures(study)
        for slot in self.slots:
            path = getattr(study.images, slot)
            if not path:
                continue
            try:
                item.pictures[slot] = to_picture(read_image(path))
            except UnreadableImage as error:
                # The reason only: paths may hold patient ids; errors carries them to the caller.
                log.warning("study %s: %s image left out: %s", study.study_id, slot, error.reason)
                item.errors.append(f"{slot}: {error}")
        return item


def collate_pictures(items: list[StudyPictures]) -> list[StudyPictures]:
    """Batches stay lists: each model's processor pads and stacks them itself."""
    return items
