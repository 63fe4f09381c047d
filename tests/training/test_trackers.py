"""Experiment trackers through the real `cxr fit`: what TensorBoard and MLflow hold afterwards,
the LightningCLI optimizer keys, and a checkpoint chosen on a clinical metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from cxr.data.splits import Split
from cxr.training.callbacks import TABLE_KEY, VAL_BLEU_4, VAL_CE_F1_MICRO
from cxr.training.cli import ReportCLI, build_lightning_cli

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEMO = CONFIGS / "experiment" / "demo.yaml"


def fit(phantom_folder: Path, tmp_path: Path, *extra: str) -> ReportCLI:
    """The demo experiment, one epoch of two training batches and two validation batches."""
    return build_lightning_cli(
        [
            "fit",
            "--config",
            str(DEMO),
            "--data.sources",
            f"[{{adapter: phantom, root: {phantom_folder}}}]",
            "--data.num_workers",
            "0",
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "2",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.num_sanity_val_steps",
            "0",
            "--trainer.enable_progress_bar",
            "false",
            *extra,
        ]
    )


def logger_of(name: str) -> dict[str, Any]:
    logger = yaml.safe_load((CONFIGS / "trainer" / f"logger_{name}.yaml").read_text())["logger"]
    assert isinstance(logger, dict)
    return logger


@pytest.mark.slow
def test_tensorboard_and_mlflow_hold_hparams_metrics_and_reports(
    phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    monkeypatch.chdir(tmp_path)  # the logger configs write under runs/train
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    loggers = yaml.safe_dump([logger_of("tensorboard"), logger_of("mlflow")])
    cli = fit(phantom_folder, tmp_path, "--trainer.logger", loggers)
    val_studies = {s.study_id for s in cli.datamodule.studies(Split.VAL)}
    shown = min(4, len(val_studies))

    (version,) = (tmp_path / "runs" / "train" / "tensorboard").iterdir()
    events = EventAccumulator(str(version), {"tensors": 0})
    events.Reload()
    assert {VAL_BLEU_4, VAL_CE_F1_MICRO} <= set(events.Tags()["scalars"])
    hparams_content = events.PluginTagToContent("hparams")
    start = next(
        HParamsPluginData.FromString(c).session_start_info
        for c in hparams_content.values()
        if HParamsPluginData.FromString(c).HasField("session_start_info")
    )
    learning_rate = cli.model.hparams["learning_rate"]
    assert start.hparams["learning_rate"].number_value == pytest.approx(learning_rate)
    assert start.hparams["model_config/format"].string_value
    assert start.hparams["model_config/encoder/name"].string_value
    table = events.Tensors(f"{TABLE_KEY}/text_summary")[-1].tensor_proto.string_val[0].decode()
    rows = [line for line in table.splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == shown
    assert all(row.split(" | ")[0].removeprefix("| ") in val_studies for row in rows)

    client = MlflowClient(logger_of("mlflow")["init_args"]["tracking_uri"])
    experiment = client.get_experiment_by_name("cxr")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert {VAL_BLEU_4, VAL_CE_F1_MICRO} <= set(run.data.metrics)
    assert 0.0 <= run.data.metrics[VAL_BLEU_4] <= 1.0
    assert "model_config/encoder/name" in run.data.params
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, TABLE_KEY)]
    assert artifacts == [f"{TABLE_KEY}/epoch_000.json"]
    local = client.download_artifacts(run.info.run_id, artifacts[0], str(tmp_path))
    saved = json.loads(Path(local).read_text())
    assert saved["columns"] == ["study_id", "generated", "reference"]
    assert len(saved["data"]) == shown and {r[0] for r in saved["data"]} <= val_studies


@pytest.mark.slow
def test_yaml_optimizer_and_lr_scheduler_keys_are_honoured(
    phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    keys = tmp_path / "sgd.yaml"
    keys.write_text(
        "optimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.05, weight_decay: 0.01}\n"
        "lr_scheduler:\n  class_path: torch.optim.lr_scheduler.StepLR\n"
        "  init_args: {step_size: 1, gamma: 0.5}\n"
    )
    cli = fit(phantom_folder, tmp_path, "--config", str(keys), "--trainer.logger", "false")
    (optimizer,) = cli.trainer.optimizers
    assert type(optimizer) is torch.optim.SGD
    # Still two groups: no weight decay on biases and norms.
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    assert [g["initial_lr"] for g in optimizer.param_groups] == [0.05, 0.05]
    (scheduler,) = cli.trainer.lr_scheduler_configs
    assert type(scheduler.scheduler) is torch.optim.lr_scheduler.StepLR
    assert scheduler.interval == "epoch"
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)  # one epoch stepped


@pytest.mark.slow
def test_without_optimizer_keys_adamw_warms_up_and_decays_every_step(
    phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = fit(phantom_folder, tmp_path, "--trainer.logger", "false")
    (optimizer,) = cli.trainer.optimizers
    assert type(optimizer) is torch.optim.AdamW
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    (scheduler,) = cli.trainer.lr_scheduler_configs
    assert scheduler.interval == "step"
    # 2 steps in all: 1 warmup step (lr 0 at step 0), then the cosine's end at step 2.
    peak = cli.model.hparams["learning_rate"]
    assert [round(lr / peak, 6) for lr in scheduler.scheduler.get_last_lr()] == [0.1, 0.1]


@pytest.mark.slow
def test_a_checkpoint_is_chosen_on_validation_ce_f1(
    phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    callbacks = yaml.safe_dump(
        [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {
                    "dirpath": str(tmp_path / "checkpoints"),
                    "filename": "best",
                    "monitor": VAL_CE_F1_MICRO,
                    "mode": "max",
                },
            },
            {"class_path": "cxr.training.callbacks.ValidationReports"},
        ]
    )
    cli = fit(
        phantom_folder, tmp_path, "--trainer.callbacks", callbacks, "--trainer.logger", "false"
    )
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    checkpoint = cli.trainer.checkpoint_callback
    assert checkpoint is not None and checkpoint.best_model_score is not None  # type: ignore[attr-defined]
    assert 0.0 <= float(checkpoint.best_model_score) <= 1.0  # type: ignore[attr-defined]
