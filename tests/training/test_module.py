"""Training with Lightning on phantom studies: steps run, resume is exact, export round-trips."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.data.splits import Split
from cxr.models import ConnectorConfig, DecoderConfig, EncoderConfig, HeadsConfig, ReportModel
from cxr.training.export import export
from cxr.training.module import ReportModule


def tiny_model(datamodule: ReportDataModule) -> ReportModel:
    return ReportModel(
        EncoderConfig(name="resnet10t", image_size=64),
        ConnectorConfig(kind="attention_pool", num_queries=8),  # type: ignore[arg-type]
        DecoderConfig(arch={"n_layer": 1, "n_embd": 64, "n_head": 2, "n_positions": 512}),
        HeadsConfig(hidden=32),
        datamodule.tokenizer,
    )


def make_datamodule(folder: Path, cache: Path) -> ReportDataModule:
    return ReportDataModule(
        sources=[DataSource(adapter="phantom", root=folder)],
        image_size=64,
        batch_size=4,
        num_workers=0,
        cache_dir=cache,
        tokenizer_vocab_size=300,
        max_report_tokens=48,
    )


def trainer(root: Path, max_epochs: int) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=root, save_last=True)],
    )


@pytest.mark.slow
def test_resume_continues_from_checkpoint_and_export_loads(phantom_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    L.seed_everything(0)
    datamodule = make_datamodule(phantom_folder, cache)
    model = tiny_model(datamodule)
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    straight = ReportModule(model, learning_rate=1e-3)
    straight_trainer = trainer(tmp_path / "straight", max_epochs=2)
    straight_trainer.fit(straight, datamodule)

    def fresh_module() -> ReportModule:
        restarted = tiny_model(datamodule)
        restarted.load_state_dict(initial)
        return ReportModule(restarted, learning_rate=1e-3)

    first = fresh_module()
    trainer(tmp_path / "interrupted", max_epochs=1).fit(first, datamodule)
    after_first_epoch = {k: v.clone() for k, v in first.model.state_dict().items()}
    resumed = fresh_module()
    resumed_trainer = trainer(tmp_path / "interrupted", max_epochs=2)
    resumed_trainer.fit(resumed, datamodule, ckpt_path=str(tmp_path / "interrupted" / "last.ckpt"))
    # The resumed run continues where the checkpoint stopped (step count, weights) and trains on.
    assert resumed_trainer.global_step == straight_trainer.global_step == 6
    assert any(not torch.equal(v, after_first_epoch[k]) for k, v in resumed.model.state_dict().items())
    assert any(not torch.equal(v, initial[k]) for k, v in straight.model.state_dict().items())

    export(tmp_path / "straight" / "last.ckpt", tmp_path / "model")
    loaded = ReportModel.from_pretrained(tmp_path / "model")
    batch = next(iter(datamodule.test_dataloader()))
    straight.model.eval()
    with torch.no_grad():
        expected, actual = straight.model(batch), loaded(batch)
    assert torch.allclose(expected.tube_line_logits, actual.tube_line_logits, atol=1e-5)
    assert torch.allclose(expected.lm_loss, actual.lm_loss, atol=1e-5)
    assert datamodule.studies(Split.TEST)


@pytest.mark.slow
def test_losses_are_logged_per_stage(phantom_folder: Path, tmp_path: Path) -> None:
    datamodule = make_datamodule(phantom_folder, tmp_path / "cache")
    module = ReportModule(tiny_model(datamodule))
    fit = L.Trainer(accelerator="cpu", fast_dev_run=True, logger=False, enable_progress_bar=False)
    fit.fit(module, datamodule)
    logged = fit.callback_metrics
    for name in ("train/loss", "train/lm_loss", "train/tube_line_loss", "train/change_loss", "val/loss"):
        assert name in logged and torch.isfinite(logged[name]), name
