"""The files `cxr evaluate` writes and reading them back (cxr/evaluation/outputs.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cxr.errors import InputError
from cxr.evaluation.bootstrap import Estimate
from cxr.evaluation.evaluate import Evaluation
from cxr.evaluation.metric_keys import PerSubject
from cxr.evaluation.outputs import format_estimate, format_table, read_evaluation, write_outputs

NAN = math.nan


def _evaluation() -> Evaluation:
    return Evaluation(
        systems={
            "model": {
                "BLEU-4": Estimate(0.5, 0.4, 0.6),
                "AUC/ETT - Normal": Estimate(0.75, NAN, NAN),
                "CE-F1/Edema": Estimate(0.25, 0.0, 0.5),
            },
            "most-common-report": {
                "BLEU-4": Estimate(0.125, 0.1, 0.2),
                "CE-F1/Edema": Estimate(0.0, 0.0, 0.0),
            },
        },
        primary="model",
        differences={"BLEU-4": Estimate(0.375, 0.2, 0.5)},
        unmatched=[("s9", "prediction in predictions without reference")],
        info={"section": "findings"},
    )


def test_format_estimate_is_the_one_cell_format() -> None:
    assert format_estimate(Estimate(0.5, 0.4, 0.6)) == "0.5000 [0.4000, 0.6000]"
    assert format_estimate(Estimate(0.75, NAN, NAN)) == "0.7500"
    assert format_estimate(Estimate(NAN, NAN, NAN)) == "-"
    assert format_estimate(None) == "-"


def test_what_is_written_reads_back_the_same(tmp_path: Path) -> None:
    evaluation = _evaluation()
    write_outputs(evaluation, tmp_path, make_plots=False)
    read = read_evaluation(tmp_path)
    assert read.primary == "model"
    assert format_table(read) == format_table(evaluation)
    assert read.differences == evaluation.differences
    assert read.unmatched == evaluation.unmatched and read.info == evaluation.info
    assert read.per_subject(PerSubject.TUBE_LINE_AUC) == {"ETT - Normal": 0.75}
    assert read.per_subject_by_system(PerSubject.OBSERVATION_F1) == {
        "model": {"Edema": 0.25},
        "most-common-report": {"Edema": 0.0},
    }
    assert read.metric_names([PerSubject.TUBE_LINE_AUC]) == ["AUC/ETT - Normal"]


def test_reading_another_folder_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"systems\.json"):
        read_evaluation(tmp_path)
