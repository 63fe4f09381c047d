"""The LightningModule: one shared step for train/val/test around a ready `ReportModel`."""

from __future__ import annotations

import math
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI, instantiate_class
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAUROC
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from cxr.models.grounding import batch_observations
from cxr.training.losses import (
    balanced_change_weights,
    change_loss,
    known_change,
    observation_loss,
    tube_line_loss,
)
from cxr.types import CHANGE_FINDINGS, CHANGE_UNKNOWN, OBSERVATIONS, TUBE_LINE_LABELS, Change

_STAGES = ("train", "val", "test")


def _stage_metrics() -> MetricCollection:
    return MetricCollection(
        {
            "tube_line_auroc": MultilabelAUROC(num_labels=len(TUBE_LINE_LABELS), ignore_index=-1),
            "findings_auroc": MultilabelAUROC(num_labels=len(OBSERVATIONS), ignore_index=-1),
            "change_accuracy": MulticlassAccuracy(
                num_classes=len(Change), average="micro", ignore_index=CHANGE_UNKNOWN
            ),
        }
    )


class ReportModule(L.LightningModule):
    """Trains a ReportModel on report, tube/line, findings and change targets at once.

    loss = report LM loss + tube_line_weight * tube/line loss + findings_weight * findings
    loss + change_weight * change loss, each term masked where its label is unknown.

    A grounded decoder (cxr.models.grounding) reads the reference calls where labels are
    known, each replaced by the heads' own call with a probability that rises linearly from 0
    to `label_replacement` over training (scheduled sampling); validation and test read the
    heads' calls only, as inference does.

    The logged hyper-parameters hold these options and, as `model_config`, the model's own
    `config_dict()`.

    Args:
        model: The report model (built from its own config; see cxr.models.ReportModel).
        learning_rate: Peak learning rate of the default AdamW.
        weight_decay: Weight decay of the default AdamW. Biases and norms get none, whichever
            optimizer is used.
        warmup_fraction: Share of the optimizer steps the default schedule warms up linearly.
        min_lr_ratio: The default schedule's cosine decay ends at this fraction of the peak
            learning rate.
        tube_line_weight: Weight of the tube/line loss.
        findings_weight: Weight of the findings-head loss.
        change_weight: Weight of the change loss.
        change_class_balance: Weigh change labels by `balanced_change_weights` of the
            training split (each finding's classes count equally, as in MS-CXR-T's macro
            accuracy); False weighs every label 1.
        label_replacement: Probability, reached at the end of training, that a grounded
            decoder reads the head's call instead of a known reference.
        optimizer: Set by the top-level `optimizer:` key of a `cxr fit` config (class_path and
            init_args of a torch optimizer, which get the two parameter groups); None: AdamW
            with `learning_rate` and `weight_decay`.
        lr_scheduler: Set by the top-level `lr_scheduler:` key (an LRScheduler class_path and
            init_args, stepped once per epoch as LightningCLI does); None: linear warmup
            over `warmup_fraction` of the steps, then cosine decay to `min_lr_ratio`
            (transformers' `get_cosine_with_min_lr_schedule_with_warmup`), stepped every
            optimizer step.
    """

    def __init__(
        self,
        model: nn.Module,
        learning_rate: float = 3e-4,
        weight_decay: float = 0.01,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.1,
        tube_line_weight: float = 1.0,
        findings_weight: float = 1.0,
        change_weight: float = 1.0,
        change_class_balance: bool = True,
        label_replacement: float = 0.5,
        optimizer: dict[str, Any] | None = None,
        lr_scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        config_dict = getattr(model, "config_dict", None)
        if callable(config_dict):  # a ReportModel: its architecture goes to the trackers too
            self.save_hyperparameters({**self.hparams, "model_config": config_dict()})
        self.model = model
        self.change_class_weights: torch.Tensor
        self.register_buffer(
            "change_class_weights", torch.ones(len(CHANGE_FINDINGS), len(Change)), persistent=False
        )
        # Keyed "<stage>_metrics": a ModuleDict key may not shadow nn.Module.train.
        self.metrics = nn.ModuleDict({f"{stage}_metrics": _stage_metrics() for stage in _STAGES})

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams["change_class_balance"] and hasattr(datamodule, "studies"):
            from cxr.data.splits import Split

            studies = datamodule.studies(Split.TRAIN)  # type: ignore[union-attr]
            if studies:
                targets = torch.stack([torch.from_numpy(s.targets.change) for s in studies])
                self.change_class_weights = balanced_change_weights(targets).to(self.device)

    def replace_probability(self, stage: str) -> float:
        """How often a grounded decoder reads the heads' call instead of a known reference."""
        if stage != "train":
            return 1.0
        if self._trainer is None:  # a step run by hand, outside a Trainer: the schedule's start
            return 0.0
        total = max(1, int(self.trainer.estimated_stepping_batches))
        return float(self.hparams["label_replacement"]) * min(1.0, self.global_step / total)

    def shared_step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        output = self.model(batch, replace_probability=self.replace_probability(stage))
        tube_line = tube_line_loss(output.tube_line_logits, batch["tube_line"])
        findings = observation_loss(output.observation_logits, batch_observations(batch))
        change = change_loss(
            output.change_logits,
            batch["change"],
            output.change_available,
            self.change_class_weights if self.hparams["change_class_balance"] else None,
        )
        loss = (
            output.lm_loss
            + self.hparams["tube_line_weight"] * tube_line
            + self.hparams["findings_weight"] * findings
            + self.hparams["change_weight"] * change
        )
        size = len(batch["study_id"])
        on_step = stage == "train"
        self.log(
            f"{stage}/loss", loss, batch_size=size, prog_bar=True, on_step=on_step, on_epoch=True
        )
        for name, value in (
            ("lm_loss", output.lm_loss),
            ("tube_line_loss", tube_line),
            ("findings_loss", findings),
            ("change_loss", change),
        ):
            self.log(f"{stage}/{name}", value, batch_size=size, on_step=on_step, on_epoch=True)
        self._update_metrics(stage, output, batch)
        return loss

    def _update_metrics(self, stage: str, output: Any, batch: dict[str, Any]) -> None:
        metrics = cast(MetricCollection, self.metrics[f"{stage}_metrics"])
        tube_line_target = torch.nan_to_num(batch["tube_line"], nan=-1.0).long()
        metrics["tube_line_auroc"].update(
            output.tube_line_logits.detach().sigmoid(), tube_line_target
        )
        observation_target = torch.nan_to_num(batch_observations(batch), nan=-1.0).long()
        metrics["findings_auroc"].update(
            output.observation_logits.detach().sigmoid(), observation_target
        )
        change_logits = output.change_logits.detach().flatten(0, 1)
        change_target = known_change(batch["change"], output.change_available)
        metrics["change_accuracy"].update(change_logits, change_target.flatten())

    def _log_metrics(self, stage: str) -> None:
        metrics = cast(MetricCollection, self.metrics[f"{stage}_metrics"])
        for name, metric in metrics.items(keep_base=True):
            metric = cast(Metric, metric)
            if metric.update_count:
                value = metric.compute()
                if not math.isnan(float(value)):
                    self.log(f"{stage}/{name}", value, prog_bar=stage == "val")
            metric.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from cxr.training.export import CHECKPOINT_KEY, model_record

        checkpoint[CHECKPOINT_KEY] = model_record(self.model)  # type: ignore[arg-type]
        # Dropout draws from torch's global generator; restoring it makes a resume exact.
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def configure_optimizers(self) -> Any:
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for parameter in self.model.parameters():
            if parameter.requires_grad:
                (decay if parameter.ndim >= 2 else no_decay).append(parameter)
        # The decay group takes the optimizer's own weight decay (a YAML one's init_args).
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer_init = self.hparams["optimizer"] or {
            "class_path": "torch.optim.AdamW",
            "init_args": {
                "lr": self.hparams["learning_rate"],
                "weight_decay": self.hparams["weight_decay"],
            },
        }
        optimizer = instantiate_class(groups, dict(optimizer_init))
        if self.hparams["lr_scheduler"] is not None:
            scheduler = instantiate_class(optimizer, dict(self.hparams["lr_scheduler"]))
            return LightningCLI.configure_optimizers(self, optimizer, scheduler)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(total * self.hparams["warmup_fraction"]))
        default_scheduler = get_cosine_with_min_lr_schedule_with_warmup(
            optimizer, warmup, total, min_lr_rate=self.hparams["min_lr_ratio"]
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": default_scheduler, "interval": "step"},
        }
