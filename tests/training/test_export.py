"""`cxr export`: the model folder, with tube/line thresholds chosen on the validation split."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from models.tiny_models import phantom_model, tiny_model, train_tokenizer

from cxr.cli import command_parser
from cxr.data.commands import build_data_module
from cxr.errors import InputError
from cxr.evaluation.metric_keys import AUC_MACRO, BLEU_4, PerSubject
from cxr.models import ReportModel
from cxr.training.export import (
    CHECKPOINT_KEY,
    THRESHOLDS_RECORD,
    export,
    model_record,
    select_thresholds,
)
from cxr.training.model_card import NOT_A_MEDICAL_DEVICE
from cxr.training.module import ReportModule
from cxr.tube_line import THRESHOLD_CRITERION, choose_thresholds
from cxr.types import TUBE_LINE_DEVICES, TUBE_LINE_LABELS


def _data_yaml(folder: Path, phantom_folder: Path) -> Path:
    path = folder / "data.yaml"
    config = {
        "sources": [{"adapter": "phantom", "root": str(phantom_folder)}],
        "image_size": 64,
        "batch_size": 8,
        "num_workers": 0,
        "cache_dir": str(folder / "cache"),
        "tokenizer_vocab_size": 300,
        "val_fraction": 0.3,
        "max_report_tokens": 48,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _checkpoint(folder: Path, data: Path) -> Path:
    datamodule = build_data_module(data)
    model = phantom_model(datamodule)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=folder, save_last=True)],
    )
    trainer.fit(ReportModule(model), datamodule)
    return folder / "last.ckpt"


@pytest.mark.slow
def test_export_with_data_saves_the_thresholds_chosen_on_the_validation_split(
    phantom_folder: Path, tmp_path: Path
) -> None:
    data = _data_yaml(tmp_path, phantom_folder)
    checkpoint = _checkpoint(tmp_path / "ckpt", data)

    assert export(checkpoint, tmp_path / "model", data=data) == 0

    loaded = ReportModel.from_pretrained(tmp_path / "model")
    record = json.loads((tmp_path / "model" / THRESHOLDS_RECORD).read_text())
    # The same selection, run again on the loaded model, gives the saved thresholds.
    again = select_thresholds(loaded, build_data_module(data))
    assert loaded.tube_line_thresholds.tolist() == pytest.approx(again["thresholds"])
    assert record["thresholds"] == pytest.approx(again["thresholds"])
    assert record["criterion"] == THRESHOLD_CRITERION and record["studies"] > 0
    assert set(record["per_device"]) == set(TUBE_LINE_DEVICES)
    for device, chosen in record["per_device"].items():
        # 0.5 is among the thresholds tried, so the chosen one does at least as well on val.
        assert chosen["status_accuracy"] >= chosen["status_accuracy_at_default"], device
        assert all(
            record["thresholds"][i] == chosen["threshold"] for i in TUBE_LINE_DEVICES[device]
        )

    card = (tmp_path / "model" / "README.md").read_text()
    assert "| `learning_rate` |" in card and "tube_line_thresholds.json" in card

    export(checkpoint, tmp_path / "plain")
    assert (
        ReportModel.from_pretrained(tmp_path / "plain").tube_line_thresholds.tolist() == [0.5] * 11
    )
    assert not (tmp_path / "plain" / THRESHOLDS_RECORD).exists()


def test_thresholds_keep_the_default_where_a_device_has_one_reference_status() -> None:
    probabilities = np.random.default_rng(0).random((5, len(TUBE_LINE_LABELS)))
    labels = np.zeros((5, len(TUBE_LINE_LABELS)))
    labels[:, 0] = np.nan  # ETT not assessed anywhere; the others absent everywhere
    assert choose_thresholds(probabilities, labels) == [0.5] * len(TUBE_LINE_LABELS)


def _tiny_checkpoint(path: Path) -> tuple[Path, ReportModel]:
    """A checkpoint as ReportModule writes it (model record, state dict, hyper-parameters),
    without training."""
    model = tiny_model(train_tokenizer()).eval()
    checkpoint = {
        CHECKPOINT_KEY: model_record(model),
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": {
            "learning_rate": 0.0003,
            "label_replacement": 0.5,
            "_instantiator": "lightning.pytorch.cli.instantiate_module",
        },
        "epoch": 3,
        "global_step": 120,
    }
    torch.save(checkpoint, path)
    return path, model


def _evaluation_folder(folder: Path) -> Path:
    folder.mkdir()
    metrics = {
        BLEU_4: {"value": 0.1234, "ci_low": 0.1, "ci_high": 0.15},
        AUC_MACRO: {"value": 0.75, "ci_low": 0.7, "ci_high": 0.8},
        PerSubject.TUBE_LINE_AUC.key("ETT - Normal"): {"value": 0.9, "ci_low": 0.8, "ci_high": 1.0},
        "GREEN": {
            "value": None,
            "ci_low": None,
            "ci_high": None,
            "unavailable": "unavailable: no GREEN weights",
        },
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "run_info.json").write_text(json.dumps({"studies_evaluated": 42, "seed": 0}))
    return folder / "metrics.json"


def test_export_writes_a_model_card_from_config_checkpoint_and_metrics(tmp_path: Path) -> None:
    checkpoint, model = _tiny_checkpoint(tmp_path / "tiny.ckpt")
    metrics = _evaluation_folder(tmp_path / "evaluation")

    assert export(checkpoint, tmp_path / "model", metrics=metrics) == 0

    card = (tmp_path / "model" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: cxr\n")
    assert "## Intended use" in card and NOT_A_MEDICAL_DEVICE in card
    assert "not a medical device" in card.lower()
    # From the model config.
    assert "`test_resnet`, 64 px input" in card
    assert "num_hidden_layers=2, hidden_size=64, num_attention_heads=2" in card
    assert f"| parameters | {sum(p.numel() for p in model.parameters()):,} |" in card
    assert "greedy, at most 160 new tokens" in card
    # From the checkpoint.
    assert "| `learning_rate` | `0.0003` |" in card
    assert "_instantiator" not in card
    assert (
        "| optimizer steps | 120 |" in card and "| epoch (Lightning's count, from 0) | 3 |" in card
    )
    # Headline metrics only, as `cxr evaluate` formats them, and what was evaluated.
    assert "| BLEU-4 | 0.1234 [0.1000, 0.1500] |" in card
    assert "| AUC-macro | 0.7500 [0.7000, 0.8000] |" in card
    assert "| GREEN | unavailable: no GREEN weights |" in card
    assert "ETT - Normal" not in card
    assert "studies_evaluated: 42" in card


def test_export_without_metrics_says_the_model_was_not_evaluated(tmp_path: Path) -> None:
    checkpoint, _ = _tiny_checkpoint(tmp_path / "tiny.ckpt")

    export(checkpoint, tmp_path / "model")

    card = (tmp_path / "model" / "README.md").read_text()
    assert "Not evaluated at export" in card and NOT_A_MEDICAL_DEVICE in card


def test_export_refuses_a_metrics_file_that_is_not_cxr_evaluate_output(tmp_path: Path) -> None:
    checkpoint, _ = _tiny_checkpoint(tmp_path / "tiny.ckpt")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"BLEU-4": 0.12}))

    with pytest.raises(InputError, match=r"metrics\.json"):
        export(checkpoint, tmp_path / "model", metrics=metrics)
    assert not (tmp_path / "model").exists()


def test_export_command_has_a_metrics_option() -> None:
    options = command_parser("export").parse_args(
        ["x.ckpt", "--output", "m", "--metrics", "e/m.json"]
    )
    assert str(options.metrics) == "e/m.json"


def test_adapter_export_options_are_checked_before_the_checkpoint_is_read(tmp_path: Path) -> None:
    from cxr.errors import CxrError, InputError

    absent = tmp_path / "absent.ckpt"
    with pytest.raises(CxrError, match="--base_model is required"):
        export(absent, tmp_path / "m", adapter_only=True)
    with pytest.raises(InputError, match="not both"):
        export(absent, tmp_path / "m", adapter_only=True, merge_lora=True, base_model=tmp_path)
