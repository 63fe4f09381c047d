"""Evaluation figures (matplotlib), reusable from notebooks.

Each function draws onto a new figure and returns it; `save_figure` writes a PNG and closes it.
The backend is left to matplotlib: Agg where there is no display, inline in Jupyter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    sorted_scores, sorted_labels = np.asarray(scores, float)[order], np.asarray(labels, bool)[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tp = np.cumsum(sorted_labels)[last_of_tie]
    fp = np.cumsum(~sorted_labels)[last_of_tie]
    positives, negatives = max(int(sorted_labels.sum()), 1), max(int((~sorted_labels).sum()), 1)
    return np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]


def plot_roc_curves(
    scores: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    aucs: Mapping[str, float] | None = None,
    title: str = "Tube/line ROC",
) -> Figure:
    """ROC curve per label (columns of `scores`/`labels`; NaN labels are left out), each
    labelled with its AUC from `aucs` when given."""
    figure, axes = plt.subplots(figsize=(6, 6))
    for column, name in enumerate(names):
        known = ~np.isnan(labels[:, column]) & ~np.isnan(scores[:, column])
        truth = labels[known, column] > 0.5
        if truth.all() or not truth.any():
            continue
        fpr, tpr = roc_curve(scores[known, column], truth)
        auc = f" ({aucs[name]:.3f})" if aucs and name in aucs else ""
        axes.plot(fpr, tpr, label=f"{name}{auc}")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axes.legend(fontsize=7, loc="lower right")
    return figure


def plot_confusion_matrices(
    matrices: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    macro_accuracies: Mapping[str, float] | None = None,
) -> Figure:
    """One confusion matrix (reference rows x predicted columns) per finding, titled with the
    finding's change macro accuracy from `macro_accuracies` when given."""
    count = max(len(matrices), 1)
    figure, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.4), squeeze=False)
    for axis, (finding, matrix) in zip(axes[0], matrices.items(), strict=False):
        axis.imshow(matrix, cmap="Blues")
        for (row, column), value in np.ndenumerate(matrix):
            axis.text(column, row, f"{value:g}", ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(class_names)), class_names, rotation=45, fontsize=7)
        axis.set_yticks(range(len(class_names)), class_names, fontsize=7)
        score = (macro_accuracies or {}).get(finding)
        title = finding if score is None else f"{finding}\nmacro acc {score:.3f}"
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("reference", fontsize=8)
    figure.tight_layout()
    return figure


def plot_observation_f1(f1_by_system: Mapping[str, Mapping[str, float]]) -> Figure:
    """Grouped bars of per-observation F1, one bar per system."""
    observations = list(next(iter(f1_by_system.values()), {}).keys())
    figure, axes = plt.subplots(figsize=(max(6.0, 0.6 * len(observations) + 2), 4))
    width = 0.8 / max(len(f1_by_system), 1)
    positions = np.arange(len(observations))
    for index, (system, values) in enumerate(f1_by_system.items()):
        heights = [values.get(o, np.nan) for o in observations]
        axes.bar(positions + index * width, heights, width, label=system)
    axes.set_xticks(
        positions + width * (len(f1_by_system) - 1) / 2, observations, rotation=60, ha="right"
    )
    axes.set(ylabel="F1", ylim=(0, 1), title="Clinical efficacy per observation")
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Writes the figure as PNG and closes it."""
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
