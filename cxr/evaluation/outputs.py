"""What `cxr evaluate` writes, and reading it back.

An output folder holds metrics.json ({metric: {value, ci_low, ci_high}} of the evaluated
system; a model-based scorer that did not run has {value: null, ..., unavailable: reason}), systems.json (every system, the evaluated one first, then --compare and the
baselines), differences.json (with --compare), run_info.json, unmatched_ids.csv, and the
PNG plots (tube_line_roc, findings_roc, change_confusion, observation_f1; each only when its
metrics exist). `format_table` is the printed table; `format_estimate` is the one way a metric cell
reads, in the table and in notebooks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr.errors import InputError
from cxr.evaluation import plots
from cxr.evaluation.bootstrap import Estimate
from cxr.evaluation.change_metrics import CHANGE_CLASSES
from cxr.evaluation.evaluate import Evaluation
from cxr.evaluation.metric_keys import NLG_METRICS, PerSubject
from cxr.jsonl import read_json
from cxr.types import OBSERVATIONS, TUBE_LINE_LABELS

METRICS_FILE = "metrics.json"
SYSTEMS_FILE = "systems.json"
DIFFERENCES_FILE = "differences.json"
RUN_INFO_FILE = "run_info.json"
UNMATCHED_FILE = "unmatched_ids.csv"
_UNMATCHED_COLUMNS = ["study_id", "problem"]


def format_estimate(estimate: Estimate | None) -> str:
    """ "value [ci_low, ci_high]" to 4 decimals; the value alone without an interval;
    "unavailable: reason" for a metric that could not be computed; "-" when absent or
    undefined."""
    if estimate is not None and estimate.unavailable is not None:
        return estimate.unavailable
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
        cells = [format_estimate(evaluation.systems[c].get(metric)) for c in evaluation.systems]
        if evaluation.differences:
            cells.append(format_estimate(evaluation.differences.get(metric)))
        if any(c != "-" for c in cells):
            rows.append([metric, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _as_json(estimates: Mapping[str, Estimate]) -> dict[str, dict[str, float | str | None]]:
    return {name: e.to_dict() for name, e in estimates.items()}


def write_outputs(evaluation: Evaluation, output_dir: Path, make_plots: bool = True) -> list[Path]:
    """Writes the output folder (see the module docstring); returns the files written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def dump(name: str, content: Any) -> None:
        path = output_dir / name
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        written.append(path)

    dump(METRICS_FILE, _as_json(evaluation.systems[evaluation.primary]))
    dump(SYSTEMS_FILE, {s: _as_json(e) for s, e in evaluation.systems.items()})
    if evaluation.differences:
        dump(DIFFERENCES_FILE, _as_json(evaluation.differences))
    dump(RUN_INFO_FILE, evaluation.info)
    unmatched_path = output_dir / UNMATCHED_FILE
    pd.DataFrame(evaluation.unmatched, columns=_UNMATCHED_COLUMNS).to_csv(
        unmatched_path, index=False
    )
    written.append(unmatched_path)
    if make_plots:
        written += _write_plots(evaluation, output_dir)
    return written


def _write_plots(evaluation: Evaluation, output_dir: Path) -> list[Path]:
    written = []
    primary = evaluation.metrics_by_system[evaluation.primary]
    aucs = evaluation.per_subject(PerSubject.TUBE_LINE_AUC)
    if aucs:
        figure = plots.plot_roc_curves(
            primary.system.outputs.tube_line,
            primary.references.table.tube_line,
            TUBE_LINE_LABELS,
            aucs,
        )
        written.append(plots.save_figure(figure, output_dir / "tube_line_roc.png"))
    findings_aucs = evaluation.per_subject(PerSubject.FINDINGS_AUC)
    if findings_aucs:
        figure = plots.plot_roc_curves(
            primary.system.outputs.observations,
            primary.findings.reference_labels,
            OBSERVATIONS,
            findings_aucs,
            title="Findings-head ROC",
        )
        written.append(plots.save_figure(figure, output_dir / "findings_roc.png"))
    confusions = primary.change_confusions()
    if confusions:
        figure = plots.plot_confusion_matrices(
            confusions, CHANGE_CLASSES, evaluation.per_subject(PerSubject.CHANGE_MACRO_ACCURACY)
        )
        written.append(plots.save_figure(figure, output_dir / "change_confusion.png"))
    f1 = evaluation.per_subject_by_system(PerSubject.OBSERVATION_F1)
    if f1:
        figure = plots.plot_observation_f1(f1)
        written.append(plots.save_figure(figure, output_dir / "observation_f1.png"))
    return written


def _estimates(raw: Mapping[str, Mapping[str, float | str | None]]) -> dict[str, Estimate]:
    return {name: Estimate.from_dict(values) for name, values in raw.items()}


def read_evaluation(output_dir: str | Path) -> Evaluation:
    """An output folder of `cxr evaluate` read back (without the per-system statistics).

    The primary system is the first of systems.json; differences, unmatched ids and run
    information are empty when their file is absent.
    """
    output_dir = Path(output_dir)
    systems_path = output_dir / SYSTEMS_FILE
    if not systems_path.is_file():
        raise InputError(systems_path, "missing; is this a folder written by `cxr evaluate`?")
    systems = {name: _estimates(raw) for name, raw in read_json(systems_path).items()}
    if not systems:
        raise InputError(systems_path, "no system")
    differences_path, info_path = output_dir / DIFFERENCES_FILE, output_dir / RUN_INFO_FILE
    unmatched_path = output_dir / UNMATCHED_FILE
    unmatched = (
        pd.read_csv(unmatched_path, dtype=str, keep_default_na=False)
        if unmatched_path.is_file()
        else pd.DataFrame(columns=_UNMATCHED_COLUMNS)
    )
    return Evaluation(
        systems,
        primary=next(iter(systems)),
        differences=_estimates(read_json(differences_path)) if differences_path.is_file() else {},
        unmatched=list(unmatched[_UNMATCHED_COLUMNS].itertuples(index=False, name=None)),
        info=read_json(info_path) if info_path.is_file() else {},
    )
