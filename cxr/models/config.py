"""Configuration records of the report model, one small dataclass per part.

They hold plain types, str Enums and dicts only, so LightningCLI/jsonargparse builds them
from YAML and `ReportModel.save_pretrained` writes them to JSON. The defaults are a small CPU
model: a ResNet-10 at 128 px (16 tokens per image), attention pooling of the 3 x 16 image
tokens to 32 visual tokens, and a 4-layer, 256-wide GPT-2 trained from scratch (about 10M
parameters in all with a 1k-token vocabulary). `configs/model/tiny.yaml`, which `make demo`
trains, narrows the decoder to 2 layers 192 wide and the heads to 192 (about 7M).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cxr.types import TUBE_LINE_LABELS

# Enum members are named by their values: jsonargparse reads YAML `freeze: last_n` by name.


class FreezeMode(str, Enum):
    """Which image-encoder weights train."""

    train = "train"
    frozen = "frozen"
    last_n = "last_n"


class ConnectorKind(str, Enum):
    """How encoder tokens become decoder-width visual tokens."""

    linear = "linear"
    mlp = "mlp"
    attention_pool = "attention_pool"


class DecoderKind(str, Enum):
    """How the text decoder sees the image.

    `causal_lm` puts the visual tokens in the input sequence of a decoder-only language
    model; `cross_attention` is the VisionEncoderDecoder-style baseline whose decoder
    attends to them through cross-attention layers.
    """

    causal_lm = "causal_lm"
    cross_attention = "cross_attention"


class HeadPool(str, Enum):
    """How a label head pools one image's tokens into a vector."""

    mean = "mean"
    attention = "attention"


class ChangeHeadKind(str, Enum):
    """How the change head compares the current and prior frontal images (cxr.models.heads)."""

    compare = "compare"
    pooled = "pooled"


@dataclass
class EncoderConfig:
    """The image encoder shared by the frontal, lateral and prior-frontal slots.

    Attributes:
        name: timm model name, created with `pretrained=False, num_classes=0, in_chans=1`.
        weights: Local weights for the timm model: a .safetensors/.pth/.bin file or a folder
            in timm's Hugging Face layout (config.json + model.safetensors). 3-channel stems
            are adapted to one channel by timm.
        hf_path: Local folder of a Hugging Face vision model (e.g. RAD-DINO), loaded with
            `AutoModel.from_pretrained(..., local_files_only=True)` instead of timm; or of a
            Gemma3 (MedGemma) or Qwen2.5-VL (Lingshu) vision-language model, whose vision
            tower is the encoder (cxr.models.vlm).
        hf_model_type: Hugging Face model type built from `hf_arch` with random weights
            (what `save_pretrained` records for an `hf_path` encoder; for a vision-language
            model's tower, the model's type and config).
        hf_arch: Architecture fields for `hf_model_type`.
        vlm_projector: A Gemma3 tower's tokens pass the model's multimodal projector (pooled
            to `mm_tokens_per_image` tokens at the language model's width); false keeps
            SigLIP's patch tokens. Qwen2.5-VL's patch merger is part of its tower.
        timm_kwargs: Extra keyword arguments for `timm.create_model` (e.g. img_size).
        freeze: train, frozen, or last_n (only the last `trainable_blocks` blocks train).
        trainable_blocks: Number of final blocks that train when freeze is last_n.
        image_size: Side of the square input the model is built for (sizes the
            spatial position embedding of CNN feature maps; other sizes are interpolated).
        space_to_depth: Fold each k x k pixel block into k^2 channels before the backbone
            (`torch.nn.functional.pixel_unshuffle`), so a timm CNN built with k^2 input
            channels reads a 256 px image at the cost of a 128 px one (k = 2) without
            averaging a 2-pixel line away; 1 feeds the pixels as they are. timm models only.
        pixel_mean: Mean subtracted from [0, 1] pixels before the encoder; one value per
            channel for a vision-language model's tower, which reads the grey channel repeated
            to its three and takes these from its folder's image processor (`hf_path` set:
            the folder's values replace the ones given here).
        pixel_std: Standard deviation the centred pixels are divided by (as pixel_mean).
    """

    name: str = "resnet10t"
    weights: str | None = None
    hf_path: str | None = None
    hf_model_type: str | None = None
    hf_arch: dict[str, Any] = field(default_factory=dict)
    vlm_projector: bool = True
    timm_kwargs: dict[str, Any] = field(default_factory=dict)
    freeze: FreezeMode = FreezeMode.train
    trainable_blocks: int = 0
    image_size: int = 128
    space_to_depth: int = 1
    pixel_mean: float | list[float] = 0.5
    pixel_std: float | list[float] = 0.25


@dataclass
class ConnectorConfig:
    """Maps encoder tokens of all image slots to the decoder's width.

    Attributes:
        kind: linear, mlp (two layers with GELU) or attention_pool (`num_queries` learned
            queries attend to all image tokens).
        num_queries: Visual tokens produced by attention_pool.
        num_heads: Attention heads of attention_pool.
        dropout: Dropout on the visual tokens.
    """

    kind: ConnectorKind = ConnectorKind.attention_pool
    num_queries: int = 32
    num_heads: int = 4
    dropout: float = 0.0


@dataclass
class LoraSettings:
    """Low-rank adapters on the decoder (through peft); the decoder's own weights freeze.

    Attributes:
        r: Rank of the adapters.
        alpha: Scaling numerator (lora_alpha).
        dropout: Dropout on the adapter input.
        target_modules: Module names to adapt; None lets peft pick its default for the
            architecture, "all-linear" adapts every linear layer but the output head.
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


def _tiny_gpt2_arch() -> dict[str, Any]:
    return {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 1024}


@dataclass
class DecoderConfig:
    """The text decoder.

    Attributes:
        kind: causal_lm (visual tokens between prompt and report in the input sequence) or
            cross_attention (VisionEncoderDecoder-style baseline).
        path: Local folder of a pretrained Hugging Face causal LM, or of a Gemma3 (MedGemma)
            or Qwen2.5-VL (Lingshu) vision-language model, whose language model is the
            decoder (cxr.models.vlm); None builds one from `model_type` and `arch` with
            random weights.
        model_type: Hugging Face model type used when `path` is None (gpt2, llama, ...).
        arch: Architecture fields for `model_type` (vocabulary size and special token ids
            come from the tokenizer).
        lora: Low-rank adapters; None trains the whole decoder.
        attn_implementation: Hugging Face attention implementation (sdpa, eager, ...).
        dtype: Weight dtype of the decoder (e.g. bfloat16); None keeps float32.
        gradient_checkpointing: Recompute decoder activations in backward to save memory.
        constrained_decoding: Decode under cxr's sentence constraints (no sentence written
            twice, no empty list item; see cxr.models.decoding).
        grounded: The decoder reads the label heads' calls (observations, device statuses,
            changes) as tokens after the visual tokens, so the report states what the heads
            see (cxr.models.grounding); False leaves it the images and the prompt only.
    """

    kind: DecoderKind = DecoderKind.causal_lm
    path: str | None = None
    model_type: str = "gpt2"
    arch: dict[str, Any] = field(default_factory=_tiny_gpt2_arch)
    lora: LoraSettings | None = None
    attn_implementation: str | None = "sdpa"
    dtype: str | None = None
    gradient_checkpointing: bool = False
    constrained_decoding: bool = True
    grounded: bool = True


def _default_thresholds() -> list[float]:
    return [0.5] * len(TUBE_LINE_LABELS)


@dataclass
class HeadsConfig:
    """The tube/line, findings and change heads (cxr.models.heads).

    Attributes:
        hidden: Width of each head's hidden layer.
        dropout: Dropout before each head's output layer.
        pool: How the tube/line head pools an image's tokens (mean or attention with a
            learned query).
        num_heads: Attention heads of the findings and change heads' queries (must divide
            the encoder's feature width).
        change: compare (current tokens attend to the prior's, one query per finding) or
            pooled (each image pooled to one vector; the earlier design, for ablation).
        tube_line_thresholds: Probability at or above which each tube/line label counts as
            called, in TUBE_LINE_LABELS order (saved with the model for inference; the rule
            that uses them is cxr.tube_line). `cxr export --data` replaces them with the
            thresholds chosen on the validation split.
    """

    hidden: int = 256
    dropout: float = 0.1
    pool: HeadPool = HeadPool.attention
    num_heads: int = 4
    change: ChangeHeadKind = ChangeHeadKind.compare
    tube_line_thresholds: list[float] = field(default_factory=_default_thresholds)
