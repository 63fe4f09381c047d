"""Tiny report models and batches for the tests (64 px images, 1- or 2-layer decoders).

The one place tests build a tiny `ReportModel`: the model tests import this module as
`tiny_models` (its folder is on sys.path), tests elsewhere as `models.tiny_models`.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from cxr.data.datamodule import ReportDataModule
from cxr.data.tokenizer import train_report_tokenizer
from cxr.models import (
    ConnectorConfig,
    ConnectorKind,
    DecoderConfig,
    DecoderKind,
    EncoderConfig,
    HeadsConfig,
    ReportModel,
)
from cxr.training.losses import change_loss, observation_loss, tube_line_loss
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, TUBE_LINE_LABELS

REPORTS = [
    "Endotracheal tube tip 4 cm above the carina.",
    "Nasogastric tube tip in the stomach.",
    "Right internal jugular central venous catheter tip in the SVC.",
    "No pneumothorax. Small left pleural effusion.",
    "Heart size is normal. Lungs are clear.",
    "Worsening right lower lobe consolidation.",
    "Improving pulmonary edema. Stable cardiomegaly.",
]

PROMPTS = ["<s>", "<s>Indication: line placement.", "<s>", "<s>Comparison: prior. No pneumothorax."]
BATCH_REPORTS = [
    "Lungs are clear.</s>",
    "Endotracheal tube tip 4 cm above the carina.</s>",
    "",
    "Small left pleural effusion.</s>",
]
# frontal, lateral, prior_frontal per study: every slot is missing somewhere.
PRESENT = [[1, 1, 1], [1, 0, 0], [1, 0, 1], [0, 1, 1]]

IMAGE_SIZE = 64


def tiny_decoder(
    kind: DecoderKind = DecoderKind.causal_lm,
    *,
    layers: int = 2,
    positions: int = 256,
    **overrides: object,
) -> DecoderConfig:
    """A GPT-2 decoder 64 wide, built from config; `positions` bounds prompt + visual + report."""
    arch = {"n_layer": layers, "n_embd": 64, "n_head": 2, "n_positions": positions}
    return DecoderConfig(kind=kind, arch=arch, **overrides)  # type: ignore[arg-type]


def tiny_encoder(**overrides: object) -> EncoderConfig:
    # zero_init_last=False: timm zero-inits residual branches, which would hide real gradients.
    kwargs = {
        "name": "test_resnet",
        "image_size": IMAGE_SIZE,
        "timm_kwargs": {"zero_init_last": False},
    }
    return EncoderConfig(**{**kwargs, **overrides})  # type: ignore[arg-type]


def tiny_model(
    tokenizer: PreTrainedTokenizerBase,
    decoder: DecoderConfig | None = None,
    connector: ConnectorKind = ConnectorKind.mlp,
    encoder: EncoderConfig | None = None,
) -> ReportModel:
    """A tiny report model with seeded initial weights (8 visual tokens, 32-wide heads)."""
    torch.manual_seed(0)
    return ReportModel(
        encoder=encoder or tiny_encoder(),
        connector=ConnectorConfig(kind=connector, num_queries=8, num_heads=2),
        decoder=decoder or tiny_decoder(),
        heads=HeadsConfig(hidden=32),
        tokenizer=tokenizer,
    )


def phantom_model(datamodule: ReportDataModule) -> ReportModel:
    """The tiny model sized for phantom batches (512 positions hold a prior report), with the
    tokenizer of the data module."""
    return tiny_model(
        datamodule.tokenizer,
        tiny_decoder(layers=1, positions=512),
        ConnectorKind.attention_pool,
        tiny_encoder(name="resnet10t"),
    )


def make_batch(
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str] = PROMPTS,
    reports: list[str] = BATCH_REPORTS,
    present: list[list[int]] = PRESENT,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A collated batch as the data module makes it (prompt left-, report right-padded)."""
    generator = torch.Generator().manual_seed(seed)
    size = len(prompts)
    tokenizer.padding_side = "left"
    prompt = tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    tokenizer.padding_side = "right"
    report = tokenizer(reports, padding=True, return_tensors="pt", add_special_tokens=False)
    image_present = torch.tensor(present, dtype=torch.bool)
    images = torch.rand(size, 3, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    tube_line = torch.randint(0, 2, (size, len(TUBE_LINE_LABELS)), generator=generator).float()
    change = torch.randint(0, 3, (size, len(CHANGE_FINDINGS)), generator=generator)
    observations = torch.randint(0, 2, (size, len(OBSERVATIONS)), generator=generator).float()
    observations[0, :3] = float("nan")
    return {
        "images": images * image_present[:, :, None, None, None],
        "image_present": image_present,
        "prompt_ids": prompt.input_ids,
        "prompt_mask": prompt.attention_mask,
        "report_ids": report.input_ids,
        "report_mask": report.attention_mask,
        "tube_line": tube_line,
        "change": change,
        "observations": observations,
    }


def total_loss(model: ReportModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The unweighted sum of the report, tube/line, findings and change losses."""
    output = model(batch)
    return (
        output.lm_loss
        + tube_line_loss(output.tube_line_logits, batch["tube_line"])
        + observation_loss(output.observation_logits, batch["observations"])
        + change_loss(output.change_logits, batch["change"], output.change_available)
    )


def select(batch: dict[str, torch.Tensor], rows: list[int]) -> dict[str, torch.Tensor]:
    return {key: value[rows] for key, value in batch.items()}


def train_tokenizer() -> PreTrainedTokenizerBase:
    return train_report_tokenizer(REPORTS * 5, vocab_size=320, min_frequency=2)
