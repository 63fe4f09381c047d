"""`cxr evaluate`: predictions and references in, metrics with bootstrap intervals out.

Studies are matched on `study_id`. The evaluated studies are those with both a reference and a
prediction (and a prediction of the `--compare` system, when given); every other id is
written to unmatched_ids.csv with the reason, and counted in the run summary. Text metrics
(NLG, clinical efficacy, model-based scorers) use the studies whose reference has text for
the chosen section; tube/line and change metrics use the studies whose reference has the label.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr.errors import InputError
from cxr.evaluation import baselines, plots
from cxr.evaluation.bootstrap import Estimate, bootstrap, paired_differences, patient_weights
from cxr.evaluation.classification import (
    accuracy_and_macro_f1,
    binary_counts,
    confusion_matrices,
    micro_macro,
    precision_recall_f1,
    roc_auc,
)
from cxr.evaluation.labeler import COMMON_OBSERVATIONS, OBSERVATIONS, label_reports
from cxr.evaluation.nlg import NLG_METRICS, NlgStatistics, java_available, tokenize_report
from cxr.evaluation.records import read_joined, read_table
from cxr.evaluation.scorers import ModelScorer, ScorerStatus
from cxr.types import CHANGE_FINDINGS, TUBE_LINE_DEVICES, TUBE_LINE_LABELS, Change, change_column

log = logging.getLogger(__name__)

CHANGE_CLASSES: tuple[str, ...] = tuple(c.name.lower() for c in Change)


class Section(str, Enum):
    """Which report text is compared."""

    FINDINGS = "findings"
    IMPRESSION = "impression"
    REPORT = "report"


class UncertainMapping(str, Enum):
    """How the labeler's uncertain (-1) mentions count in clinical-efficacy scores."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    IGNORE = "ignore"  # (study, observation) pairs with an uncertain side are left out


def _text(value: Any) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and np.isnan(value))
        else str(value).strip()
    )


def section_text(row: Mapping[Any, Any], section: Section) -> str:
    """The row's text for a section; "report" is findings + impression, else a `report` column."""
    if section is Section.REPORT:
        parts = [_text(row.get("findings")), _text(row.get("impression"))]
        joined = " ".join(p for p in parts if p)
        return joined or _text(row.get("report"))
    return _text(row.get(section.value)) or ""


def _change_code(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip()
        if not text or text == "-1":
            return -1
        if text.lstrip("-").isdigit():
            return int(text) if int(text) in (0, 1, 2) else -1
        try:
            return int(Change.parse(text))
        except KeyError as error:
            raise InputError("change label", f"unknown change value {value!r}") from error
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return -1
    code = int(value)
    return code if code in (0, 1, 2) else -1


@dataclass
class StudyTable:
    """Per-study arrays of one file, aligned to the evaluated studies."""

    texts: list[str]
    tube_line: np.ndarray  # studies x 11, NaN unknown
    change: np.ndarray  # studies x 5, -1 unknown

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, section: Section) -> StudyTable:
        records = frame.to_dict("records")
        tube_line = np.full((len(frame), len(TUBE_LINE_LABELS)), np.nan)
        for column, label in enumerate(TUBE_LINE_LABELS):
            if label in frame.columns:
                tube_line[:, column] = pd.to_numeric(frame[label], errors="coerce").to_numpy(float)
        change = np.full((len(frame), len(CHANGE_FINDINGS)), -1, dtype=int)
        for column, finding in enumerate(CHANGE_FINDINGS):
            name = change_column(finding)
            if name in frame.columns:
                change[:, column] = [_change_code(v) for v in frame[name]]
        return cls([section_text(r, section) for r in records], tube_line, change)


@dataclass
class System:
    """What one system produced for the evaluated studies."""

    name: str
    outputs: StudyTable


@dataclass
class References:
    """The evaluated studies' references and bootstrap clusters."""

    study_ids: list[str]
    clusters: list[str]
    clusters_are_patients: bool
    table: StudyTable

    @property
    def has_text(self) -> np.ndarray:
        return np.array([bool(t) for t in self.table.texts])


@dataclass
class EvaluationOptions:
    """Settings of one evaluation."""

    section: Section = Section.REPORT
    uncertain: UncertainMapping = UncertainMapping.NEGATIVE
    n_bootstrap: int = 1000
    seed: int = 0
    meteor: bool | None = None  # None: when java is on PATH


def _binarize(labels: np.ndarray, uncertain: UncertainMapping) -> tuple[np.ndarray, np.ndarray]:
    """(positive, uncertain) booleans from labeler values."""
    positive = labels == 1.0
    hedged = labels == -1.0
    if uncertain is UncertainMapping.POSITIVE:
        positive = positive | hedged
    return positive, hedged


class SystemMetrics:
    """All metrics of one system, as a function of bootstrap study weights."""

    def __init__(
        self,
        system: System,
        references: References,
        reference_labels: pd.DataFrame,
        options: EvaluationOptions,
        scorers: Sequence[ModelScorer] = (),
    ) -> None:
        self.system, self.references, self.options = system, references, options
        self.text_mask = references.has_text
        hyps = [
            tokenize_report(t)
            for t, keep in zip(system.outputs.texts, self.text_mask, strict=True)
            if keep
        ]
        refs = [
            tokenize_report(t)
            for t, keep in zip(references.table.texts, self.text_mask, strict=True)
            if keep
        ]
        self.nlg = NlgStatistics(hyps, refs, meteor=options.meteor) if refs else None
        self.labels = label_reports(
            t for t, k in zip(system.outputs.texts, self.text_mask, strict=True) if k
        )
        self._ce_inputs = self._clinical_inputs(reference_labels)
        self._scorer_scores = self._model_scores(scorers, hyps, refs)

    def _clinical_inputs(
        self, reference_labels: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        predicted = self.labels[list(OBSERVATIONS)].to_numpy(float)
        reference = reference_labels[list(OBSERVATIONS)].to_numpy(float)
        predicted_positive, predicted_uncertain = _binarize(predicted, self.options.uncertain)
        reference_positive, reference_uncertain = _binarize(reference, self.options.uncertain)
        valid = np.ones_like(predicted_positive)
        if self.options.uncertain is UncertainMapping.IGNORE:
            valid = ~(predicted_uncertain | reference_uncertain)
        return predicted_positive, reference_positive, valid

    @staticmethod
    def _model_scores(
        scorers: Sequence[ModelScorer], hyps: list[str], refs: list[str]
    ) -> dict[str, np.ndarray]:
        scores: dict[str, np.ndarray] = {}
        for scorer in scorers:
            for metric, values in scorer.per_study(hyps, refs).items():
                scores[f"{scorer.name}/{metric}"] = np.asarray(values, float)
        return scores

    def official_values(self) -> dict[str, float]:
        """NLG point values exactly as pycocoevalcap's scorers return them."""
        return dict(self.nlg.official) if self.nlg is not None else {}

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        weights = np.atleast_2d(weights)
        text_weights = weights[:, self.text_mask]
        result: dict[str, np.ndarray] = {}
        if self.nlg is not None:
            result.update(self.nlg.scores(text_weights))
            result.update(self._clinical(text_weights))
            for name, values in self._scorer_scores.items():
                result[name] = text_weights @ values / text_weights.sum(axis=1)
        result.update(self._tube_line(weights))
        result.update(self._change(weights))
        return result

    def _clinical(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        predicted, reference, valid = self._ce_inputs
        tp, fp, fn = binary_counts(predicted, reference, valid, weights)
        result: dict[str, np.ndarray] = {}
        common = [OBSERVATIONS.index(o) for o in COMMON_OBSERVATIONS]
        for suffix, columns in (("14", list(range(len(OBSERVATIONS)))), ("5", common)):
            for name, values in micro_macro(tp[:, columns], fp[:, columns], fn[:, columns]).items():
                result[f"CE-{name}-{suffix}"] = values
        _, _, f1 = precision_recall_f1(tp, fp, fn)
        for column, observation in enumerate(OBSERVATIONS):
            result[f"CE-F1/{observation}"] = f1[:, column]
        return result

    def _tube_line(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        predicted, reference = self.system.outputs.tube_line, self.references.table.tube_line
        if np.isnan(predicted).all() or np.isnan(reference).all():
            return {}
        result: dict[str, np.ndarray] = {}
        for column, label in enumerate(TUBE_LINE_LABELS):
            known = ~np.isnan(reference[:, column]) & ~np.isnan(predicted[:, column])
            truth = reference[known, column] > 0.5
            if truth.all() or not truth.any():
                continue
            result[f"AUC/{label}"] = roc_auc(predicted[known, column], truth, weights[:, known])
        if result:
            with np.errstate(invalid="ignore"), _quiet_nanmean():
                result["AUC-macro"] = np.nanmean(np.stack(list(result.values())), axis=0)
        for device, columns in TUBE_LINE_DEVICES.items():
            truth, guess = (
                device_status(reference[:, columns]),
                device_status(predicted[:, columns]),
            )
            if (truth >= 0).any():
                accuracy, _ = accuracy_and_macro_f1(guess, truth, len(columns) + 1, weights)
                result[f"StatusAcc/{device}"] = accuracy
        return result

    def _change(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        predicted, reference = self.system.outputs.change, self.references.table.change
        # A system that assesses no change at all (a text baseline) has no change metrics,
        # rather than a score of 0 that would read as measured.
        if (reference < 0).all() or (predicted < 0).all():
            return {}
        accuracies, f1s = {}, {}
        for column, finding in enumerate(CHANGE_FINDINGS):
            if (reference[:, column] >= 0).any():
                accuracies[finding], f1s[finding] = accuracy_and_macro_f1(
                    predicted[:, column], reference[:, column], len(CHANGE_CLASSES), weights
                )
        result = {f"ChangeAcc/{f}": v for f, v in accuracies.items()}
        result.update({f"ChangeF1/{f}": v for f, v in f1s.items()})
        with _quiet_nanmean():
            result["ChangeAcc-macro"] = np.nanmean(np.stack(list(accuracies.values())), axis=0)
            result["ChangeF1-macro"] = np.nanmean(np.stack(list(f1s.values())), axis=0)
        return result

    def change_confusions(self) -> dict[str, np.ndarray]:
        """Confusion matrix per finding with known references (reference x predicted)."""
        predicted, reference = self.system.outputs.change, self.references.table.change
        ones = np.ones((1, len(reference)))
        return {
            finding: confusion_matrices(
                predicted[:, c], reference[:, c], len(CHANGE_CLASSES), ones
            )[0]
            for c, finding in enumerate(CHANGE_FINDINGS)
            if (reference[:, c] >= 0).any()
        }


@contextlib.contextmanager
def _quiet_nanmean() -> Iterator[None]:
    """Silences numpy's warning for an all-NaN column in nanmean (the result is NaN, as meant)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def device_status(values: np.ndarray) -> np.ndarray:
    """Status index per study for one device's label columns (TUBE_LINE_LABELS order).

    The status is the first column at or above 0.5 when reading in the listed order (for each
    device the most severe status comes first), else "absent" (= number of columns) when the
    largest value is below 0.5; for probabilities the largest column decides when it is at
    or above 0.5. -1 where any column is unknown (NaN).
    """
    values = np.asarray(values, float)
    status = np.full(len(values), -1, dtype=int)
    known = ~np.isnan(values).any(axis=1)
    if not known.any():
        return status
    rows = values[known]
    binary = np.isin(rows, (0.0, 1.0)).all()
    if binary:
        present = rows >= 0.5
        first = np.argmax(present, axis=1)
        chosen = np.where(present.any(axis=1), first, rows.shape[1])
    else:
        best = np.argmax(rows, axis=1)
        chosen = np.where(rows.max(axis=1) >= 0.5, best, rows.shape[1])
    status[known] = chosen
    return status


@dataclass
class Evaluation:
    """Everything `cxr evaluate` reports."""

    systems: dict[str, dict[str, Estimate]]
    primary: str
    differences: dict[str, Estimate] = field(default_factory=dict)
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    metrics_by_system: dict[str, SystemMetrics] = field(default_factory=dict)


def match_studies(
    references: pd.DataFrame, predictions: Mapping[str, pd.DataFrame]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Ids present everywhere (in reference order), and (id, problem) for the others."""
    reference_ids = list(references["study_id"])
    common = set(reference_ids)
    for table in predictions.values():
        common &= set(table["study_id"])
    unmatched = []
    for name, table in predictions.items():
        ids = set(table["study_id"])
        unmatched += [(s, f"no prediction in {name}") for s in reference_ids if s not in ids]
        unmatched += [
            (s, f"prediction in {name} without reference")
            for s in table["study_id"]
            if s not in set(reference_ids)
        ]
    return [s for s in reference_ids if s in common], unmatched


def _aligned(table: pd.DataFrame, study_ids: Sequence[str]) -> pd.DataFrame:
    return table.set_index("study_id").loc[list(study_ids)].reset_index()


def build_references(table: pd.DataFrame, study_ids: Sequence[str], section: Section) -> References:
    """References aligned to the evaluated studies, with their bootstrap clusters."""
    aligned = _aligned(table, study_ids)
    patients = (
        aligned["patient_id"].tolist() if "patient_id" in aligned.columns else [None] * len(aligned)
    )
    known = [p is not None for p in patients]
    clusters = [
        f"patient:{p}" if p is not None else f"study:{s}"
        for p, s in zip(patients, study_ids, strict=True)
    ]
    return References(
        list(study_ids),
        clusters,
        all(known) and bool(known),
        StudyTable.from_frame(aligned, section),
    )


def _baseline_systems(
    references: References,
    train: pd.DataFrame,
    options: EvaluationOptions,
    features_path: str | None,
) -> list[System]:
    texts = [section_text(r, options.section) for r in train.to_dict("records")]
    n = len(references.study_ids)
    blank = StudyTable(
        [""] * n,
        np.full((n, len(TUBE_LINE_LABELS)), np.nan),
        np.full((n, len(CHANGE_FINDINGS)), -1),
    )
    constant = baselines.most_common_report(texts)
    retriever: baselines.ReportRetriever
    if features_path:
        retriever = baselines.FeatureRetriever(
            list(train["study_id"]), texts, baselines.read_features(features_path)
        )
    else:
        retriever = baselines.RandomRetriever(texts, options.seed)
    retrieved = retriever.retrieve(references.study_ids)
    return [
        System("most-common-report", StudyTable([constant] * n, blank.tube_line, blank.change)),
        System(retriever.name, StudyTable(retrieved, blank.tube_line, blank.change)),
    ]


def evaluate_files(
    predictions: str,
    references: Sequence[str],
    options: EvaluationOptions,
    compare: str | None = None,
    train_references: Sequence[str] = (),
    retrieval_features: str | None = None,
    scorers: Sequence[ModelScorer] = (),
    scorer_statuses: Sequence[ScorerStatus] = (),
) -> Evaluation:
    """Reads the files, matches studies, and computes every system's metrics with intervals."""
    reference_table = read_joined(references, split="test")
    prediction_tables = {"predictions": read_table(predictions)}
    if compare:
        prediction_tables["compare"] = read_table(compare)
    study_ids, unmatched = match_studies(reference_table, prediction_tables)
    if not study_ids:
        raise InputError(predictions, "no study_id in common with the references")
    refs = build_references(reference_table, study_ids, options.section)
    unmatched += [
        (s, "reference without text")
        for s, t in zip(study_ids, refs.table.texts, strict=True)
        if not t
    ]
    systems = [
        System(
            Path(predictions).stem,
            StudyTable.from_frame(
                _aligned(prediction_tables["predictions"], study_ids), options.section
            ),
        )
    ]
    if compare:
        systems.append(
            System(
                f"compare:{Path(compare).stem}",
                StudyTable.from_frame(
                    _aligned(prediction_tables["compare"], study_ids), options.section
                ),
            )
        )
    if train_references:
        systems += _baseline_systems(
            refs, read_joined(train_references, split="train"), options, retrieval_features
        )
    return evaluate_systems(
        systems, refs, options, unmatched, scorers, scorer_statuses, compare=bool(compare)
    )


def evaluate_systems(
    systems: Sequence[System],
    references: References,
    options: EvaluationOptions,
    unmatched: Sequence[tuple[str, str]] = (),
    scorers: Sequence[ModelScorer] = (),
    scorer_statuses: Sequence[ScorerStatus] = (),
    compare: bool = False,
) -> Evaluation:
    """Metrics with intervals for every system on the same resamples; the first is primary."""
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
    names = [s.name for s in systems]
    differences = (
        paired_differences(metrics[names[0]], metrics[names[1]], n, weights) if compare else {}
    )
    meteor_ran = "METEOR" in results[names[0]]
    info = {
        "studies_evaluated": n,
        "studies_with_reference_text": len(text_refs),
        "bootstrap_resamples": options.n_bootstrap,
        "seed": options.seed,
        "bootstrap_unit": "patient"
        if references.clusters_are_patients
        else "study (no patient_id for every study: each such study is its own cluster)",
        "clusters": len(set(references.clusters)),
        "section": options.section.value,
        "uncertain": options.uncertain.value,
        "tokenization": "cxr.evaluation.nlg.tokenize_report (lower-case, R2Gen-style punctuation handling)",
        "METEOR": "computed (java on PATH)"
        if meteor_ran
        else "unavailable: java not on PATH"
        if not java_available()
        else "not computed",
        "unmatched_ids": len(unmatched),
        "model_scorers": {s.name: s.note for s in scorer_statuses},
    }
    return Evaluation(results, names[0], differences, list(unmatched), info, metrics)


def _cell(estimate: Estimate | None) -> str:
    if estimate is None or np.isnan(estimate.value):
        return "-"
    if np.isnan(estimate.ci_low):
        return f"{estimate.value:.4f}"
    return f"{estimate.value:.4f} [{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]"


def format_table(evaluation: Evaluation) -> str:
    """Metrics as rows, systems (and the paired difference) as columns, plain text."""
    columns = list(evaluation.systems)
    if evaluation.differences:
        columns.append("difference")
    order = [*NLG_METRICS]
    for estimates in [*evaluation.systems.values(), evaluation.differences]:
        order += [m for m in estimates if m not in order]
    rows = [["metric", *columns]]
    for metric in order:
        cells = [_cell(evaluation.systems[c].get(metric)) for c in evaluation.systems]
        if evaluation.differences:
            cells.append(_cell(evaluation.differences.get(metric)))
        if any(c != "-" for c in cells):
            rows.append([metric, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _as_json(estimates: Mapping[str, Estimate]) -> dict[str, dict[str, float | None]]:
    return {name: e.to_dict() for name, e in estimates.items()}


def write_outputs(evaluation: Evaluation, output_dir: Path, make_plots: bool = True) -> list[Path]:
    """metrics.json (primary system), systems.json, differences.json, unmatched_ids.csv,
    run_info.json and the PNG plots."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def dump(name: str, content: Any) -> None:
        path = output_dir / name
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        written.append(path)

    dump("metrics.json", _as_json(evaluation.systems[evaluation.primary]))
    dump("systems.json", {s: _as_json(e) for s, e in evaluation.systems.items()})
    if evaluation.differences:
        dump("differences.json", _as_json(evaluation.differences))
    dump("run_info.json", evaluation.info)
    unmatched_path = output_dir / "unmatched_ids.csv"
    pd.DataFrame(evaluation.unmatched, columns=["study_id", "problem"]).to_csv(
        unmatched_path, index=False
    )
    written.append(unmatched_path)
    if make_plots:
        written += _write_plots(evaluation, output_dir)
    return written


def _write_plots(evaluation: Evaluation, output_dir: Path) -> list[Path]:
    written = []
    primary = evaluation.metrics_by_system[evaluation.primary]
    estimates = evaluation.systems[evaluation.primary]
    aucs = {k.removeprefix("AUC/"): e.value for k, e in estimates.items() if k.startswith("AUC/")}
    if aucs:
        figure = plots.plot_roc_curves(
            primary.system.outputs.tube_line,
            primary.references.table.tube_line,
            TUBE_LINE_LABELS,
            aucs,
        )
        written.append(plots.save_figure(figure, output_dir / "tube_line_roc.png"))
    confusions = primary.change_confusions()
    if confusions:
        figure = plots.plot_confusion_matrices(confusions, CHANGE_CLASSES)
        written.append(plots.save_figure(figure, output_dir / "change_confusion.png"))
    f1 = {
        system: {
            k.removeprefix("CE-F1/"): e.value for k, e in values.items() if k.startswith("CE-F1/")
        }
        for system, values in evaluation.systems.items()
    }
    if any(f1.values()):
        figure = plots.plot_observation_f1({s: v for s, v in f1.items() if v})
        written.append(plots.save_figure(figure, output_dir / "observation_f1.png"))
    return written
