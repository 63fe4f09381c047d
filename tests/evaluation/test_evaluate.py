"""`cxr evaluate` end to end (cxr/evaluation/evaluate.py and outputs.py) on small generated files
shaped like `cxr synth` / `cxr generate`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cxr.cli import main
from cxr.evaluation import evaluate as evaluate_module
from cxr.evaluation.classification import micro_macro
from cxr.evaluation.metric_keys import (
    AUC_MACRO,
    CHANGE_ACCURACY_MACRO,
    CHANGE_F1_MACRO,
    CHANGE_MACRO_ACCURACY,
    FINDINGS_AUC_MACRO,
    NLG_METRICS,
    REPORT_HEAD_AGREEMENT_MICRO,
    Labeler,
    PerSubject,
    clinical_key,
)
from cxr.evaluation.scorers import known_scorers
from cxr.types import (
    CHANGE_FINDINGS,
    COMMON_OBSERVATIONS,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    change_column,
)

REPORTS = [
    ("s1", "p1", "Heart size is normal. No effusion.", "No acute disease."),
    ("s2", "p1", "Small left pleural effusion.", "Effusion."),
    ("s3", "p2", "Cardiomegaly. Lungs clear.", "Cardiomegaly."),
    ("s4", "p2", "Endotracheal tube in place. No pneumothorax.", "Tube in place."),
    ("s5", "p3", "Right lower lobe consolidation.", "Pneumonia."),
    ("s6", "p3", "Lungs are clear.", "Normal chest."),
]
ETT_NORMAL = {"s1": 0, "s2": 0, "s3": 1, "s4": 1, "s5": 0, "s6": 1}
ETT_NORMAL_PROB = {"s1": 0.1, "s2": 0.7, "s3": 0.8, "s4": 0.6, "s5": 0.2}  # s6 not predicted
EDEMA_CHANGE = {
    "s1": "",
    "s2": "improving",
    "s3": "stable",
    "s4": "worsening",
    "s5": "stable",
    "s6": "",
}
EDEMA_CALLED = {"s1": "stable", "s2": "improving", "s3": "worsening", "s4": "worsening", "s5": ""}


def _write_references(folder: Path) -> tuple[Path, Path]:
    reports = folder / "reports.jsonl"
    reports.write_text(
        "".join(
            json.dumps({"study_id": s, "patient_id": p, "findings": f, "impression": i}) + "\n"
            for s, p, f, i in REPORTS
        )
    )
    labels = folder / "labels.csv"
    columns = [
        "study_id",
        "patient_id",
        *TUBE_LINE_LABELS,
        *(change_column(f) for f in CHANGE_FINDINGS),
    ]
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for study, patient, *_ in REPORTS:
            row: dict[str, object] = dict.fromkeys(columns, 0)
            row.update(
                {"study_id": study, "patient_id": patient, "ETT - Normal": ETT_NORMAL[study]}
            )
            row.update({change_column(f): "" for f in CHANGE_FINDINGS})
            row[change_column("edema")] = EDEMA_CHANGE[study]
            writer.writerow(row)
    return reports, labels


def _write_predictions(path: Path, texts: dict[str, str], extra_id: str | None = "ghost") -> Path:
    rows = []
    for study, _, _, _ in REPORTS[:5]:
        row = {"study_id": study, "findings": texts.get(study, ""), "impression": ""}
        row.update(dict.fromkeys(TUBE_LINE_LABELS, 0.0))
        row["ETT - Normal"] = ETT_NORMAL_PROB[study]
        row.update({change_column(f): "" for f in CHANGE_FINDINGS})
        row[change_column("edema")] = EDEMA_CALLED[study]
        rows.append(row)
    if extra_id:
        rows.append({"study_id": extra_id, "findings": "x"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    reports, labels = _write_references(tmp_path)
    good = {s: f"{f} {i}" for s, _, f, i in REPORTS}
    predictions = _write_predictions(tmp_path / "model.jsonl", good)
    other = _write_predictions(
        tmp_path / "other.jsonl", dict.fromkeys(good, "Lungs are clear."), extra_id=None
    )
    return {"reports": reports, "labels": labels, "predictions": predictions, "other": other}


def _run(files: dict[str, Path], out: Path, *extra: str) -> dict[str, dict[str, float]]:
    code = main(
        [
            "evaluate",
            "--predictions",
            str(files["predictions"]),
            "--references",
            f"{files['reports']},{files['labels']}",
            "-o",
            str(out),
            "--bootstrap",
            "200",
            "--meteor",
            "false",
            *extra,
        ]
    )
    assert code == 0
    return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]


def test_metrics_tube_line_change_and_unmatched(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = _run(files, tmp_path / "out")
    # ETT - Normal on s1..s5 (s6 has no prediction): positives s3 0.8, s4 0.6; negatives 0.1, 0.7, 0.2
    assert metrics["AUC/ETT - Normal"]["value"] == pytest.approx(5 / 6)
    assert "AUC/ETT - Abnormal" not in metrics  # one class only in the references
    assert metrics["AUC-macro"]["value"] == pytest.approx(5 / 6)
    # edema change on s2..s5: improving ok, stable->worsening wrong, worsening ok, stable->missing wrong
    assert metrics["ChangeAcc/edema"]["value"] == pytest.approx(0.5)
    # F1: improving 1, stable 0 (two missed), worsening 2/3 (one false positive)
    assert metrics["ChangeF1/edema"]["value"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    # Recalls: improving 1/1, stable 0/2, worsening 1/1; edema is the only finding known.
    assert metrics["ChangeMacroAcc/edema"]["value"] == pytest.approx(2 / 3)
    assert metrics["ChangeMacroAcc"]["value"] == pytest.approx(2 / 3)
    # No findings-head columns in these predictions: no findings-head metric at all.
    assert not any(name.startswith(("FindingsAUC", "ReportHeadAgree")) for name in metrics)
    assert metrics["BLEU-1"]["value"] == pytest.approx(1.0)  # the texts are the references
    assert metrics["CE-F1-micro-14"]["value"] == pytest.approx(1.0)
    scorer_metrics = {m: spec for spec in known_scorers().values() for m in spec.metric_names()}
    for name, estimate in metrics.items():
        if name in scorer_metrics:  # no --scorer folder given: unavailable, no number
            spec = scorer_metrics[name]
            reason = f"unavailable: no weights folder given (--scorer {spec.name}=DIR)"
            assert estimate == {
                "value": None,
                "ci_low": None,
                "ci_high": None,
                "unavailable": reason,
            }
        else:
            assert set(estimate) == {"value", "ci_low", "ci_high"}
    assert set(scorer_metrics) <= set(metrics)
    unmatched = (tmp_path / "out" / "unmatched_ids.csv").read_text()
    assert "ghost,prediction in predictions without reference" in unmatched
    assert "s6,no prediction in predictions" in unmatched
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())
    assert info["bootstrap_unit"] == "patient" and info["clusters"] == 3
    assert info["studies_evaluated"] == 5
    assert set(info["model_scorers"]) == set(known_scorers())
    assert "METEOR" not in metrics
    for plot in ("tube_line_roc.png", "change_confusion.png", "observation_f1.png"):
        assert (tmp_path / "out" / plot).stat().st_size > 1000
    table = capsys.readouterr().out
    assert "BLEU-4" in table


def test_compare_and_baselines(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(
        files,
        out,
        "--compare",
        str(files["other"]),
        "--baselines",
        "--train-references",
        str(files["reports"]),
    )
    systems = json.loads((out / "systems.json").read_text())
    assert set(systems) == {"model", "compare:other", "most-common-report", "random-train-report"}
    differences = json.loads((out / "differences.json").read_text())
    bleu = differences["BLEU-1"]
    assert bleu["value"] == pytest.approx(
        systems["model"]["BLEU-1"]["value"] - systems["compare:other"]["BLEU-1"]["value"]
    )
    assert bleu["ci_low"] <= bleu["value"] <= bleu["ci_high"]
    # Same change calls in both files: the paired difference is exactly 0 on every resample.
    assert differences["ChangeMacroAcc"] == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert "AUC/ETT - Normal" not in systems["random-train-report"]
    # Text baselines assess no change: no change metrics rather than a score of 0.
    assert not any(name.startswith("Change") for name in systems["most-common-report"])


def test_feature_retrieval_baseline(files: dict[str, Path], tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text(
        json.dumps({"study_id": "t1", "findings": "Heart size is normal. No effusion."})
        + "\n"
        + json.dumps({"study_id": "t2", "findings": "Massive cardiomegaly."})
        + "\n"
    )
    ids = np.array(["t1", "t2", "s1", "s2", "s3", "s4", "s5"])
    features = np.array([[1, 0], [0, 1], [1, 0.1], [1, 0], [0.1, 1], [1, 0], [1, 0]], float)
    npz = tmp_path / "features.npz"
    np.savez(npz, study_ids=ids, features=features)
    out = tmp_path / "out"
    _run(
        files,
        out,
        "--baselines",
        "--train-references",
        str(train),
        "--retrieval-features",
        str(npz),
    )
    systems = json.loads((out / "systems.json").read_text())
    assert "nearest-neighbour-report" in systems and "random-train-report" not in systems
    # s3 (cardiomegaly) retrieves t2: cardiomegaly is found for that study
    assert systems["nearest-neighbour-report"]["CE-F1/Cardiomegaly"]["value"] == pytest.approx(1.0)


def test_missing_references_is_a_user_error(files: dict[str, Path], tmp_path: Path) -> None:
    code = main(
        [
            "evaluate",
            "--predictions",
            str(files["predictions"]),
            "--references",
            str(tmp_path / "nope.jsonl"),
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    code = main(
        [
            "evaluate",
            "--predictions",
            str(files["predictions"]),
            "--references",
            str(files["labels"]),
            "--baselines",
        ]
    )
    assert code == 2


def _every_metric_name() -> set[str]:
    """Every name metric_keys can build for cxr's metric families, and the names the
    model-based scorers declare in their specs (with their reciprocals)."""
    statistics = micro_macro(*(np.zeros((1, 1)),) * 3)
    subjects = {
        PerSubject.TUBE_LINE_AUC: TUBE_LINE_LABELS,
        PerSubject.FINDINGS_AUC: OBSERVATIONS,
        PerSubject.STATUS_ACCURACY: tuple(TUBE_LINE_DEVICES),
        PerSubject.OBSERVATION_F1: OBSERVATIONS,
        PerSubject.CHEXBERT_F1: OBSERVATIONS,
        PerSubject.REPORT_HEAD_AGREEMENT: OBSERVATIONS,
        PerSubject.CHANGE_MACRO_ACCURACY: CHANGE_FINDINGS,
        PerSubject.CHANGE_ACCURACY: CHANGE_FINDINGS,
        PerSubject.CHANGE_F1: CHANGE_FINDINGS,
    }
    assert set(subjects) == set(PerSubject)
    return {
        *NLG_METRICS,
        AUC_MACRO,
        FINDINGS_AUC_MACRO,
        REPORT_HEAD_AGREEMENT_MICRO,
        CHANGE_MACRO_ACCURACY,
        CHANGE_ACCURACY_MACRO,
        CHANGE_F1_MACRO,
        *(
            clinical_key(s, n, labeler)
            for s in statistics
            for n in (len(OBSERVATIONS), len(COMMON_OBSERVATIONS))
            for labeler in Labeler
        ),
        *(family.key(subject) for family, names in subjects.items() for subject in names),
        *(metric for spec in known_scorers().values() for metric in spec.metric_names()),
    }


def test_every_metric_name_is_built_by_metric_keys(
    files: dict[str, Path], head_files: dict[str, Path], tmp_path: Path
) -> None:
    metrics = _run(files, tmp_path / "out")
    assert set(metrics) <= _every_metric_name()
    assert {"CE-F1-micro-14", "CE-F1-macro-5", "StatusAcc/ETT", "ChangeAcc-macro"} <= set(metrics)
    with_head = _run(head_files, tmp_path / "head")
    assert set(with_head) <= _every_metric_name()
    assert {FINDINGS_AUC_MACRO, REPORT_HEAD_AGREEMENT_MICRO, CHANGE_MACRO_ACCURACY} <= set(
        with_head
    )


# Findings-head probabilities of the evaluated studies s1..s5, and reference labels.csv cells
# (blank: unknown). The generated reports (REPORTS' texts) state cardiomegaly for s3 only.
CARDIOMEGALY_PROB = {"s1": 0.2, "s2": 0.6, "s3": 0.9, "s4": 0.1, "s5": 0.3}
CARDIOMEGALY_LABEL = {"s1": 0, "s2": 0, "s3": 1, "s4": "", "s5": 1, "s6": 1}


def _add_columns(path: Path, values: dict[str, dict[str, object]]) -> Path:
    """A copy of a reports.jsonl / labels.csv with {column: {study: value}} added."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for row in rows:
            row.update({c: v[row["study_id"]] for c, v in values.items() if row["study_id"] in v})
        target = path.with_name(f"head-{path.name}")
        target.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return target
    with path.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    target = path.with_name(f"head-{path.name}")
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*table[0], *values])
        writer.writeheader()
        writer.writerows({**r, **{c: v[r["study_id"]] for c, v in values.items()}} for r in table)
    return target


@pytest.fixture
def head_files(files: dict[str, Path]) -> dict[str, Path]:
    """`files` whose predictions and labels.csv also hold the Cardiomegaly column."""
    return {
        **files,
        "predictions": _add_columns(files["predictions"], {"Cardiomegaly": CARDIOMEGALY_PROB}),
        "labels": _add_columns(files["labels"], {"Cardiomegaly": CARDIOMEGALY_LABEL}),
    }


def test_findings_head_auc_and_report_head_consistency(
    head_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labelled: list[int] = []
    label_reports = evaluate_module.label_reports

    def counting(texts: list[str]):  # type: ignore[no-untyped-def]
        labelled.append(len(texts))
        return label_reports(texts)

    monkeypatch.setattr(evaluate_module, "label_reports", counting)
    metrics = _run(head_files, tmp_path / "out", "--compare", str(head_files["other"]))
    # Labelled once each: the 5 references, the 5 generated reports, the 5 compared ones.
    assert labelled == [5, 5, 5]
    # Cardiomegaly AUC on s1, s2, s3, s5 (s4 unknown, s6 unmatched): positives 0.9, 0.3
    # against negatives 0.2, 0.6 -> (2 + 1) / 4. The only observation with labels.
    assert metrics["FindingsAUC/Cardiomegaly"]["value"] == pytest.approx(3 / 4)
    assert metrics[FINDINGS_AUC_MACRO]["value"] == pytest.approx(3 / 4)
    # The report states cardiomegaly for s3 only; the head calls it for s2 (0.6) and s3:
    # the two agree on s1, s3, s4, s5. No other observation has a head probability.
    assert metrics["ReportHeadAgree/Cardiomegaly"]["value"] == pytest.approx(4 / 5)
    assert metrics[REPORT_HEAD_AGREEMENT_MICRO]["value"] == pytest.approx(4 / 5)
    for name in (FINDINGS_AUC_MACRO, REPORT_HEAD_AGREEMENT_MICRO):
        assert metrics[name]["ci_low"] <= metrics[name]["value"] <= metrics[name]["ci_high"]
    # The compared file has no head columns: no difference for the head metrics.
    differences = json.loads((tmp_path / "out" / "differences.json").read_text())
    assert FINDINGS_AUC_MACRO not in differences and CHANGE_MACRO_ACCURACY in differences
    assert (tmp_path / "out" / "findings_roc.png").stat().st_size > 1000
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())
    assert info["findings_head_threshold"] == 0.5
    # Table order: consistency after clinical efficacy, findings AUC after tube/line AUC and
    # before status accuracy, the MS-CXR-T macro accuracy first among change metrics.
    rows = [line.split("  ")[0] for line in capsys.readouterr().out.splitlines()]
    position = {name: i for i, name in enumerate(rows)}
    assert (
        position["CE-F1/Support Devices"]
        < position[REPORT_HEAD_AGREEMENT_MICRO]
        < position["ReportHeadAgree/Cardiomegaly"]
        < position[AUC_MACRO]
        < position["AUC/ETT - Normal"]
        < position[FINDINGS_AUC_MACRO]
        < position["FindingsAUC/Cardiomegaly"]
        < position["StatusAcc/ETT"]
        < position[CHANGE_MACRO_ACCURACY]
        < min(position[n] for n in rows if n.startswith("Change") and n != CHANGE_MACRO_ACCURACY)
    )


def test_reference_text_is_never_made_a_findings_label(
    files: dict[str, Path], tmp_path: Path
) -> None:
    # Predictions with head columns; references with reports (s3 says "Cardiomegaly.") only.
    head = {
        **files,
        "predictions": _add_columns(files["predictions"], {"Cardiomegaly": CARDIOMEGALY_PROB}),
    }
    metrics = _run(head, tmp_path / "out")
    assert not any(name.startswith("FindingsAUC") for name in metrics)
    assert metrics[REPORT_HEAD_AGREEMENT_MICRO]["value"] == pytest.approx(4 / 5)
    assert not (tmp_path / "out" / "findings_roc.png").exists()
