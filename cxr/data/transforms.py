"""Training augmentation for preprocessed chest X-ray tensors (1 x H x W, [0, 1], bright = dense).

Small geometric and contrast changes only: a chest X-ray is never flipped (left/right is
anatomy and device position is labelled by side), and large rotations do not occur in practice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as F


@dataclass
class Augment:
    """Random affine (rotation, translation, scale) and gamma contrast, drawn per image.

    Args:
        max_rotation: Largest rotation in degrees, either way.
        max_translation: Largest shift as a fraction of the image side.
        max_scale: Largest zoom in or out, as a fraction.
        max_gamma: Gamma is drawn in [1 / (1 + max_gamma), 1 + max_gamma].
    """

    max_rotation: float = 5.0
    max_translation: float = 0.04
    max_scale: float = 0.05
    max_gamma: float = 0.2

    def __call__(
        self, image: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        def uniform(bound: float) -> float:
            return float((torch.rand((), generator=generator) * 2 - 1) * bound)

        side = image.shape[-1]
        shifted = F.affine(
            image,
            angle=uniform(self.max_rotation),
            translate=[
                round(uniform(self.max_translation) * side),
                round(uniform(self.max_translation) * side),
            ],
            scale=1.0 + uniform(self.max_scale),
            shear=[0.0, 0.0],
            interpolation=F.InterpolationMode.BILINEAR,
            fill=0.0,
        )
        gamma = (1.0 + self.max_gamma) ** uniform(1.0)
        return shifted.clamp(0.0, 1.0).pow(gamma)
