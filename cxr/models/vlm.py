"""A Hugging Face vision-language model folder as cxr's image encoder and text decoder.

Two families are fine-tuned inside a `ReportModel`: Gemma3 (MedGemma) and Qwen2.5-VL
(Lingshu). A folder is one of them when its config.json has a vision and a text sub-config
and its `model_type` is `gemma3` or `qwen2_5_vl`.

- The vision tower becomes the backbone of `cxr.models.encoders.ImageEncoder`: it reads cxr's
  one grey channel repeated to the tower's three, normalised per channel with the mean and std
  of the folder's own image processor (`image_normalisation`, the one place they are read),
  and gives tokens [N, T, C]. Gemma3's SigLIP tower sees its native square size (its position
  embeddings and the projector's pooling are fixed for it) and, with `vlm_projector`, its
  multimodal projector pools the patch tokens to `mm_tokens_per_image` tokens at the language
  model's width. Qwen2.5-VL's `visual` takes the image resized to a multiple of its patch x
  merge size, flattened into patches in its image processor's layout with a grid_thw, and gives
  the merged tokens at the language model's width.
- The language model becomes a standard causal LM that cxr's decoders drive with
  `inputs_embeds`: Gemma3's text model and head are moved into a `Gemma3ForCausalLM`;
  Qwen2.5-VL's are loaded into a `Qwen2ForCausalLM`, the same layers, since its multimodal
  RoPE gives every text position the same index on its three axes and is then Qwen2's RoPE.
  The exported model records that causal LM's own type and config, so it rebuilds without the
  folder.

Loading reads the whole vision-language model once per part, through the family's own class
(which knows every layout its checkpoints were saved in), in the checkpoint's dtype for the tower
and the decoder's dtype for the language model, and keeps only that part: building a model from
MedGemma 4B or Lingshu 7B holds the whole model in bfloat16 (about 9 or 17 GB) for a moment,
twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from cxr.errors import CxrError, InputError

if TYPE_CHECKING:
    from transformers import Qwen2Config

log = logging.getLogger(__name__)

GEMMA3 = "gemma3"
QWEN2_5_VL = "qwen2_5_vl"
FINE_TUNED_FAMILIES = (GEMMA3, QWEN2_5_VL)
# The model type of the causal LM each family's language model becomes.
LANGUAGE_MODEL_TYPES = {GEMMA3: "gemma3_text", QWEN2_5_VL: "qwen2"}
# The channels of every supported tower's input.
TOWER_CHANNELS = 3


def is_vlm_config(hf_config: Any) -> bool:
    """Whether a Hugging Face config is a vision-language model's (vision + text sub-configs)."""
    return hasattr(hf_config, "vision_config") and hasattr(hf_config, "text_config")


def is_vlm_model_type(model_type: str | None) -> bool:
    """Whether `model_type` is a vision-language family cxr fine-tunes."""
    return model_type in FINE_TUNED_FAMILIES


def language_model_type(model_type: str | None) -> str | None:
    """The model type of the decoder a folder of `model_type` gives: the causal LM its
    language model becomes for a fine-tuned vision-language family, else `model_type`."""
    return LANGUAGE_MODEL_TYPES.get(model_type or "", model_type)


def read_vlm_config(path: Path) -> PretrainedConfig | None:
    """The config of the folder's vision-language model, None when the folder holds another kind
    of model; an unsupported vision-language family is an InputError."""
    try:
        hf_config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read the model's config.json: {error}") from error
    if not is_vlm_config(hf_config):
        return None
    if not is_vlm_model_type(hf_config.model_type):
        raise InputError(
            path,
            f"a {hf_config.model_type} vision-language model; cxr fine-tunes "
            f"{' and '.join(FINE_TUNED_FAMILIES)} models (other families generate through "
            "`cxr generate --model`)",
        )
    return hf_config


def image_normalisation(path: Path) -> tuple[list[float], list[float]]:
    """Per-channel image mean and std of the folder's image processor (preprocessor config)."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError(
            path,
            f"cannot read the image processor (preprocessor_config.json), which gives the "
            f"tower's image mean and std: {error}",
        ) from error
    return _per_channel(processor.image_mean, path), _per_channel(processor.image_std, path)


def _per_channel(value: Any, path: Path) -> list[float]:
    values = [float(value)] * TOWER_CHANNELS if isinstance(value, (int, float)) else value
    if values is None or len(values) != TOWER_CHANNELS:
        raise InputError(path, f"image processor mean/std {value!r}: expected 3 values")
    return [float(v) for v in values]


# ------------------------------------------------------------------------------ vision towers


class VisionTower(nn.Module):
    """A vision-language model's tower: normalised pixels [N, 3, H, W] -> tokens [N, T, C].

    Attributes:
        config: The vision-language model's config (what `save_pretrained` records).
    """

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        self.config = config


class Gemma3Tower(VisionTower):
    """Gemma3's SigLIP tower at its native size, optionally with its multimodal projector."""

    def __init__(
        self, config: PretrainedConfig, vision_tower: nn.Module, projector: nn.Module | None
    ) -> None:
        super().__init__(config)
        _drop_pooling_head(vision_tower, config)
        self.vision_tower = vision_tower
        self.multi_modal_projector = projector
        self.image_size = int(config.vision_config.image_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = _resized(pixels, self.image_size)
        tokens = self.vision_tower(pixel_values=pixels).last_hidden_state
        if self.multi_modal_projector is None:
            return tokens
        return self.multi_modal_projector(tokens)


def _drop_pooling_head(vision_tower: nn.Module, config: PretrainedConfig) -> None:
    """Removes SigLIP's pooling head, which Gemma3 never reads (its weights would train without
    a gradient); the recorded config says so, so that a rebuilt tower has none either."""
    vision_model = getattr(vision_tower, "vision_model", vision_tower)
    if getattr(vision_model, "use_head", False):
        vision_model.use_head = False
        del vision_model.head
    config.vision_config.vision_use_head = False


class Qwen2_5_VLTower(VisionTower):
    """Qwen2.5-VL's `visual` (with its patch merger) on square images of `side` pixels."""

    def __init__(self, config: PretrainedConfig, visual: nn.Module, image_size: int) -> None:
        super().__init__(config)
        self.visual = visual
        vision = config.vision_config
        self.patch_size = int(vision.patch_size)
        self.merge_size = int(vision.spatial_merge_size)
        self.temporal_patch_size = int(vision.temporal_patch_size)
        unit = self.patch_size * self.merge_size
        # The image processor resizes each side to a multiple of patch x merge size.
        self.side = max(unit, round(image_size / unit) * unit)

    def patches(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flattened patches [N * gh * gw, C * t * p * p] and grid_thw [N, 3] of pixels
        [N, C, H, W], laid out as Qwen2-VL's image processor lays them out: each image is one
        frame repeated over the temporal patch; patches run over merge blocks row by row, then
        row by row inside a block; each patch is flattened channel, time, row, column."""
        count, channels, height, width = pixels.shape
        p, m, t = self.patch_size, self.merge_size, self.temporal_patch_size
        grid_h, grid_w = height // p, width // p
        frames = pixels.unsqueeze(1).expand(count, t, channels, height, width)
        blocks = frames.reshape(count, t, channels, grid_h // m, m, p, grid_w // m, m, p)
        blocks = blocks.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        patches = blocks.reshape(count * grid_h * grid_w, channels * t * p * p)
        grid = torch.tensor([[1, grid_h, grid_w]] * count, device=pixels.device)
        return patches, grid

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = _resized(pixels, self.side)
        patches, grid = self.patches(pixels)
        merged = self.visual(patches, grid_thw=grid).pooler_output
        return merged.reshape(pixels.shape[0], -1, merged.shape[-1])


def _resized(pixels: torch.Tensor, side: int) -> torch.Tensor:
    if pixels.shape[-2:] == (side, side):
        return pixels
    return F.interpolate(
        pixels, size=(side, side), mode="bilinear", align_corners=False, antialias=True
    )


def load_vision_tower(
    path: Path, hf_config: PretrainedConfig, projector: bool, image_size: int
) -> VisionTower:
    """The tower of the folder's model with its pretrained weights, in float32."""
    # Read in the checkpoint's dtype (bfloat16 for MedGemma and Lingshu): the language model,
    # read too and dropped, would take twice the memory in float32.
    model = _load_vlm(path, hf_config, {"dtype": "auto"})
    if hf_config.model_type == GEMMA3:
        parts = model.model
        tower: VisionTower = Gemma3Tower(
            hf_config, parts.vision_tower, parts.multi_modal_projector if projector else None
        )
    else:
        _check_projector(projector, hf_config.model_type)
        tower = Qwen2_5_VLTower(hf_config, model.model.visual, image_size)
    del model
    log.info("encoder: the vision tower of %s (%s)", path, hf_config.model_type)
    return tower.float()


def build_vision_tower(
    model_type: str, arch: dict[str, Any], projector: bool, image_size: int
) -> VisionTower:
    """A tower of `model_type` with random weights from the recorded config fields `arch`."""
    from transformers import AutoModel

    hf_config: Any = AutoConfig.for_model(model_type, **arch)
    if model_type == GEMMA3:
        from transformers.models.gemma3.modeling_gemma3 import Gemma3MultiModalProjector

        hf_config.vision_config.vision_use_head = False
        return Gemma3Tower(
            hf_config,
            AutoModel.from_config(hf_config.vision_config),
            Gemma3MultiModalProjector(hf_config) if projector else None,
        )
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
        Qwen2_5_VisionTransformerPretrainedModel,
    )

    _check_projector(projector, model_type)
    visual = Qwen2_5_VisionTransformerPretrainedModel._from_config(hf_config.vision_config)
    return Qwen2_5_VLTower(hf_config, visual, image_size)


def _check_projector(projector: bool, model_type: str) -> None:
    if not projector:
        raise CxrError(
            f"encoder.vlm_projector: false applies to gemma3 only; {model_type}'s patch "
            "merger is part of its tower"
        )


# ---------------------------------------------------------------------------- language models


def load_language_model(
    path: Path, hf_config: PretrainedConfig, kwargs: dict[str, Any]
) -> PreTrainedModel:
    """The folder's language model and head as a standard causal LM (see the module docstring).

    Args:
        path: The vision-language model folder.
        hf_config: Its config (`read_vlm_config`).
        kwargs: `from_pretrained` options (attn_implementation, dtype).
    """
    model = _load_vlm(path, hf_config, kwargs)
    if hf_config.model_type == GEMMA3:
        language_model = _gemma3_causal_lm(model)
    else:
        language_model = _qwen2_causal_lm(model)
    del model
    log.info("decoder: the language model of %s (%s)", path, hf_config.model_type)
    return language_model


def _load_vlm(path: Path, hf_config: PretrainedConfig, kwargs: dict[str, Any]) -> PreTrainedModel:
    from transformers import Gemma3ForConditionalGeneration, Qwen2_5_VLForConditionalGeneration

    model_class = (
        Gemma3ForConditionalGeneration
        if hf_config.model_type == GEMMA3
        else Qwen2_5_VLForConditionalGeneration
    )
    try:
        return model_class.from_pretrained(path, config=hf_config, local_files_only=True, **kwargs)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot load a {hf_config.model_type} model: {error}") from error


def _gemma3_causal_lm(model: PreTrainedModel) -> PreTrainedModel:
    from transformers import Gemma3ForCausalLM

    text_model = model.model.language_model
    with torch.device("meta"):  # an empty shell: its two parts are replaced below
        causal_lm = Gemma3ForCausalLM(text_model.config)
    causal_lm.model = text_model
    causal_lm.lm_head = model.lm_head
    _check_materialised(causal_lm)
    return causal_lm


def qwen2_config(vlm_config: PretrainedConfig) -> Qwen2Config:
    """The Qwen2 config whose model computes what Qwen2.5-VL's language model computes on
    text: the same fields, and its RoPE without the multimodal sections."""
    from transformers import Qwen2Config

    text = vlm_config.text_config
    names = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "hidden_act",
        "max_position_embeddings",
        "initializer_range",
        "rms_norm_eps",
        "use_sliding_window",
        "sliding_window",
        "max_window_layers",
        "layer_types",
        "attention_dropout",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
    )
    rope = {k: v for k, v in dict(text.rope_parameters).items() if k != "mrope_section"}
    config = Qwen2Config(
        **{name: getattr(text, name) for name in names},
        rope_parameters=rope,
        tie_word_embeddings=bool(vlm_config.tie_word_embeddings),
    )
    config._attn_implementation = text._attn_implementation
    return config


def _qwen2_causal_lm(model: PreTrainedModel) -> PreTrainedModel:
    from transformers import Qwen2ForCausalLM
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    config = qwen2_config(model.config)
    with torch.device("meta"):  # an empty shell: its weights are the loaded model's
        causal_lm = Qwen2ForCausalLM(config)
    weights = {f"model.{k}": v for k, v in model.model.language_model.state_dict().items()}
    weights["lm_head.weight"] = model.lm_head.weight
    causal_lm.load_state_dict(weights, strict=True, assign=True)
    # Not in a state dict: the rotary frequencies are computed from the config.
    causal_lm.model.rotary_emb = Qwen2RotaryEmbedding(config=config)
    if config.tie_word_embeddings:
        causal_lm.lm_head.weight = causal_lm.model.embed_tokens.weight
    _check_materialised(causal_lm)
    return causal_lm


def _check_materialised(model: nn.Module) -> None:
    empty = [
        name
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]
        if tensor.is_meta
    ]
    if empty:
        raise RuntimeError(f"tensors left without values after moving the language model: {empty}")
