"""Exact resume mid-epoch: a run killed after k steps and resumed from its last checkpoint ends
with the same weights, bit for bit, as a run that was never interrupted."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from models.tiny_models import phantom_model

from cxr.data.datamodule import DataSource, EpochSampler, ReportDataModule
from cxr.data.transforms import Augment
from cxr.training.module import ReportModule

STEPS_PER_EPOCH = 3
KILLED_AFTER = 2  # steps; the checkpoint is written at this step, mid-epoch 0
# Past the end of epoch 0: validation runs, and epoch 1 is drawn after the resume.
EPOCHS = 2


class Killed(Exception):
    """The job dies: nothing after this point of the run reaches the checkpoint."""


class KillAfter(L.Callback):
    """Kills the run at the start of the step after `steps`, once ModelCheckpoint (which
    Lightning runs after the other callbacks) has written that step's checkpoint."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.global_step == self.steps:
            raise Killed


@pytest.fixture(scope="module")
def datamodule(phantom_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportDataModule:
    """One data module for the file: its splits, tokenizer and image cache are made once; a
    test sets `num_workers` for itself."""
    return ReportDataModule(
        sources=[DataSource(adapter="phantom", root=phantom_folder)],
        image_size=64,
        batch_size=2,
        num_workers=0,
        cache_dir=tmp_path_factory.mktemp("cache"),
        tokenizer_vocab_size=300,
        max_report_tokens=48,
        augment=Augment(),
    )


def fit(
    datamodule: ReportDataModule,
    root: Path,
    *callbacks: L.Callback,
    ckpt_path: str | None = None,
) -> ReportModule:
    module = ReportModule(phantom_model(datamodule), learning_rate=1e-3)
    trainer = L.Trainer(
        accelerator="cpu",
        # The same in every part: it sets the LR and label-replacement schedules. max_epochs
        # (as configs/ use) makes configure_optimizers build the train loader before the
        # checkpoint is restored, the case in which Lightning 2.6 drops loader states.
        max_epochs=EPOCHS,
        limit_train_batches=STEPS_PER_EPOCH,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=root, every_n_train_steps=KILLED_AFTER, save_last=True
            ),
            *callbacks,
        ],
    )
    trainer.fit(module, datamodule, ckpt_path=ckpt_path)
    return module


@pytest.fixture(scope="module")
def uninterrupted(
    datamodule: ReportDataModule, tmp_path_factory: pytest.TempPathFactory
) -> ReportModule:
    datamodule.num_workers = 0
    L.seed_everything(0)
    return fit(datamodule, tmp_path_factory.mktemp("straight"))


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch_matches_uninterrupted_run_exactly(
    uninterrupted: ReportModule, datamodule: ReportDataModule, tmp_path: Path, num_workers: int
) -> None:
    datamodule.num_workers = num_workers
    assert len(datamodule.train_dataloader()) > STEPS_PER_EPOCH  # the limit cuts the epoch

    L.seed_everything(0)
    with pytest.raises(Killed):
        fit(datamodule, tmp_path, KillAfter(KILLED_AFTER))
    L.seed_everything(123)  # the checkpoint must restore the generators, whatever they are now
    resumed = fit(datamodule, tmp_path, ckpt_path="last")

    # The weights do not depend on the workers either: the uninterrupted run used none.
    assert resumed.global_step == uninterrupted.global_step == EPOCHS * STEPS_PER_EPOCH
    expected = uninterrupted.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_sampler_state_resumes_the_epoch_after_the_delivered_draws() -> None:
    sampler = EpochSampler(torch.ones(10), seed=3)
    sampler.set_epoch(2)
    epoch = list(sampler)
    sampler.delivered = 4  # as ResumableLoader counts one batch of 4 handed to the loop

    restored = EpochSampler(torch.ones(10), seed=3)
    restored.load_state_dict(sampler.state_dict())
    assert sampler.state_dict() == {"epoch": 2, "delivered": 4}
    restored.set_epoch(2)  # Lightning sets the epoch again before iterating
    assert list(restored) == epoch[4:]
    assert len(restored) == 10  # Lightning counts the 4 already trained on
    assert list(restored) == epoch  # the skip applies to one pass only
    # A state saved at the end of its epoch does not shorten the next one.
    restored.load_state_dict({"epoch": 2, "delivered": 10})
    restored.set_epoch(3)
    assert len(list(restored)) == 10


def test_loader_state_counts_the_batches_the_loop_received(datamodule: ReportDataModule) -> None:
    datamodule.num_workers = 0
    loader = datamodule.train_dataloader()
    batches = iter(loader)
    first_ids = [next(batches)["study_id"] for _ in range(3)]
    state = loader.state_dict()  # type: ignore[attr-defined]
    assert state == {"sampler": {"epoch": 0, "delivered": 6}}
    rest = [batch["study_id"] for batch in batches]

    again = datamodule.train_dataloader()
    again.load_state_dict(state)  # type: ignore[attr-defined]
    assert [batch["study_id"] for batch in again] == rest
    assert [batch["study_id"] for batch in again][:3] == first_ids
