"""An evaluation explored in a notebook: its metrics table, tube/line and findings-head ROC
curves, change confusion matrices (titled with the MS-CXR-T macro accuracy), per-observation
F1 and per-study scores.

Everything here calls cxr.evaluation's own functions (the same cell format, matching,
confusion matrices and per-study NLG as `cxr evaluate`), so a notebook cannot disagree with
the command. Read an output folder with `cxr.evaluation.outputs.read_evaluation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from cxr.evaluation import plots
from cxr.evaluation.change_metrics import (
    CHANGE_CLASSES,
    change_confusions,
    change_macro_accuracies,
)
from cxr.evaluation.clinical_efficacy import UncertainMapping, observation_mismatches
from cxr.evaluation.evaluate import Evaluation
from cxr.evaluation.labeler import label_reports
from cxr.evaluation.metric_keys import BLEU_4, ROUGE_L, PerSubject, is_per_subject
from cxr.evaluation.nlg import per_study_scores, tokenize_report
from cxr.evaluation.outputs import format_estimate
from cxr.evaluation.studies import (
    Section,
    change_codes,
    observation_labels,
    observation_probabilities,
    read_matched,
    section_text,
    tube_line_values,
)
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, TUBE_LINE_LABELS


def metrics_table(
    evaluation: Evaluation, metrics: Sequence[str] | None = None, detail: bool = False
) -> pd.DataFrame:
    """Metrics as rows, systems as columns, cells as `cxr evaluate` prints them.

    Args:
        evaluation: from `cxr.evaluation.outputs.read_evaluation`.
        metrics: the metric names to show, in order (e.g. `evaluation.metric_names(families)`);
            None shows every metric.
        detail: with `metrics` None, also show the per-subject metrics (per label, device,
            observation and finding).
    """
    if metrics is None:
        metrics = [m for m in evaluation.metric_names() if detail or not is_per_subject(m)]
    cells = {
        system: [format_estimate(estimates.get(metric)) for metric in metrics]
        for system, estimates in evaluation.systems.items()
    }
    return pd.DataFrame(cells, index=pd.Index(list(metrics), name="metric"))


def matched_results(
    predictions: str | Path, references: Sequence[str | Path]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and references of the studies in both, aligned row by row (reference
    order), matched as `cxr evaluate` matches them.

    Args:
        predictions: `cxr generate` output (reports.jsonl or reports.csv).
        references: reference files joined on study_id (e.g. reports.jsonl and labels.csv).
    """
    matched = read_matched({"predictions": predictions}, references)
    return matched.predictions["predictions"], matched.references


def plot_tube_line_roc(
    predictions: pd.DataFrame, references: pd.DataFrame, aucs: Mapping[str, float] | None = None
) -> Figure:
    """ROC curve per tube/line label (labels without both classes in the references are left
    out), from the aligned tables of `matched_results`."""
    return plots.plot_roc_curves(
        tube_line_values(predictions), tube_line_values(references), TUBE_LINE_LABELS, aucs
    )


def plot_findings_roc(
    predictions: pd.DataFrame,
    references: pd.DataFrame,
    aucs: Mapping[str, float] | None = None,
    uncertain: str = "negative",
) -> Figure:
    """ROC curve per findings-head observation (observations without both classes in the
    references are left out), from the aligned tables of `matched_results`.

    Args:
        predictions: aligned predictions with the OBSERVATIONS probability columns.
        references: aligned references with the OBSERVATIONS label columns.
        aucs: {observation: AUC} for the legend, e.g. `evaluation.per_subject(FINDINGS_AUC)`.
        uncertain: how a -1 reference label counts (positive, negative, ignore), as the
            evaluation's --uncertain (`evaluation.info["uncertain"]`).
    """
    labels = UncertainMapping(uncertain).resolve(observation_labels(references))
    return plots.plot_roc_curves(
        observation_probabilities(predictions), labels, OBSERVATIONS, aucs, "Findings-head ROC"
    )


def plot_change_confusion(predictions: pd.DataFrame, references: pd.DataFrame) -> Figure:
    """Change confusion matrices per finding, from the aligned tables of `matched_results`,
    each titled with the finding's MS-CXR-T macro accuracy (`change_macro_accuracies`, the
    values `cxr evaluate` reports as ChangeMacroAcc/<finding>)."""
    predicted, reference = change_codes(predictions), change_codes(references)
    matrices = change_confusions(predicted, reference)
    scores = change_macro_accuracies(reference=reference, predicted=predicted)
    macro_accuracies = dict(zip(CHANGE_FINDINGS, scores, strict=True))
    return plots.plot_confusion_matrices(
        matrices, CHANGE_CLASSES, {f: macro_accuracies[f] for f in matrices}
    )


def plot_observation_f1(evaluation: Evaluation) -> Figure:
    """Per-observation clinical-efficacy F1 bars, one bar per system (baselines included)."""
    return plots.plot_observation_f1(evaluation.per_subject_by_system(PerSubject.OBSERVATION_F1))


def study_scores(
    predictions: pd.DataFrame, references: pd.DataFrame, section: str = "report"
) -> pd.DataFrame:
    """Per-study scores of the aligned tables, worst first (lowest ROUGE-L, then BLEU-4).

    ROUGE-L and BLEU-4 are `cxr.evaluation.nlg.per_study_scores`; `CE mismatches` counts the
    CheXpert observations whose positive mention differs between the two reports (uncertain
    counts as negative, as `cxr evaluate` does by default). Studies without reference text are
    left out.

    Args:
        predictions: aligned predictions, from `matched_results`.
        references: aligned references, from `matched_results`.
        section: findings, impression or report (both).
    """
    chosen = Section(section)
    hypotheses = [section_text(r, chosen) for r in predictions.to_dict("records")]
    texts = [section_text(r, chosen) for r in references.to_dict("records")]
    keep = [i for i, text in enumerate(texts) if text]
    kept_hypotheses, kept_texts = [hypotheses[i] for i in keep], [texts[i] for i in keep]
    scores = per_study_scores(
        [tokenize_report(t) for t in kept_hypotheses], [tokenize_report(t) for t in kept_texts]
    )
    table = pd.DataFrame(
        {
            "study_id": predictions["study_id"].iloc[keep].to_numpy(),
            ROUGE_L: scores[ROUGE_L],
            BLEU_4: scores[BLEU_4],
            "CE mismatches": observation_mismatches(
                label_reports(kept_hypotheses), label_reports(kept_texts)
            ),
        }
    )
    return table.sort_values([ROUGE_L, BLEU_4], kind="stable").set_index("study_id")
