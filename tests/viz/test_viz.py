"""Notebook figures and tables of cxr/viz/, on small hand-made predictions and PNG images."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import AxesImage
from PIL import Image

from cxr.errors import InputError
from cxr.evaluation.change_metrics import change_confusions
from cxr.evaluation.metric_keys import PerSubject
from cxr.evaluation.outputs import read_evaluation
from cxr.evaluation.studies import change_codes
from cxr.inference.outputs import Prediction
from cxr.io import read_image
from cxr.tube_line import status_column, study_statuses
from cxr.types import (
    CHANGE_FINDINGS,
    NOT_ASSESSED,
    OBSERVATIONS,
    TUBE_LINE_LABELS,
    Change,
    Study,
    StudyImages,
    Targets,
    change_column,
)
from cxr.viz import evaluation_results, head_calls, rows, study_views


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def write_png(path: Path, seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 20), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def tube_line_probs() -> dict[str, float]:
    probs = dict.fromkeys(TUBE_LINE_LABELS, 0.1)
    probs.update({"ETT - Normal": 0.9, "ETT - Borderline": 0.6, "Swan Ganz Catheter Present": 0.7})
    return probs


def make_prediction(images: dict[str, str], with_prior: bool = True) -> Prediction:
    probs = tube_line_probs()
    change_probs = {
        finding: {"improving": 0.2, "stable": 0.5, "worsening": 0.3} for finding in CHANGE_FINDINGS
    }
    change_probs["pleural_effusion"] = {"improving": 0.1, "stable": 0.2, "worsening": 0.7}
    return Prediction(
        study_id="s2",
        patient_id="p1",
        findings="Worsening right pleural effusion.",
        impression="No pneumothorax.",
        tube_line_probs=probs,
        tube_line_status=study_statuses(probs),
        change={f: max(p, key=p.__getitem__) for f, p in change_probs.items()}
        if with_prior
        else {},
        change_probs=change_probs if with_prior else {},
        prior_study_id="s1" if with_prior else None,
        images=images,
        model="tiny@0",
        seconds=0.1,
    )


def make_study(images: StudyImages) -> Study:
    targets = Targets(findings="Heart size is normal.", impression="Effusion is worse.")
    targets.tube_line[TUBE_LINE_LABELS.index("ETT - Normal")] = 1.0
    targets.change[CHANGE_FINDINGS.index("pleural_effusion")] = Change.WORSENING.code
    return Study("s2", "p1", images=images, targets=targets, prior_study_id="s1")


def image_arrays(axes: plt.Axes) -> list[np.ndarray]:
    return [np.asarray(a.get_array()) for a in axes.get_children() if isinstance(a, AxesImage)]


def texts(axes: plt.Axes) -> str:
    return "\n".join(t.get_text() for t in axes.texts)


def test_image_paths_resolve_relative_paths_against_the_root(tmp_path: Path) -> None:
    prior = str(tmp_path / "prior.png")
    row = make_prediction({"frontal": "a/frontal.png", "prior_frontal": prior}).to_row()
    paths = study_views.image_paths(row, image_root=tmp_path)
    assert paths == {"frontal": tmp_path / "a" / "frontal.png", "prior_frontal": Path(prior)}
    assert study_views.image_paths(row) == {
        "frontal": Path("a/frontal.png"),
        "prior_frontal": Path(prior),
    }
    study = make_study(StudyImages(frontal="f.dcm", lateral="l.dcm"))
    assert study_views.image_paths(study) == {"frontal": Path("f.dcm"), "lateral": Path("l.dcm")}


def test_show_study_draws_images_missing_views_and_both_reports(tmp_path: Path) -> None:
    frontal = write_png(tmp_path / "frontal.png", seed=1)
    prior = write_png(tmp_path / "prior.png", seed=2)
    prediction = make_prediction({"frontal": "frontal.png", "prior_frontal": "prior.png"})
    figure = study_views.show_study(
        pd.Series(prediction.to_row()), reference="The reference text.", image_root=tmp_path
    )
    frontal_axes, lateral_axes, prior_axes, text_axes = figure.axes
    np.testing.assert_array_equal(image_arrays(frontal_axes)[0], read_image(frontal).pixels)
    np.testing.assert_array_equal(image_arrays(prior_axes)[0], read_image(prior).pixels)
    assert image_arrays(lateral_axes) == [] and "missing" in texts(lateral_axes)
    shown = texts(text_axes)
    assert "GENERATED" in shown and "Worsening right pleural effusion." in shown
    assert "IMPRESSION: No pneumothorax." in shown
    assert "REFERENCE" in shown and "The reference text." in shown


def test_show_study_reports_an_unreadable_image_in_place(tmp_path: Path) -> None:
    (tmp_path / "broken.dcm").write_bytes(b"not an image")
    figure = study_views.show_study(make_prediction({"frontal": str(tmp_path / "broken.dcm")}))
    assert image_arrays(figure.axes[0]) == []
    assert "unreadable" in texts(figure.axes[0])


def test_show_study_of_a_study_shows_its_known_report(tmp_path: Path) -> None:
    frontal = write_png(tmp_path / "frontal.png", seed=3)
    figure = study_views.show_study(
        make_study(StudyImages(frontal=str(frontal))), slots=("frontal",)
    )
    assert len(figure.axes) == 2
    shown = texts(figure.axes[1])
    assert "REFERENCE" in shown and "Effusion is worse." in shown
    assert "GENERATED" not in shown


def test_tube_line_table_marks_each_device_call_and_the_reference() -> None:
    prediction = make_prediction({})
    table = head_calls.tube_line_table(prediction, reference=make_study(StudyImages()))
    assert list(table.index) == list(TUBE_LINE_LABELS)
    # ETT: Normal (0.9) beats Borderline (0.6); NGT and CVC are below threshold: absent.
    assert sorted(table.index[table["called"]]) == ["ETT - Normal", "Swan Ganz Catheter Present"]
    assert table.loc["ETT - Borderline", "probability"] == pytest.approx(0.6)
    assert table.loc["NGT - Incompletely Imaged", "status"] == "Incompletely Imaged"
    assert table.loc["Swan Ganz Catheter Present", "device"] == "Swan Ganz"
    assert table.loc["ETT - Normal", "reference"] == 1.0
    assert np.isnan(table.loc["CVC - Normal", "reference"])
    assert "reference" not in head_calls.tube_line_table(prediction).columns


def test_tube_line_table_calls_what_cxr_evaluate_scores() -> None:
    # A written status (a model threshold of 0.2) is the call, whatever a 0.5 rule would say;
    # output without status columns is called by the tube/line rule.
    written = {**tube_line_probs(), "ETT - Normal": 0.3, "ETT - Borderline": 0.1}
    written[status_column("ETT")] = "Normal"
    table = head_calls.tube_line_table(written)
    assert table.loc["ETT - Normal", "called"]
    unwritten = {**tube_line_probs(), "ETT - Normal": 0.3, "ETT - Borderline": 0.1}
    table = head_calls.tube_line_table(unwritten)
    assert not table.loc[["ETT - Abnormal", "ETT - Borderline", "ETT - Normal"], "called"].any()
    assert table.loc["Swan Ganz Catheter Present", "called"]  # 0.7: present


def test_change_table_gives_calls_probabilities_and_what_the_report_states() -> None:
    table = head_calls.change_table(make_prediction({}), reference=make_study(StudyImages()))
    effusion = table.loc["pleural_effusion"]
    assert effusion["call"] == "worsening"
    assert (effusion["improving"], effusion["worsening"]) == pytest.approx((0.1, 0.7))
    assert effusion["stated in report"] == "worsening"
    assert effusion["reference"] == "worsening"
    assert table.loc["edema", "stated in report"] == "" and table.loc["edema", "reference"] == ""


def test_change_table_without_a_prior_is_not_assessed() -> None:
    table = head_calls.change_table(make_prediction({}, with_prior=False).to_row())
    assert set(table["call"]) == {NOT_ASSESSED}
    assert table[["improving", "stable", "worsening"]].isna().all().all()


def test_change_summary_counts_calls_and_agreement_with_the_report() -> None:
    rows = [
        make_prediction({}).to_row(),
        make_prediction({}, with_prior=False).to_row(),
        {**make_prediction({}).to_row(), "findings": "Improving right pleural effusion."},
    ]
    summary = head_calls.change_summary(pd.DataFrame(rows))
    effusion = summary.loc["pleural_effusion"]
    assert (effusion["worsening"], effusion[NOT_ASSESSED], effusion["stable"]) == (2, 1, 0)
    assert effusion["report states"] == 3  # every report mentions the effusion's change
    assert effusion["report agrees"] == 1  # only the first: the third says improving
    assert summary.loc["edema", "report states"] == 0


def test_change_probability_bars_stack_to_the_head_probabilities() -> None:
    figure = head_calls.plot_change_probabilities(make_prediction({}))
    bars = figure.axes[0].patches
    widths = np.array([bar.get_width() for bar in bars]).reshape(3, len(CHANGE_FINDINGS))
    np.testing.assert_allclose(widths.sum(axis=0), 1.0)
    effusion = CHANGE_FINDINGS.index("pleural_effusion")
    np.testing.assert_allclose(widths[:, effusion], [0.1, 0.2, 0.7])


def test_show_prior_comparison_draws_prior_current_and_probabilities(tmp_path: Path) -> None:
    prior = write_png(tmp_path / "prior.png", seed=4)
    figure = study_views.show_prior_comparison(
        make_prediction({"frontal": "missing.png", "prior_frontal": str(prior)}), tmp_path
    )
    prior_axes, current_axes, bars_axes = figure.axes
    np.testing.assert_array_equal(image_arrays(prior_axes)[0], read_image(prior).pixels)
    assert "unreadable" in texts(current_axes)  # missing.png does not exist
    assert len(bars_axes.patches) == 3 * len(CHANGE_FINDINGS)


def write_evaluation(folder: Path) -> Path:
    systems = {
        "reports": {
            "BLEU-4": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6},
            "AUC/ETT - Normal": {"value": 0.75, "ci_low": None, "ci_high": None},
            "CE-F1/Edema": {"value": 0.25, "ci_low": 0.0, "ci_high": 0.5},
        },
        "most-common-report": {
            "BLEU-4": {"value": 0.125, "ci_low": 0.1, "ci_high": 0.2},
            "CE-F1/Edema": {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0},
        },
        "no-text": {"AUC-macro": {"value": None, "ci_low": None, "ci_high": None}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "systems.json").write_text(json.dumps(systems))
    (folder / "run_info.json").write_text(json.dumps({"section": "findings"}))
    return folder


def test_read_evaluation_and_metrics_table(tmp_path: Path) -> None:
    evaluation = read_evaluation(write_evaluation(tmp_path / "eval"))
    assert evaluation.primary == "reports" and evaluation.info == {"section": "findings"}
    assert evaluation.per_subject(PerSubject.TUBE_LINE_AUC) == {"ETT - Normal": 0.75}
    assert evaluation.per_subject_by_system(PerSubject.OBSERVATION_F1) == {
        "reports": {"Edema": 0.25},
        "most-common-report": {"Edema": 0.0},
    }
    table = evaluation_results.metrics_table(evaluation)
    assert list(table.index) == ["BLEU-4", "AUC-macro"]
    assert list(table.columns) == ["reports", "most-common-report", "no-text"]
    assert table.loc["BLEU-4", "reports"] == "0.5000 [0.4000, 0.6000]"
    assert table.loc["AUC-macro", "no-text"] == "-"
    detail = evaluation_results.metrics_table(evaluation, detail=True)
    assert detail.loc["AUC/ETT - Normal", "reports"] == "0.7500"  # no interval
    assert detail.loc["AUC/ETT - Normal", "most-common-report"] == "-"
    chosen = evaluation_results.metrics_table(evaluation, metrics=["CE-F1/Edema"])
    assert chosen.loc["CE-F1/Edema"].tolist() == [
        "0.2500 [0.0000, 0.5000]",
        "0.0000 [0.0000, 0.0000]",
        "-",
    ]


def test_read_evaluation_of_another_folder_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"systems\.json"):
        read_evaluation(tmp_path)


def test_plot_observation_f1_draws_one_bar_per_system_and_observation(tmp_path: Path) -> None:
    figure = evaluation_results.plot_observation_f1(read_evaluation(write_evaluation(tmp_path)))
    heights = sorted(bar.get_height() for bar in figure.axes[0].patches)
    assert heights == [0.0, 0.25]


def write_tables(folder: Path) -> tuple[Path, list[Path]]:
    """Predictions (out of order, one without reference) and references in two files."""
    folder.mkdir(parents=True, exist_ok=True)
    predictions = folder / "reports.jsonl"
    rows = [
        {"study_id": "s3", "findings": "Heart size is normal.", "impression": "",
         "ETT - Normal": 0.8, change_column("edema"): "stable"},
        {"study_id": "s1", "findings": "Large left pneumothorax.", "impression": "",
         "ETT - Normal": 0.3, change_column("edema"): "worsening"},
        {"study_id": "s2", "findings": "", "impression": "",
         "ETT - Normal": 0.6, change_column("edema"): ""},
        {"study_id": "s9", "findings": "Not in the references.", "impression": ""},
    ]  # fmt: skip
    for row, cardiomegaly in zip(rows, (0.8, 0.3, 0.6), strict=False):
        row["Cardiomegaly"] = cardiomegaly  # findings-head probability
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reports = folder / "references.jsonl"
    references = [
        {"study_id": "s1", "patient_id": "p1", "findings": "Heart size is normal."},
        {"study_id": "s2", "patient_id": "p1", "findings": "Small right pleural effusion."},
        {"study_id": "s3", "patient_id": "p2", "findings": "Heart size is normal."},
        {"study_id": "s4", "patient_id": "p3", "findings": ""},
    ]
    reports.write_text("".join(json.dumps(r) + "\n" for r in references))
    labels = folder / "labels.csv"
    labels.write_text(
        "study_id,ETT - Normal,edema_progression,Cardiomegaly\n"
        "s1,0,stable,0\ns2,1,,-1\ns3,1,stable,1\ns4,0,,\n"
    )
    return predictions, [reports, labels]


def test_matched_results_align_predictions_and_references(tmp_path: Path) -> None:
    predictions, references = evaluation_results.matched_results(*write_tables(tmp_path))
    assert predictions["study_id"].tolist() == references["study_id"].tolist() == ["s1", "s2", "s3"]
    assert predictions["ETT - Normal"].tolist() == [0.3, 0.6, 0.8]
    assert references["ETT - Normal"].tolist() == [0, 1, 1]


def test_matched_results_without_common_studies_fail(tmp_path: Path) -> None:
    path, references = write_tables(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"study_id": "x", "findings": "a"}) + "\n")
    with pytest.raises(InputError, match="no study_id in common"):
        evaluation_results.matched_results(other, references)
    assert path.is_file()


def test_tube_line_roc_and_change_confusion_use_the_aligned_tables(tmp_path: Path) -> None:
    predictions, references = evaluation_results.matched_results(*write_tables(tmp_path))
    roc = evaluation_results.plot_tube_line_roc(predictions, references, {"ETT - Normal": 1.0})
    curves = [line for line in roc.axes[0].lines if line.get_label() == "ETT - Normal (1.000)"]
    assert len(curves) == 1  # the only label with both classes; plus the chance diagonal
    assert len(roc.axes[0].lines) == 2
    matrices = change_confusions(change_codes(predictions), change_codes(references))
    assert list(matrices) == ["edema"]
    expected = np.zeros((3, 3))
    stable, worsening = Change.STABLE.code, Change.WORSENING.code
    expected[stable, worsening] = expected[stable, stable] = 1
    np.testing.assert_array_equal(matrices["edema"], expected)
    figure = evaluation_results.plot_change_confusion(predictions, references)
    # Both known references are stable, one predicted so: macro accuracy 1/2.
    assert [axis.get_title() for axis in figure.axes] == ["edema\nmacro acc 0.500"]


@pytest.mark.parametrize(
    ("uncertain", "false_positive_rates"),
    [
        # s2's uncertain label is positive: scores 0.8 (s3), 0.6 (s2) positive, 0.3 (s1) not.
        ("positive", [0.0, 0.0, 0.0, 1.0]),
        # ... negative: 0.6 is a false positive before 0.3.
        ("negative", [0.0, 0.0, 0.5, 1.0]),
        # ... left out: s3 against s1 only.
        ("ignore", [0.0, 0.0, 1.0]),
    ],
)
def test_findings_roc_follows_the_uncertain_option(
    tmp_path: Path, uncertain: str, false_positive_rates: list[float]
) -> None:
    predictions, references = evaluation_results.matched_results(*write_tables(tmp_path))
    figure = evaluation_results.plot_findings_roc(
        predictions, references, {"Cardiomegaly": 1.0}, uncertain=uncertain
    )
    curves = [line for line in figure.axes[0].lines if line.get_label() == "Cardiomegaly (1.000)"]
    assert len(curves) == 1 and len(figure.axes[0].lines) == 2  # plus the chance diagonal
    assert np.asarray(curves[0].get_xdata()).tolist() == false_positive_rates
    assert figure.axes[0].get_title() == "Findings-head ROC"


def test_findings_table_gives_head_calls_report_statements_and_agreement() -> None:
    row = {
        "study_id": "s1",
        "findings": "Moderate cardiomegaly. Possible small left pleural effusion.",
        "Cardiomegaly": 0.9,
        "Pleural Effusion": 0.2,
        "Edema": 0.7,
    }
    study = make_study(StudyImages())
    study.targets.observations[OBSERVATIONS.index("Cardiomegaly")] = 1.0
    table = head_calls.findings_table(row, reference=study)
    assert list(table.index) == list(OBSERVATIONS)
    cardiomegaly, effusion, edema = (
        table.loc[o] for o in ("Cardiomegaly", "Pleural Effusion", "Edema")
    )
    assert (cardiomegaly["call"], cardiomegaly["stated in report"]) == ("present", "present")
    assert cardiomegaly["agrees"] and cardiomegaly["reference"] == 1.0
    # Uncertain counts as absent by default: it agrees with the head's absent call.
    assert (effusion["call"], effusion["stated in report"]) == ("absent", "uncertain")
    assert effusion["agrees"]
    assert (edema["call"], edema["stated in report"], edema["agrees"]) == ("present", "", False)
    assert table.loc["Fracture", "call"] == NOT_ASSESSED and pd.isna(
        table.loc["Fracture", "agrees"]
    )
    assert np.isnan(table.loc["Edema", "reference"])
    ignored = head_calls.findings_table(row, uncertain="ignore")
    assert pd.isna(ignored.loc["Pleural Effusion", "agrees"]) and "reference" not in ignored


def test_study_scores_put_the_worst_report_first(tmp_path: Path) -> None:
    predictions, references = evaluation_results.matched_results(*write_tables(tmp_path))
    scores = evaluation_results.study_scores(predictions, references)
    # s2's empty prediction and s1's wrong one score below s3, which matches its reference.
    assert list(scores.index) == ["s2", "s1", "s3"]
    assert scores.loc["s3", "ROUGE-L"] == pytest.approx(1.0)
    assert scores.loc["s2", "ROUGE-L"] == 0.0 and scores.loc["s2", "BLEU-4"] == 0.0
    assert 0.0 < scores.loc["s1", "ROUGE-L"] < 1.0
    assert scores.loc["s3", "CE mismatches"] == 0
    # s1 states a pneumothorax its reference does not; s2 misses the effusion.
    assert scores.loc["s1", "CE mismatches"] >= 1 and scores.loc["s2", "CE mismatches"] >= 1


def test_reference_row_flattens_a_studys_targets() -> None:
    study = make_study(StudyImages())
    study.targets.observations[OBSERVATIONS.index("Pleural Effusion")] = 1.0
    row = rows.reference_row(study)
    assert row["ETT - Normal"] == 1.0 and np.isnan(row["CVC - Normal"])
    assert row["Pleural Effusion"] == 1.0 and np.isnan(row["Cardiomegaly"])
    assert row[change_column("pleural_effusion")] == "worsening"
    assert row[change_column("edema")] == ""
    assert (
        rows.labelled_report(row)
        == "FINDINGS: Heart size is normal.\nIMPRESSION: Effusion is worse."
    )
