"""`cxr evaluate`'s computation: every system's metrics, with bootstrap intervals, on the same
resamples.

`evaluate_files` reads and matches the files (cxr.evaluation.studies), adds the baselines,
and hands the systems to `evaluate_systems`, which builds one `SystemMetrics` per system (each
metric family of cxr.evaluation, computed from per-study statistics) and bootstraps them over
patients. Text metrics (NLG, clinical efficacy, model-based scorers) use the studies whose
reference has text for the chosen section; tube/line, findings-head and change metrics use the
studies whose reference has the label; report-to-head consistency uses every evaluated study
the head assessed. The generated reports are labelled once (`label_reports`), for clinical
efficacy and consistency alike. Every metric's point value, bootstrap samples and --compare
differences come from the same per-study statistics and the same resamples. Writing the
results is cxr.evaluation.outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr.evaluation.baselines import baseline_systems
from cxr.evaluation.bootstrap import Estimate, bootstrap, paired_differences, patient_weights
from cxr.evaluation.change_metrics import ChangeMetrics, change_confusions
from cxr.evaluation.clinical_efficacy import ClinicalEfficacy, UncertainMapping
from cxr.evaluation.findings_metrics import FindingsMetrics
from cxr.evaluation.labeler import label_reports
from cxr.evaluation.metric_keys import (
    METEOR,
    Labeler,
    PerSubject,
    per_subject_keys,
    reciprocal_key,
)
from cxr.evaluation.nlg import NlgStatistics, java_available, tokenize_report
from cxr.evaluation.records import read_joined
from cxr.evaluation.report_head_consistency import ReportHeadConsistency
from cxr.evaluation.scorers import ModelScorers, ScorerResults
from cxr.evaluation.studies import (
    References,
    Section,
    StudyTable,
    System,
    build_references,
    read_matched,
)
from cxr.evaluation.tube_line_metrics import TubeLineMetrics
from cxr.types import OBSERVATION_THRESHOLD, OBSERVATIONS

log = logging.getLogger(__name__)

# How the model-based labelers' uncertain mentions count (CheXbert-F1), whatever --uncertain
# says for cxr's own labeler: as positive, the convention of the papers' CheXbert-F1 tables
# (CheXagent, MAIRA-2) and of RadEval's own F1 ("rrg" mode maps uncertain to positive).
MODEL_LABELER_UNCERTAIN = UncertainMapping.POSITIVE


@dataclass
class EvaluationOptions:
    """Settings of one evaluation."""

    section: Section = Section.REPORT
    uncertain: UncertainMapping = UncertainMapping.NEGATIVE
    n_bootstrap: int = 1000
    seed: int = 0
    meteor: bool | None = None  # None: when java is on PATH


class SystemMetrics:
    """All metrics of one system, as a function of bootstrap study weights."""

    def __init__(
        self,
        system: System,
        references: References,
        reference_labels: pd.DataFrame,
        options: EvaluationOptions,
        scorers: ModelScorers,
    ) -> None:
        """Args:
        system: the system's outputs for the evaluated studies.
        references: the evaluated studies' references.
        reference_labels: `label_reports` of the reference texts that are not empty.
        options: the evaluation's settings.
        scorers: model-based scorers, run here once for this system.
        """
        self.system, self.references = system, references
        self.text_mask = references.has_text
        hypotheses = [t for t, k in zip(system.outputs.texts, self.text_mask, strict=True) if k]
        texts = [t for t in references.table.texts if t]
        has_head = not np.isnan(system.outputs.observations).all()
        # The labeler reads each generated report once, for clinical efficacy and consistency.
        generated_labels = label_reports(system.outputs.texts) if texts or has_head else None
        self.nlg: NlgStatistics | None = None
        self.clinical: ClinicalEfficacy | None = None
        self.consistency: ReportHeadConsistency | None = None
        self.model_scores = ScorerResults()
        self.model_labels: list[ClinicalEfficacy] = []
        if texts and generated_labels is not None:
            self.nlg = NlgStatistics(
                [tokenize_report(t) for t in hypotheses],
                [tokenize_report(t) for t in texts],
                meteor=options.meteor,
            )
            self.clinical = ClinicalEfficacy(
                generated_labels[self.text_mask], reference_labels, options.uncertain
            )
            self.model_scores = scorers.per_study(hypotheses, texts)
            self.model_labels = [
                ClinicalEfficacy(
                    pd.DataFrame(generated, columns=list(OBSERVATIONS)),
                    pd.DataFrame(reference, columns=list(OBSERVATIONS)),
                    MODEL_LABELER_UNCERTAIN,
                    Labeler.CHEXBERT,
                )
                for generated, reference in self.model_scores.labels.values()
            ]
        if has_head and generated_labels is not None:
            self.consistency = ReportHeadConsistency(
                generated_labels, system.outputs.observations, options.uncertain
            )
        self.tube_line = TubeLineMetrics(system.outputs, references.table)
        self.findings = FindingsMetrics(system.outputs, references.table, options.uncertain)
        self.change = ChangeMetrics(system.outputs.change, references.table.change)

    def official_values(self) -> dict[str, float]:
        """NLG point values exactly as pycocoevalcap's scorers return them."""
        return dict(self.nlg.official) if self.nlg is not None else {}

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """{metric: (resamples,) values}, in the order tables and metrics.json show them: NLG,
        clinical efficacy, report-to-head consistency, model-based scorers, tube/line and
        findings-head AUC, device status, change."""
        weights = np.atleast_2d(weights)
        text_weights = weights[:, self.text_mask]
        result: dict[str, np.ndarray] = {}
        if self.nlg is not None and self.clinical is not None:
            result.update(self.nlg.scores(text_weights))
            result.update(self.clinical(text_weights))
        if self.consistency is not None:
            result.update(self.consistency(weights))
        if self.nlg is not None:
            for labels in self.model_labels:
                result.update(labels(text_weights))
            for name, values in self.model_scores.scores.items():
                result[name] = text_weights @ values / text_weights.sum(axis=1)
                if name in self.model_scores.reciprocals:
                    with np.errstate(divide="ignore"):
                        result[reciprocal_key(name)] = 1.0 / result[name]
        result.update(self.tube_line.aucs(weights))
        result.update(self.findings(weights))
        result.update(self.tube_line.status_accuracies(weights))
        result.update(self.change(weights))
        return result

    def change_confusions(self) -> dict[str, np.ndarray]:
        """Confusion matrix per finding with known references (reference x predicted)."""
        return change_confusions(self.system.outputs.change, self.references.table.change)


@dataclass
class Evaluation:
    """Everything `cxr evaluate` reports (`metrics_by_system` only for a run in this process)."""

    systems: dict[str, dict[str, Estimate]]
    primary: str
    differences: dict[str, Estimate] = field(default_factory=dict)
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    metrics_by_system: dict[str, SystemMetrics] = field(default_factory=dict)

    def per_subject(self, family: PerSubject, system: str | None = None) -> dict[str, float]:
        """{subject: value} of one per-subject family, for a system (default: the primary)."""
        estimates = self.systems[system or self.primary]
        return {subject: e.value for subject, e in family.select(estimates).items()}

    def per_subject_by_system(self, family: PerSubject) -> dict[str, dict[str, float]]:
        """`per_subject` of every system that has the family."""
        found = {system: self.per_subject(family, system) for system in self.systems}
        return {system: values for system, values in found.items() if values}

    def metric_names(self, families: Iterable[PerSubject] | None = None) -> list[str]:
        """Every metric any system has, in first-seen order; with `families`, only theirs."""
        names: list[str] = []
        for estimates in self.systems.values():
            names += [m for m in estimates if m not in names]
        return names if families is None else per_subject_keys(names, families)


def evaluate_files(
    predictions: str,
    references: Sequence[str],
    options: EvaluationOptions,
    compare: str | None = None,
    train_references: Sequence[str] = (),
    retrieval_features: str | None = None,
    scorers: ModelScorers | None = None,
) -> Evaluation:
    """Reads the files, matches studies, and computes every system's metrics with intervals.

    Args:
        predictions: the evaluated system's output; its file name (stem) names the system.
        references: reference files, joined on study_id.
        options: the evaluation's settings.
        compare: a second system's output, named "compare:<stem>"; adds paired differences.
        train_references: training references; given, the baselines are added.
        retrieval_features: image features for the nearest-neighbour baseline.
        scorers: model-based scorers to run on every system.
    """
    files = {"predictions": predictions, **({"compare": compare} if compare else {})}
    matched = read_matched(files, references)
    refs = build_references(matched.references, options.section)
    unmatched = matched.unmatched + [
        (s, "reference without text")
        for s, t in zip(refs.study_ids, refs.table.texts, strict=True)
        if not t
    ]
    names = {"predictions": Path(predictions).stem}
    if compare:
        names["compare"] = f"compare:{Path(compare).stem}"
    systems = [
        System(names[key], StudyTable.of_predictions(table, options.section))
        for key, table in matched.predictions.items()
    ]
    if train_references:
        train = read_joined(train_references, split="train")
        systems += baseline_systems(
            refs.study_ids, train, options.section, options.seed, retrieval_features
        )
    return evaluate_systems(systems, refs, options, unmatched, scorers, compare=bool(compare))


def evaluate_systems(
    systems: Sequence[System],
    references: References,
    options: EvaluationOptions,
    unmatched: Sequence[tuple[str, str]] = (),
    scorers: ModelScorers | None = None,
    compare: bool = False,
) -> Evaluation:
    """Metrics with intervals for every system on the same resamples; the first is primary,
    and with `compare` the second is subtracted from it (paired differences)."""
    scorers = scorers or ModelScorers()
    text_refs = [t for t in references.table.texts if t]
    reference_labels = label_reports(text_refs)
    weights = patient_weights(references.clusters, options.n_bootstrap, options.seed)
    n = len(references.study_ids)
    metrics = {
        s.name: SystemMetrics(s, references, reference_labels, options, scorers) for s in systems
    }
    results = {
        name: bootstrap(m, n, weights, point=m.official_values()) for name, m in metrics.items()
    }
    if text_refs:
        for estimates in results.values():
            for metric, note in scorers.unavailable_metrics().items():
                estimates.setdefault(metric, Estimate.missing(note))
    names = [s.name for s in systems]
    differences = (
        paired_differences(metrics[names[0]], metrics[names[1]], n, weights) if compare else {}
    )
    info = _run_info(
        references,
        options,
        n_with_text=len(text_refs),
        n_unmatched=len(unmatched),
        meteor=_meteor_note(METEOR in results[names[0]]),
        scorers=scorers,
    )
    return Evaluation(results, names[0], differences, list(unmatched), info, metrics)


def _meteor_note(ran: bool) -> str:
    if ran:
        return "computed (java on PATH)"
    return "unavailable: java not on PATH" if not java_available() else "not computed"


def _run_info(
    references: References,
    options: EvaluationOptions,
    n_with_text: int,
    n_unmatched: int,
    meteor: str,
    scorers: ModelScorers,
) -> dict[str, Any]:
    """run_info.json: what was evaluated, and how."""
    return {
        "studies_evaluated": len(references.study_ids),
        "studies_with_reference_text": n_with_text,
        "bootstrap_resamples": options.n_bootstrap,
        "seed": options.seed,
        "bootstrap_unit": "patient"
        if references.clusters_are_patients
        else "study (no patient_id for every study: each such study is its own cluster)",
        "clusters": len(set(references.clusters)),
        "section": options.section.value,
        "uncertain": options.uncertain.value,
        "uncertain_model_labelers": MODEL_LABELER_UNCERTAIN.value,
        "findings_head_threshold": OBSERVATION_THRESHOLD,
        "tokenization": "cxr.evaluation.nlg.tokenize_report (lower-case, R2Gen-style punctuation handling)",
        "METEOR": meteor,
        "unmatched_ids": n_unmatched,
        "model_scorers": scorers.notes(),
    }
