"""Figures and tables for exploring predictions in notebooks.

A study's images beside its report (`show_study`), the tube/line and change calls as tables
(`tube_line_table`, `change_table`), prior against current (`show_prior_comparison`), and the
evaluation figures drawn from the files `cxr generate` and `cxr evaluate` write. The
evaluation figures themselves are `cxr.evaluation.plots`; this module gathers their inputs.

Everything that takes a prediction accepts a `Prediction`, or one row of reports.jsonl /
reports.csv (a mapping or a pandas Series); image paths that are relative are resolved
against `image_root` (the folder `cxr generate` ran in).
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge

from cxr.errors import InputError, UnreadableImage
from cxr.evaluation import plots
from cxr.evaluation.bootstrap import Estimate
from cxr.evaluation.classification import confusion_matrices
from cxr.evaluation.labeler import OBSERVATIONS, label_changes, label_reports
from cxr.evaluation.nlg import tokenize_report
from cxr.evaluation.records import read_joined, read_table
from cxr.evaluation.run import CHANGE_CLASSES, Section, StudyTable, match_studies, section_text
from cxr.inference.outputs import Prediction
from cxr.io import read_image
from cxr.types import (
    CHANGE_FINDINGS,
    IMAGE_SLOTS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
    Study,
    change_column,
)

PredictionLike = Prediction | Mapping[str, Any] | pd.Series
ReferenceLike = str | Study | Mapping[str, Any] | pd.Series

NOT_ASSESSED = "not assessed"
SLOT_TITLES = {"frontal": "frontal", "lateral": "lateral", "prior_frontal": "prior frontal"}
CHANGE_COLOURS = {"improving": "tab:green", "stable": "tab:gray", "worsening": "tab:red"}
_TEXT_WIDTH = 56


# --- rows ---------------------------------------------------------------------------------


def as_row(prediction: PredictionLike) -> dict[str, Any]:
    """The flat reports.jsonl row of a prediction (a row is returned as a plain dict)."""
    if isinstance(prediction, Prediction):
        return prediction.to_row()
    if isinstance(prediction, pd.Series):
        return {str(key): value for key, value in prediction.items()}
    return dict(prediction)


def reference_row(study: Study) -> dict[str, Any]:
    """A study's known targets as one flat row shaped like labels.csv plus the report text."""
    targets = study.targets
    row: dict[str, Any] = {
        "study_id": study.study_id,
        "patient_id": study.patient_id,
        "findings": targets.findings or "",
        "impression": targets.impression or "",
    }
    row.update(zip(TUBE_LINE_LABELS, targets.tube_line.tolist(), strict=True))
    for finding, code in zip(CHANGE_FINDINGS, targets.change.tolist(), strict=True):
        row[change_column(finding)] = Change(code).name.lower() if code >= 0 else ""
    return row


def _missing(value: Any) -> bool:
    """None, an empty text, or a scalar NaN / pd.NA (CSV and DataFrame rows hold those)."""
    if isinstance(value, str):
        return not value
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _number(value: Any) -> float:
    return math.nan if _missing(value) else float(value)


def report_text(prediction: PredictionLike) -> str:
    """Findings and impression of a prediction or row (else its `report` column), labelled."""
    row = as_row(prediction)
    parts = [
        f"{name.upper()}: {row[name]}"
        for name in ("findings", "impression")
        if not _missing(row.get(name))
    ]
    if not parts and not _missing(row.get("report")):
        parts = [str(row["report"])]
    return "\n".join(parts)


def _reference_text(reference: ReferenceLike | None) -> str | None:
    if reference is None:
        return None
    if isinstance(reference, str):
        return reference
    if isinstance(reference, Study):
        return report_text(reference_row(reference))
    return report_text(as_row(reference))


def _reference_labels(reference: ReferenceLike | None) -> dict[str, Any] | None:
    if reference is None or isinstance(reference, str):
        return None
    return reference_row(reference) if isinstance(reference, Study) else as_row(reference)


# --- images -------------------------------------------------------------------------------


def image_paths(source: Study | PredictionLike, image_root: Path | None = None) -> dict[str, Path]:
    """The study's image paths by slot (frontal, lateral, prior_frontal), present ones only.

    Args:
        source: a Study, a Prediction, or a reports.jsonl row (columns `<slot>_image`).
        image_root: folder that relative paths start from; None keeps them as they are.
    """
    if isinstance(source, Study):
        found = {slot: getattr(source.images, slot) for slot in IMAGE_SLOTS}
    else:
        row = as_row(source)
        found = {slot: row.get(f"{slot}_image") for slot in IMAGE_SLOTS}
    paths = {}
    for slot, path in found.items():
        if _missing(path):
            continue
        resolved = Path(path)
        if image_root is not None and not resolved.is_absolute():
            resolved = Path(image_root) / resolved
        paths[slot] = resolved
    return paths


def _draw_image(axes: Axes, path: Path | None, title: str) -> None:
    axes.set_axis_off()
    axes.set_title(title, fontsize=9)
    if path is None:
        axes.text(0.5, 0.5, "missing", ha="center", va="center", color="grey")
        return
    try:
        pixels = read_image(path).pixels
    except UnreadableImage as error:
        # One bad file should not stop a notebook: say why in place of the image.
        axes.text(
            0.5,
            0.5,
            textwrap.fill(f"unreadable: {error.reason}", 30),
            ha="center",
            va="center",
            color="tab:red",
            fontsize=7,
        )
        return
    axes.imshow(pixels, cmap="gray", vmin=0.0, vmax=1.0)


def _draw_text(axes: Axes, sections: Sequence[tuple[str, str]]) -> None:
    axes.set_axis_off()
    blocks = []
    for heading, text in sections:
        paragraphs = [textwrap.fill(p, _TEXT_WIDTH) for p in (text or "(empty)").splitlines()]
        blocks.append(f"{heading}\n" + "\n".join(paragraphs))
    axes.text(0.0, 1.0, "\n\n".join(blocks), va="top", ha="left", fontsize=8, family="monospace")


def show_study(
    source: Study | PredictionLike,
    reference: ReferenceLike | None = None,
    image_root: Path | None = None,
    slots: Sequence[str] = IMAGE_SLOTS,
) -> Figure:
    """The study's images (frontal, lateral, prior) beside its generated and reference report.

    Args:
        source: a Prediction or reports.jsonl row (its text is the generated report), or a
            Study (its known report is shown as the reference).
        reference: the reference report: text, a Study, or a row with findings/impression.
        image_root: folder that relative image paths start from.
        slots: image slots to draw, in order; a missing image is drawn as a labelled blank.
    """
    paths = image_paths(source, image_root)
    sections: list[tuple[str, str]] = []
    if isinstance(source, Study):
        study_id = source.study_id
        reference = source if reference is None else reference
    else:
        row = as_row(source)
        study_id = str(row.get("study_id", ""))
        sections.append(("GENERATED", report_text(row)))
    reference_text = _reference_text(reference)
    if reference_text is not None:
        sections.append(("REFERENCE", reference_text))
    figure, grid = plt.subplots(
        1,
        len(slots) + 1,
        figsize=(3.0 * len(slots) + 5.0, 3.6),
        gridspec_kw={"width_ratios": [1.0] * len(slots) + [1.8]},
        squeeze=False,
    )
    axes = grid[0]
    for axis, slot in zip(axes[:-1], slots, strict=True):
        _draw_image(axis, paths.get(slot), SLOT_TITLES.get(slot, slot))
    _draw_text(axes[-1], sections)
    figure.suptitle(study_id, fontsize=9)
    figure.tight_layout()
    return figure


# --- tube/line and change calls -------------------------------------------------------------


def _device_of(label_index: int) -> str:
    return next(d for d, indices in TUBE_LINE_DEVICES.items() if label_index in indices)


def _status_of(label: str) -> str:
    return label.split(" - ", 1)[1] if " - " in label else "present"


def tube_line_table(
    prediction: PredictionLike, reference: ReferenceLike | None = None
) -> pd.DataFrame:
    """One row per tube/line label: device, status, probability, and whether it is the call.

    The call per device is the `<device> status` of the prediction (the most probable status
    above its threshold, or absent). With a reference (a labels row or a Study) a `reference`
    column holds the known label (NaN when unknown).
    """
    row = as_row(prediction)
    labels = _reference_labels(reference)
    records = []
    for index, label in enumerate(TUBE_LINE_LABELS):
        device, status = _device_of(index), _status_of(label)
        record = {
            "label": label,
            "device": device,
            "status": status,
            "probability": _number(row.get(label)),
            "called": row.get(f"{device} status") == status,
        }
        if labels is not None:
            value = labels.get(label)
            record["reference"] = _number(value)
        records.append(record)
    return pd.DataFrame(records).set_index("label")


def change_table(
    prediction: PredictionLike, reference: ReferenceLike | None = None
) -> pd.DataFrame:
    """One row per change finding: the call, the change head's probabilities, what the
    generated report states about change (`cxr.evaluation.labeler.label_changes`), and with a
    reference (a labels row or a Study) the known progression.

    A study without a prior is not assessed: its call reads "not assessed", its
    probabilities are NaN.
    """
    row = as_row(prediction)
    stated = label_changes([report_text(row)]).iloc[0]
    labels = _reference_labels(reference)
    records = []
    for finding in CHANGE_FINDINGS:
        column = change_column(finding)
        call = row.get(column)
        record: dict[str, Any] = {
            "finding": finding,
            "call": NOT_ASSESSED if _missing(call) else str(call),
        }
        for name in CHANGE_CLASSES:
            record[name] = _number(row.get(f"{column}_prob_{name}"))
        record["stated in report"] = stated[finding] or ""
        if labels is not None:
            known = labels.get(column)
            record["reference"] = "" if _missing(known) else str(known)
        records.append(record)
    return pd.DataFrame(records).set_index("finding")


def change_summary(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per finding over a predictions table: how often the change head made each call, how
    many generated reports state a change for the finding, and how many of those agree with
    the head's call. Studies without a prior count as "not assessed"."""
    rows = [as_row(row) for _, row in predictions.iterrows()]
    stated = label_changes(report_text(row) for row in rows)
    records = []
    for finding in CHANGE_FINDINGS:
        column = change_column(finding)
        calls = np.array(
            [NOT_ASSESSED if _missing(r.get(column)) else str(r[column]) for r in rows],
            dtype=object,
        )
        said = stated[finding]
        record: dict[str, Any] = {"finding": finding}
        record.update(
            {name: int((calls == name).sum()) for name in (*CHANGE_CLASSES, NOT_ASSESSED)}
        )
        record["report states"] = int(said.notna().sum())
        record["report agrees"] = int((said.to_numpy() == calls).sum())
        records.append(record)
    return pd.DataFrame(records).set_index("finding")


def plot_change_probabilities(prediction: PredictionLike, axes: Axes | None = None) -> Figure:
    """Stacked bars of P(improving), P(stable), P(worsening) per finding.

    Args:
        prediction: a Prediction or reports.jsonl row.
        axes: axes to draw into; None makes a new figure.
    """
    if axes is None:
        _, axes = plt.subplots(figsize=(4.5, 2.6))
    table = change_table(prediction)
    positions = np.arange(len(table))
    left = np.zeros(len(table))
    for name in CHANGE_CLASSES:
        widths = table[name].fillna(0.0).to_numpy(float)
        axes.barh(positions, widths, left=left, color=CHANGE_COLOURS[name], label=name)
        left += widths
    axes.set_yticks(positions, list(table.index), fontsize=8)
    axes.invert_yaxis()
    axes.set(xlim=(0, 1), xlabel="probability")
    if table[list(CHANGE_CLASSES)].isna().all().all():
        axes.text(
            0.5,
            0.5,
            "not assessed (no prior)",
            transform=axes.transAxes,
            ha="center",
            va="center",
            color="grey",
        )
    else:
        axes.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    figure = axes.get_figure()
    assert isinstance(figure, Figure)
    return figure


def show_prior_comparison(prediction: PredictionLike, image_root: Path | None = None) -> Figure:
    """Prior and current frontal image side by side, with the change head's probabilities."""
    row = as_row(prediction)
    paths = image_paths(row, image_root)
    figure, axes = plt.subplots(
        1, 3, figsize=(11.0, 3.6), gridspec_kw={"width_ratios": [1.0, 1.0, 1.4]}
    )
    _draw_image(axes[0], paths.get("prior_frontal"), "prior")
    _draw_image(axes[1], paths.get("frontal"), "current")
    plot_change_probabilities(row, axes[2])
    prior = row.get("prior_study_id")
    figure.suptitle(
        f"{row.get('study_id', '')} (prior: {'none' if _missing(prior) else prior})", fontsize=9
    )
    figure.tight_layout()
    return figure


# --- evaluation outputs -------------------------------------------------------------------


@dataclass
class EvaluationOutputs:
    """What `cxr evaluate` wrote: every system's metrics (the first is the evaluated model)
    and the run information."""

    systems: dict[str, dict[str, Estimate]]
    info: dict[str, Any]

    @property
    def primary(self) -> str:
        return next(iter(self.systems))

    def aucs(self) -> dict[str, float]:
        """Tube/line AUC per label of the primary system."""
        return {
            name.removeprefix("AUC/"): estimate.value
            for name, estimate in self.systems[self.primary].items()
            if name.startswith("AUC/")
        }

    def observation_f1(self) -> dict[str, dict[str, float]]:
        """Clinical-efficacy F1 per observation, per system that has it."""
        f1 = {
            system: {
                name.removeprefix("CE-F1/"): e.value
                for name, e in metrics.items()
                if name.startswith("CE-F1/")
            }
            for system, metrics in self.systems.items()
        }
        return {system: values for system, values in f1.items() if values}


def _estimate(values: Mapping[str, float | None]) -> Estimate:
    def number(key: str) -> float:
        value = values.get(key)
        return math.nan if value is None else float(value)

    return Estimate(number("value"), number("ci_low"), number("ci_high"))


def read_evaluation(eval_dir: Path) -> EvaluationOutputs:
    """Reads systems.json and run_info.json of a `cxr evaluate` output folder."""
    eval_dir = Path(eval_dir)
    systems_path = eval_dir / "systems.json"
    if not systems_path.is_file():
        raise InputError(systems_path, "missing; is this a folder written by `cxr evaluate`?")
    raw = json.loads(systems_path.read_text(encoding="utf-8"))
    systems = {
        system: {name: _estimate(values) for name, values in metrics.items()}
        for system, metrics in raw.items()
    }
    info_path = eval_dir / "run_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    return EvaluationOutputs(systems, info)


def _cell(estimate: Estimate | None) -> str:
    if estimate is None or math.isnan(estimate.value):
        return "-"
    if math.isnan(estimate.ci_low):
        return f"{estimate.value:.3f}"
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def metrics_table(
    evaluation: EvaluationOutputs, metrics: Sequence[str] | None = None, detail: bool = False
) -> pd.DataFrame:
    """Metrics as rows, systems as columns, cells "value [95% interval]" ("-" when absent).

    Args:
        evaluation: from `read_evaluation`.
        metrics: the metric names to show, in order; None shows every metric.
        detail: with `metrics` None, also show per-label metrics (names with a "/").
    """
    if metrics is None:
        names: list[str] = []
        for estimates in evaluation.systems.values():
            names += [m for m in estimates if m not in names and (detail or "/" not in m)]
        metrics = names
    cells = {
        system: [_cell(estimates.get(metric)) for metric in metrics]
        for system, estimates in evaluation.systems.items()
    }
    return pd.DataFrame(cells, index=pd.Index(list(metrics), name="metric"))


def matched_results(
    predictions: str | Path, references: Sequence[str | Path]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and references of the studies in both, aligned row by row (reference order).

    Args:
        predictions: `cxr generate` output (reports.jsonl or reports.csv).
        references: reference files joined on study_id (e.g. reports.jsonl and labels.csv).
    """
    reference_table = read_joined([str(p) for p in references])
    prediction_table = read_table(predictions)
    study_ids, _ = match_studies(reference_table, {"predictions": prediction_table})
    if not study_ids:
        raise InputError(predictions, "no study_id in common with the references")

    def aligned(table: pd.DataFrame) -> pd.DataFrame:
        return table.set_index("study_id").loc[study_ids].reset_index()

    return aligned(prediction_table), aligned(reference_table)


def plot_tube_line_roc(
    predictions: pd.DataFrame, references: pd.DataFrame, aucs: Mapping[str, float] | None = None
) -> Figure:
    """ROC curve per tube/line label (labels without both classes in the references are left
    out), from the aligned tables of `matched_results`."""
    scores = StudyTable.from_frame(predictions, Section.REPORT).tube_line
    labels = StudyTable.from_frame(references, Section.REPORT).tube_line
    return plots.plot_roc_curves(scores, labels, TUBE_LINE_LABELS, aucs)


def change_confusions(predictions: pd.DataFrame, references: pd.DataFrame) -> dict[str, np.ndarray]:
    """Change confusion matrix (reference rows x predicted columns) per finding with a known
    reference, from the aligned tables of `matched_results`."""
    predicted = StudyTable.from_frame(predictions, Section.REPORT).change
    reference = StudyTable.from_frame(references, Section.REPORT).change
    ones = np.ones((1, len(reference)))
    return {
        finding: confusion_matrices(predicted[:, c], reference[:, c], len(CHANGE_CLASSES), ones)[0]
        for c, finding in enumerate(CHANGE_FINDINGS)
        if (reference[:, c] >= 0).any()
    }


def plot_change_confusion(predictions: pd.DataFrame, references: pd.DataFrame) -> Figure:
    """Change confusion matrices per finding, from the aligned tables of `matched_results`."""
    return plots.plot_confusion_matrices(change_confusions(predictions, references), CHANGE_CLASSES)


def plot_observation_f1(evaluation: EvaluationOutputs) -> Figure:
    """Per-observation clinical-efficacy F1 bars, one bar per system (baselines included)."""
    return plots.plot_observation_f1(evaluation.observation_f1())


def study_scores(
    predictions: pd.DataFrame, references: pd.DataFrame, section: str = "report"
) -> pd.DataFrame:
    """Per-study scores of the aligned tables, worst first (lowest ROUGE-L, then BLEU-4).

    ROUGE-L and BLEU-4 are pycocoevalcap's per-study values on `tokenize_report` text
    (BLEU-4 of one study is sentence-level and often 0); `CE mismatches` counts the CheXpert
    observations whose positive mention differs between the two reports (uncertain counts as
    negative, as `cxr evaluate` does by default). Studies without reference text are left out.

    Args:
        predictions: aligned predictions, from `matched_results`.
        references: aligned references, from `matched_results`.
        section: findings, impression or report (both).
    """
    chosen = Section(section)
    hypotheses = [section_text(r, chosen) for r in predictions.to_dict("records")]
    texts = [section_text(r, chosen) for r in references.to_dict("records")]
    keep = [i for i, text in enumerate(texts) if text]
    hyp_tokens = [tokenize_report(hypotheses[i]) for i in keep]
    ref_tokens = [tokenize_report(texts[i]) for i in keep]
    rouge, bleu = _per_study_nlg(hyp_tokens, ref_tokens)
    predicted = label_reports(hypotheses[i] for i in keep)[list(OBSERVATIONS)].to_numpy(float)
    reference = label_reports(texts[i] for i in keep)[list(OBSERVATIONS)].to_numpy(float)
    table = pd.DataFrame(
        {
            "study_id": predictions["study_id"].iloc[keep].to_numpy(),
            "ROUGE-L": rouge,
            "BLEU-4": bleu,
            "CE mismatches": ((predicted == 1.0) != (reference == 1.0)).sum(axis=1),
        }
    )
    return table.sort_values(["ROUGE-L", "BLEU-4"], kind="stable").set_index("study_id")


def _per_study_nlg(hypotheses: list[str], references: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """pycocoevalcap's per-study ROUGE-L and BLEU-4; an empty text (which its scorers reject)
    scores 0."""
    rouge, bleu = np.zeros(len(hypotheses)), np.zeros(len(hypotheses))
    scored = [i for i, (h, r) in enumerate(zip(hypotheses, references, strict=True)) if h and r]
    if scored:
        gts = {str(i): [references[i]] for i in scored}
        res = {str(i): [hypotheses[i]] for i in scored}
        rouge[scored] = Rouge().compute_score(gts, res)[1]
        bleu[scored] = Bleu(4).compute_score(gts, res, verbose=0)[1][3]
    return rouge, bleu
