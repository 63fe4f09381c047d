"""Generated reports during training: validation BLEU-4 and CE-F1, and a table for the trackers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from cxr.data.reports import join_report
from cxr.data.splits import Split
from cxr.evaluation.clinical_efficacy import ClinicalEfficacy
from cxr.evaluation.evaluate import EvaluationOptions
from cxr.evaluation.labeler import label_reports
from cxr.evaluation.metric_keys import BLEU_4, clinical_key
from cxr.evaluation.nlg import nlg_scores, tokenize_report
from cxr.types import OBSERVATIONS

log = logging.getLogger(__name__)

VAL_BLEU_4 = f"val/{BLEU_4}"
"""The logged validation BLEU-4 (pycocoevalcap's, as `cxr evaluate` reports it)."""
VAL_CE_F1_MICRO = f"val/{clinical_key('F1-micro', len(OBSERVATIONS))}"
"""The logged validation CE-F1 (micro over the 14 observations, cxr's rule-based labeler)."""
TABLE_KEY = "val/reports"


@dataclass(frozen=True)
class GeneratedReport:
    study_id: str
    generated: str
    reference: str


class ValidationReports(L.Callback):
    """Each validation epoch, generates reports for the first studies of the validation loader
    with the model's own decoding settings (greedy by default), logs their BLEU-4 and CE-F1 as
    `val/BLEU-4` and `val/CE-F1-micro-14` (so a ModelCheckpoint can monitor them), and shows a
    few beside their references in every tracker: TensorBoard text, an MLflow table artifact,
    a W&B table. References are the training targets (findings and impression); studies
    without one count in the table but not in the metrics. The sanity check generates nothing.

    Args:
        examples: How many generated reports the table shows (0: no table).
        metric_studies: How many validation studies are generated for the metrics, the
            loader's first (None: the whole validation split; 0: no metrics, only the table).
    """

    def __init__(self, examples: int = 4, metric_studies: int | None = None) -> None:
        if examples < 0 or (metric_studies is not None and metric_studies < 0):
            raise ValueError("examples and metric_studies must be >= 0")
        self.examples = examples
        self.metric_studies = metric_studies
        self._reports: list[GeneratedReport] = []
        self._references: dict[str, str] = {}  # {study_id: reference text} of this epoch

    def _wanted(self) -> float:
        studies = float("inf") if self.metric_studies is None else self.metric_studies
        return max(float(self.examples), studies)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reports = []
        self._references = _validation_references(trainer)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or len(self._reports) >= self._wanted():
            return
        model: Any = pl_module.model
        texts = model.generate(batch)
        references = _batch_references(self._references, model, batch)
        self._reports.extend(
            GeneratedReport(study, text, reference)
            for study, text, reference in zip(batch["study_id"], texts, references, strict=True)
        )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        reports = _gathered(trainer, self._reports)
        if self.metric_studies != 0:
            scored = [r for r in reports[: int(min(len(reports), self._wanted()))] if r.reference]
            if scored:
                for name, value in validation_scores(scored).items():
                    pl_module.log(name, value)
        if self.examples and trainer.is_global_zero:
            for logger in trainer.loggers:
                log_report_table(logger, reports[: self.examples], trainer)


def validation_scores(reports: list[GeneratedReport]) -> dict[str, float]:
    """BLEU-4 and CE-F1 (micro, 14 observations) of generated reports against references, as
    `cxr evaluate` computes them (its default uncertain mapping)."""
    generated = [r.generated for r in reports]
    references = [r.reference for r in reports]
    bleu = nlg_scores(
        [tokenize_report(t) for t in generated],
        [tokenize_report(t) for t in references],
        meteor=False,
    )[BLEU_4]
    clinical = ClinicalEfficacy(
        label_reports(generated), label_reports(references), EvaluationOptions().uncertain
    )(np.ones(len(reports)))
    ce_f1 = clinical[clinical_key("F1-micro", len(OBSERVATIONS))]
    return {VAL_BLEU_4: float(bleu), VAL_CE_F1_MICRO: float(ce_f1[0])}


def _validation_references(trainer: L.Trainer) -> dict[str, str]:
    """{study_id: reference text} of the data module's validation studies (findings and
    impression), read once per validation epoch; empty without such a data module."""
    datamodule = getattr(trainer, "datamodule", None)
    if not hasattr(datamodule, "studies"):
        return {}
    studies = datamodule.studies(Split.VAL)  # type: ignore[union-attr]
    return {
        s.study_id: join_report(s.targets.findings, s.targets.impression) or "" for s in studies
    }


def _batch_references(references: dict[str, str], model: Any, batch: dict[str, Any]) -> list[str]:
    """The reference texts of a batch: its studies' in `references` when all are there, else
    the batch's target tokens decoded."""
    if references and all(study in references for study in batch["study_id"]):
        return [references[study] for study in batch["study_id"]]
    rows = batch["report_ids"].masked_fill(batch["report_mask"] == 0, model.tokenizer.pad_token_id)
    return [t.strip() for t in model.tokenizer.batch_decode(rows, skip_special_tokens=True)]


def _gathered(trainer: L.Trainer, reports: list[GeneratedReport]) -> list[GeneratedReport]:
    """Every process's reports, in rank order (each rank validates its own share)."""
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return reports
    shares: list[list[GeneratedReport] | None] = [None] * trainer.world_size
    torch.distributed.all_gather_object(shares, reports)
    return [report for share in shares for report in share or []]


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>") or "(empty)"


def log_report_table(logger: Logger, reports: list[GeneratedReport], trainer: L.Trainer) -> None:
    """Shows generated reports beside their references in a tracker that can show a table."""
    columns = ["study_id", "generated", "reference"]
    rows = [[r.study_id, r.generated, r.reference] for r in reports]
    if isinstance(logger, TensorBoardLogger):
        lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
        logger.experiment.add_text(TABLE_KEY, "\n".join(lines), global_step=trainer.global_step)
    elif isinstance(logger, MLFlowLogger):
        logger.experiment.log_table(
            logger.run_id,
            data={name: [row[i] for row in rows] for i, name in enumerate(columns)},
            artifact_file=f"{TABLE_KEY}/epoch_{trainer.current_epoch:03d}.json",
        )
    elif isinstance(logger, WandbLogger):
        logger.log_table(TABLE_KEY, columns=columns, data=rows)
    else:
        log.debug("%s shows no tables; generated reports not logged", type(logger).__name__)
