"""The tube/line, findings and change heads' calls of a prediction, as tables and bars.

The calls shown are the ones `cxr evaluate` scores: a device's status as the prediction
writes it (`cxr.evaluation.studies.predicted_statuses`), a findings-head call by
`cxr.evaluation.report_head_consistency.head_present`, a change label read by
`cxr.evaluation.studies.change_code`; what a report states is the labeler's reading of the
scored text (`section_text`).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.labeler import label_changes, label_reports
from cxr.evaluation.records import cell_number
from cxr.evaluation.report_head_consistency import agreement_cells, head_present
from cxr.evaluation.studies import (
    Section,
    change_code,
    observation_probabilities,
    predicted_statuses,
    section_text,
)
from cxr.inference.outputs import change_probability_column
from cxr.tube_line import label_status
from cxr.types import (
    CHANGE_FINDINGS,
    CHANGE_UNKNOWN,
    NOT_ASSESSED,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
    change_column,
)
from cxr.viz.rows import PredictionLike, ReferenceLike, as_row, reference_labels

CHANGE_COLOURS = {
    Change.IMPROVING: "tab:green",
    Change.STABLE: "tab:gray",
    Change.WORSENING: "tab:red",
}


def _change_name(value: Any, unknown: str) -> str:
    code = change_code(value)
    return unknown if code == CHANGE_UNKNOWN else Change.from_code(code).value


def tube_line_table(
    prediction: PredictionLike, reference: ReferenceLike | None = None
) -> pd.DataFrame:
    """One row per tube/line label: device, status, probability, and whether it is the
    device's status (`called`; none called: absent, or not assessed). With a reference (a
    labels row or a Study) a `reference` column holds the known label (NaN when unknown).
    """
    row = as_row(prediction)
    statuses = predicted_statuses(pd.DataFrame([row]))
    labels = reference_labels(reference)
    records = []
    for device, indices in TUBE_LINE_DEVICES.items():
        for index in indices:
            label = TUBE_LINE_LABELS[index]
            record = {
                "label": label,
                "device": device,
                "status": label_status(label),
                "probability": cell_number(row.get(label)),
                "called": statuses[device][0] == label_status(label),
            }
            if labels is not None:
                record["reference"] = cell_number(labels.get(label))
            records.append(record)
    return pd.DataFrame(records).set_index("label")


_STATED = {1.0: "present", 0.0: "absent", -1.0: "uncertain"}


def findings_table(
    prediction: PredictionLike,
    reference: ReferenceLike | None = None,
    uncertain: str = "negative",
    section: str = "report",
) -> pd.DataFrame:
    """One row per CheXpert observation: the findings head's `probability` and `call`
    (present at >= OBSERVATION_THRESHOLD, "not assessed" without a probability), what the
    generated report states (`stated in report`: the labeler's present, absent, uncertain, or
    "" when not mentioned), and whether the two agree as report-to-head consistency counts it
    (`agrees`; <NA> where that cell is left out). With a reference (a labels row or a Study) a
    `reference` column holds its label (1, 0, -1 uncertain; NaN unknown).

    Args:
        prediction: a Prediction or reports.jsonl row.
        reference: the study's labels, or None.
        uncertain: how an uncertain mention counts (positive, negative, ignore), as the
            evaluation's --uncertain.
        section: the text the labeler reads (findings, impression or report), as --section.
    """
    row = as_row(prediction)
    probabilities = observation_probabilities(pd.DataFrame([row]))
    stated = label_reports([section_text(row, Section(section))])
    agree, counted = agreement_cells(stated, probabilities, UncertainMapping(uncertain))
    present = head_present(probabilities)[0]
    labels = reference_labels(reference)
    records = []
    for column, observation in enumerate(OBSERVATIONS):
        probability = float(probabilities[0, column])
        called = "present" if present[column] else "absent"
        record: dict[str, Any] = {
            "observation": observation,
            "probability": probability,
            "call": NOT_ASSESSED if np.isnan(probability) else called,
            "stated in report": _STATED.get(float(stated[observation].iloc[0]), ""),
            "agrees": bool(agree[0, column]) if counted[0, column] else pd.NA,
        }
        if labels is not None:
            record["reference"] = cell_number(labels.get(observation))
        records.append(record)
    table = pd.DataFrame(records).set_index("observation")
    table["agrees"] = table["agrees"].astype("boolean")
    return table


def change_table(
    prediction: PredictionLike, reference: ReferenceLike | None = None
) -> pd.DataFrame:
    """One row per change finding: the call, the change head's probabilities, what the
    generated report states about change (`cxr.evaluation.labeler.label_changes`), and with a
    reference (a labels row or a Study) the known progression ("" when unknown).

    A study without a prior is not assessed: its call reads "not assessed", its
    probabilities are NaN.
    """
    row = as_row(prediction)
    stated = label_changes([section_text(row, Section.REPORT)]).iloc[0]
    labels = reference_labels(reference)
    records = []
    for finding in CHANGE_FINDINGS:
        column = change_column(finding)
        record: dict[str, Any] = {
            "finding": finding,
            "call": _change_name(row.get(column), NOT_ASSESSED),
        }
        for change in Change:
            record[change.value] = cell_number(row.get(change_probability_column(finding, change)))
        record["stated in report"] = stated[finding] or ""
        if labels is not None:
            record["reference"] = _change_name(labels.get(column), "")
        records.append(record)
    return pd.DataFrame(records).set_index("finding")


def change_summary(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per finding over a predictions table: how often the change head made each call, how
    many generated reports state a change for the finding, and how many of those agree with
    the head's call. Studies without a prior count as "not assessed"."""
    rows = [as_row(row) for _, row in predictions.iterrows()]
    stated = label_changes(section_text(row, Section.REPORT) for row in rows)
    records = []
    for finding in CHANGE_FINDINGS:
        column = change_column(finding)
        calls = np.array([_change_name(r.get(column), NOT_ASSESSED) for r in rows], dtype=object)
        said = stated[finding]
        record: dict[str, Any] = {"finding": finding}
        for name in (*(change.value for change in Change), NOT_ASSESSED):
            record[name] = int((calls == name).sum())
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
    for change in Change:
        widths = table[change.value].fillna(0.0).to_numpy(float)
        axes.barh(positions, widths, left=left, color=CHANGE_COLOURS[change], label=change.value)
        left += widths
    axes.set_yticks(positions, list(table.index), fontsize=8)
    axes.invert_yaxis()
    axes.set(xlim=(0, 1), xlabel="probability")
    if table[[change.value for change in Change]].isna().all().all():
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
