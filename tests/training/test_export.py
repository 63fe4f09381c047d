"""`cxr export`: the model folder, with tube/line thresholds chosen on the validation split."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import yaml
from models.tiny_models import phantom_model

from cxr.data.commands import build_data_module
from cxr.models import ReportModel
from cxr.training.export import THRESHOLDS_RECORD, export, select_thresholds
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
