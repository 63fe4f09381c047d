"""The image encoder: any timm model (or a local Hugging Face vision model) as patch tokens.

One encoder is shared by every image slot. It normalises [0, 1] single-channel pixels,
runs the backbone's `forward_features` and returns one token per patch (CNN feature maps
are flattened row by row and get a learned spatial position embedding, since, unlike ViT
tokens, they carry no absolute position). Single-channel input is handled once, at build
time: timm creates the stem with `in_chans=1` and adapts 3-channel weights when loading;
a Hugging Face model's first 3-channel convolution is summed over its input channels. With
`space_to_depth: k` the normalised pixels are folded into k^2 channels first (timm creates
the stem with `in_chans=k^2`), so fine lines reach the stem unblurred at a k-times smaller
side. The vision tower of a Gemma3 or Qwen2.5-VL vision-language model folder (cxr.models.vlm)
reads the grey channel repeated to its three, each normalised with the folder's own image mean
and std.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.models import group_parameters
from torch import nn

from cxr.errors import CxrError, InputError
from cxr.models import vlm
from cxr.models.config import EncoderConfig, FreezeMode

log = logging.getLogger(__name__)

# timm parameter groups made only of these (final norm, pooling head) always train with last_n.
_TIMM_TAIL_GROUP = re.compile(r"^(norm|fc_norm|head|final_conv|conv_head|bn2)\b")


class ImageEncoder(nn.Module):
    """Turns images [N, 1, H, W] in [0, 1] into tokens [N, T, C]."""

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.backbone, self.is_hf, config = _build_backbone(config)
        self.config = config
        self.hf_config: Any = getattr(self.backbone, "config", None) if self.is_hf else None
        channels = vlm.TOWER_CHANNELS if isinstance(self.backbone, vlm.VisionTower) else 1
        # Not saved: the config holds them (and the state dicts of older models lack them).
        self.register_buffer("pixel_mean", _per_channel(config.pixel_mean, channels), False)
        self.register_buffer("pixel_std", _per_channel(config.pixel_std, channels), False)
        _apply_freeze(self.backbone, config, self.is_hf)
        feature_map = self._probe(config.image_size)
        self.feature_dim = int(
            feature_map.shape[1] if feature_map.ndim == 4 else feature_map.shape[-1]
        )
        self.spatial_position: nn.Parameter | None = None
        if feature_map.ndim == 4:
            grid = feature_map.shape[-2:]
            self.spatial_position = nn.Parameter(torch.zeros(1, self.feature_dim, *grid))
            nn.init.trunc_normal_(self.spatial_position, std=0.02)
        self.num_tokens = self._count_tokens(feature_map)

    @staticmethod
    def _count_tokens(feature_map: torch.Tensor) -> int:
        if feature_map.ndim == 4:
            return int(feature_map.shape[-2] * feature_map.shape[-1])
        return int(feature_map.shape[1])

    @torch.no_grad()
    def _probe(self, image_size: int) -> torch.Tensor:
        was_training = self.backbone.training
        self.backbone.eval()
        feature_map = self._features(self._normalised(torch.zeros(1, 1, image_size, image_size)))
        self.backbone.train(was_training)
        return feature_map

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        if isinstance(self.backbone, vlm.VisionTower):
            return self.backbone(pixels)
        if self.is_hf:
            return self.backbone(pixel_values=pixels).last_hidden_state
        if self.config.space_to_depth > 1:
            pixels = F.pixel_unshuffle(pixels, self.config.space_to_depth)
        return self.backbone.forward_features(pixels)  # type: ignore[operator]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Tokens [N, T, C] of images [N, 1, H, W] with pixels in [0, 1], bright = dense."""
        features = self._features(self._normalised(images))
        if features.ndim == 3:
            return features
        if self.spatial_position is not None:
            position: torch.Tensor = self.spatial_position
            if position.shape[-2:] != features.shape[-2:]:
                position = F.interpolate(position, size=features.shape[-2:], mode="bilinear")
            features = features + position.to(features.dtype)
        return features.flatten(2).transpose(1, 2)

    def _normalised(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, 1, H, W] repeated to the backbone's channels and normalised per channel."""
        pixels = images.expand(-1, self.pixel_mean.shape[1], -1, -1)
        return (pixels - self.pixel_mean.to(pixels.dtype)) / self.pixel_std.to(pixels.dtype)

    def train(self, mode: bool = True) -> ImageEncoder:
        """Keeps a fully frozen backbone in eval mode (batch-norm statistics stay as loaded)."""
        super().train(mode)
        if self.config.freeze == FreezeMode.frozen:
            self.backbone.eval()
        return self


def _per_channel(value: float | list[float], channels: int) -> torch.Tensor:
    """A normalisation constant as a [1, channels, 1, 1] tensor."""
    values = [float(value)] * channels if isinstance(value, (int, float)) else value
    if len(values) != channels:
        raise CxrError(f"encoder.pixel_mean/pixel_std {value!r}: expected {channels} value(s)")
    return torch.tensor(values, dtype=torch.float32).view(1, channels, 1, 1)


def _build_backbone(config: EncoderConfig) -> tuple[nn.Module, bool, EncoderConfig]:
    """The backbone, whether it is a Hugging Face model, and the config as built (a
    vision-language model folder's own normalisation replaces the configured one)."""
    if config.space_to_depth != 1 and (config.hf_path or config.hf_model_type):
        raise CxrError("encoder.space_to_depth applies to timm encoders only (not hf_path)")
    if config.hf_path is not None:
        path = Path(config.hf_path)
        vlm_config = vlm.read_vlm_config(path) if path.is_dir() else None
        if vlm_config is None:
            return _load_hf_vision_model(path), True, config
        mean, std = vlm.image_normalisation(path)
        tower = vlm.load_vision_tower(path, vlm_config, config.vlm_projector, config.image_size)
        return tower, True, replace(config, pixel_mean=mean, pixel_std=std)
    if vlm.is_vlm_model_type(config.hf_model_type):
        tower = vlm.build_vision_tower(
            str(config.hf_model_type), config.hf_arch, config.vlm_projector, config.image_size
        )
        return tower, True, config
    if config.hf_model_type is not None:
        return _build_hf_vision_model(config.hf_model_type, config.hf_arch), True, config
    return _build_timm_model(config), False, config


def _build_timm_model(config: EncoderConfig) -> nn.Module:
    if config.space_to_depth < 1 or config.image_size % config.space_to_depth:
        raise CxrError(
            f"encoder.space_to_depth: {config.space_to_depth} must be >= 1 and divide "
            f"encoder.image_size ({config.image_size})"
        )
    channels = config.space_to_depth**2
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": channels, **config.timm_kwargs}
    if config.weights is None:
        return timm.create_model(config.name, pretrained=False, **kwargs)
    weights = Path(config.weights)
    if weights.is_dir():
        overlay = {"source": "local-dir", "file": str(weights)}
    elif weights.is_file():
        overlay = {"file": str(weights)}
    else:
        raise InputError(weights, "encoder weights not found (expected a file or a folder)")
    try:
        model = timm.create_model(
            config.name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs
        )
    except (RuntimeError, KeyError, ValueError, OSError) as error:
        raise InputError(
            weights, f"cannot load weights into timm model {config.name!r}: {error}"
        ) from error
    log.info("encoder %s: weights loaded from %s", config.name, weights)
    return model


def _load_hf_vision_model(path: Path) -> nn.Module:
    from transformers import AutoModel

    if not path.is_dir():
        raise InputError(path, "hf_path must be a local folder holding a Hugging Face vision model")
    try:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot load a Hugging Face vision model: {error}") from error
    model = getattr(model, "vision_model", model)
    _adapt_hf_to_one_channel(model)
    return model


def _build_hf_vision_model(model_type: str, arch: dict[str, Any]) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    hf_config = AutoConfig.for_model(model_type, **{**arch, "num_channels": 1})
    model = AutoModel.from_config(hf_config)
    return getattr(model, "vision_model", model)


def _adapt_hf_to_one_channel(model: nn.Module) -> None:
    """Sums the first 3-channel convolution over its input channels (as timm does)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            with torch.no_grad():
                module.weight = nn.Parameter(module.weight.sum(dim=1, keepdim=True))
            module.in_channels = 1
            _set_num_channels(model)
            return


def _set_num_channels(model: nn.Module) -> None:
    """Hugging Face embeddings check `num_channels` against the input; it is now 1."""
    for module in model.modules():
        if getattr(module, "num_channels", None) == 3:
            setattr(module, "num_channels", 1)  # noqa: B010
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "num_channels"):
        config.num_channels = 1


def _apply_freeze(backbone: nn.Module, config: EncoderConfig, is_hf: bool) -> None:
    if config.freeze == FreezeMode.train:
        return
    backbone.requires_grad_(False)
    if config.freeze == FreezeMode.frozen:
        return
    names = (
        _hf_last_blocks(
            backbone, config.trainable_blocks, config.hf_path or str(config.hf_model_type)
        )
        if is_hf
        else _timm_last_blocks(backbone, config.trainable_blocks)
    )
    parameters = dict(backbone.named_parameters())
    for name in names:
        parameters[name].requires_grad_(True)
    log.info("encoder: %d of %d parameter tensors train", len(names), len(parameters))


def _timm_last_blocks(backbone: nn.Module, count: int) -> list[str]:
    """Parameter names of the last `count` timm blocks (stages for CNNs) and the final norm."""
    matcher = backbone.group_matcher(coarse=True)  # type: ignore[operator]
    groups = [names for _, names in sorted(group_parameters(backbone, matcher).items())]
    tail: list[str] = []
    while groups and all(_TIMM_TAIL_GROUP.match(name) for name in groups[-1]):
        tail += groups.pop()
    chosen = groups[-count:] if count > 0 else []
    return tail + [name for names in chosen for name in names]


def _hf_last_blocks(backbone: nn.Module, count: int, source: str) -> list[str]:
    """Parameter names of the last `count` layers of the longest layer list, and what follows it."""
    lists = [
        (name, module)
        for name, module in backbone.named_modules()
        if isinstance(module, nn.ModuleList)
    ]
    if not lists:
        raise InputError(source, "freeze last_n needs a model with a list of layers")
    list_name, layers = max(lists, key=lambda item: len(item[1]))
    first_trained = max(len(layers) - count, 0)
    names = list(dict(backbone.named_parameters()))
    prefixes = tuple(f"{list_name}.{index}." for index in range(first_trained, len(layers)))
    last_index = max(i for i, name in enumerate(names) if name.startswith(f"{list_name}."))
    return [name for i, name in enumerate(names) if name.startswith(prefixes) or i > last_index]
