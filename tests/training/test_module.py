"""Training with Lightning on phantom studies: steps run, resume is exact, export round-trips."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from models.tiny_models import phantom_model

from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.data.splits import Split
from cxr.models import ReportModel
from cxr.training.export import export
from cxr.training.module import ReportModule
from cxr.types import IMAGE_SLOTS, Change


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


class StopAfterFirstEpoch(L.Callback):
    """Interrupts a run the way a killed job is: same configuration, stopped after epoch 0."""

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        trainer.should_stop = True


def trainer(root: Path, max_epochs: int, *callbacks: L.Callback) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=root, save_last=True), *callbacks],
    )


@pytest.mark.slow
def test_resume_from_epoch_end_matches_uninterrupted_run_and_export_loads(
    phantom_folder: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    L.seed_everything(0)
    datamodule = make_datamodule(phantom_folder, cache)
    model = phantom_model(datamodule)
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    straight = ReportModule(model, learning_rate=1e-3)
    L.seed_everything(0)  # dropout draws from the global generator
    trainer(tmp_path / "straight", max_epochs=2).fit(straight, datamodule)

    def fresh_module() -> ReportModule:
        restarted = phantom_model(datamodule)
        restarted.load_state_dict(initial)
        return ReportModule(restarted, learning_rate=1e-3)

    first = fresh_module()
    L.seed_everything(0)
    trainer(tmp_path / "interrupted", 2, StopAfterFirstEpoch()).fit(first, datamodule)
    L.seed_everything(123)  # the checkpoint must restore the generator, whatever it is now
    resumed = fresh_module()
    trainer(tmp_path / "interrupted", max_epochs=2).fit(
        resumed, datamodule, ckpt_path=str(tmp_path / "interrupted" / "last.ckpt")
    )
    for name, value in straight.model.state_dict().items():
        assert torch.allclose(value, resumed.model.state_dict()[name], atol=1e-6), name
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
    module = ReportModule(phantom_model(datamodule))
    fit = L.Trainer(accelerator="cpu", fast_dev_run=True, logger=False, enable_progress_bar=False)
    fit.fit(module, datamodule)
    logged = fit.callback_metrics
    for name in (
        "train/loss",
        "train/lm_loss",
        "train/tube_line_loss",
        "train/change_loss",
        "val/loss",
    ):
        assert name in logged and torch.isfinite(logged[name]), name


def test_a_change_label_without_a_prior_image_does_not_move_the_change_head(
    phantom_folder: Path, tmp_path: Path
) -> None:
    datamodule = make_datamodule(phantom_folder, tmp_path / "cache")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    prior = IMAGE_SLOTS.index("prior_frontal")
    # Every row carries change labels, as an MS-CXR-T row whose prior file is missing does.
    batch["change"] = torch.full_like(batch["change"], Change.WORSENING.code)
    batch["image_present"][:, prior] = False
    batch["images"][:, prior] = 0.0
    module = ReportModule(phantom_model(datamodule))

    module.shared_step(batch, "train").backward()

    change_head = list(module.model.change_head.parameters())
    assert all(p.grad is None or not p.grad.any() for p in change_head)
    # The same rows with their prior image present do train it.
    batch["image_present"][:, prior] = True
    module.zero_grad()
    module.shared_step(batch, "train").backward()
    assert any(p.grad is not None and p.grad.any() for p in change_head)


def test_unknown_observations_do_not_move_the_findings_head(
    phantom_folder: Path, tmp_path: Path
) -> None:
    datamodule = make_datamodule(phantom_folder, tmp_path / "cache")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert not torch.isnan(batch["observations"]).all()  # the phantom labels every observation
    module = ReportModule(phantom_model(datamodule))
    findings_head = list(module.model.findings_head.parameters())

    unlabelled = dict(batch, observations=torch.full_like(batch["observations"], float("nan")))
    module.shared_step(unlabelled, "train").backward()
    # The report loss reaches the head only through discrete calls: no gradient either.
    assert all(p.grad is None or not p.grad.any() for p in findings_head)

    module.zero_grad()
    module.shared_step(batch, "train").backward()
    assert any(p.grad is not None and p.grad.any() for p in findings_head)
