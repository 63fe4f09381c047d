"""The model is built from YAML-like dicts by jsonargparse (as LightningCLI does) and from saved JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from jsonargparse import ArgumentParser
from tiny_models import make_batch
from transformers import PreTrainedTokenizerBase

from cxr.models import ConnectorKind, DecoderKind, FreezeMode, ReportModel

MODEL_CONFIG: dict[str, Any] = {
    "class_path": "cxr.models.ReportModel",
    "init_args": {
        "encoder": {
            "name": "test_resnet",
            "image_size": 64,
            "freeze": "last_n",
            "trainable_blocks": 1,
        },
        "connector": {"kind": "attention_pool", "num_queries": 8, "num_heads": 2},
        "decoder": {
            "kind": "cross_attention",
            "arch": {"n_layer": 2, "n_embd": 64, "n_head": 2},
            "lora": {"r": 4, "alpha": 8},
        },
        "heads": {"hidden": 32, "pool": "mean"},
    },
}


def parser() -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=torch.nn.Module)
    return parser


def test_jsonargparse_builds_the_model_with_the_tokenizer_injected(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    config = parser().parse_object({"model": MODEL_CONFIG})
    config.model.init_args.tokenizer = tokenizer

    model = parser().instantiate(config).model
    output = model(make_batch(tokenizer))

    assert isinstance(model, ReportModel)
    assert model.encoder_config.freeze is FreezeMode.last_n
    assert model.connector_config.kind is ConnectorKind.attention_pool
    assert model.decoder_config.kind is DecoderKind.cross_attention
    assert model.decoder_config.lora is not None and model.decoder_config.lora.r == 4
    assert output.tube_line_logits.shape == (4, 11)


@pytest.mark.parametrize(
    ("part", "field", "value"),
    [
        ("encoder", "freeze", "half"),
        ("encoder", "nmae", "resnet18"),
        ("connector", "kind", "transformer"),
    ],
)
def test_a_wrong_key_or_value_is_an_error_naming_it(part: str, field: str, value: str) -> None:
    init_args = {
        **MODEL_CONFIG["init_args"],
        part: {**MODEL_CONFIG["init_args"][part], field: value},
    }

    with pytest.raises(Exception, match=field):
        parser().parse_object({"model": {**MODEL_CONFIG, "init_args": init_args}})


def test_saved_config_is_plain_json_that_rebuilds_the_configs(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    config = parser().parse_object({"model": MODEL_CONFIG})
    config.model.init_args.tokenizer = tokenizer
    model = parser().instantiate(config).model
    model.save_pretrained(tmp_path)

    saved = json.loads((tmp_path / "config.json").read_text())
    loaded = ReportModel.from_pretrained(tmp_path)

    assert saved["encoder"]["freeze"] == "last_n"
    assert saved["decoder"]["model_type"] == "gpt2"
    assert saved["decoder"]["arch"]["add_cross_attention"] is True
    assert saved["heads"]["tube_line_thresholds"] == [0.5] * 11
    assert loaded.encoder_config == model.encoder_config
    assert loaded.connector_config == model.connector_config
    assert loaded.heads_config == model.heads_config
    assert loaded.decoder_config.lora == model.decoder_config.lora
