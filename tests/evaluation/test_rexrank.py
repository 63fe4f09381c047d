"""ReXrank's JSON files in `cxr evaluate` (cxr/evaluation/rexrank.py and its hook in records.py):
the labelled text both ways, the output file cxr writes, scoring from ReXrank files exactly as
from the same studies in JSONL, and the error for a JSON that is neither format."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from cxr.cli import main
from cxr.errors import InputError
from cxr.evaluation.records import read_joined, read_table
from cxr.evaluation.rexrank import (
    Track,
    context_fields,
    labelled_report,
    prediction_text,
    split_labelled_report,
    write_predictions,
)
from cxr.evaluation.studies import Section

# (study id, subject_id, reference findings, reference impression, generated findings, impression)
STUDIES = [
    ("50051329", 10046166, "The lungs are low in volume. No pleural effusion.", "No acute process.",
     "Low lung volumes. No pleural effusion.", "No acute cardiopulmonary process."),
    ("53492798", 10046166, "Calcified nodule in the right lung base. No pneumothorax.", math.nan,
     "Calcified granuloma at the right base.", "No acute process."),
    ("56759200", 10078001, "Small left pleural effusion.\nMild cardiomegaly.", "Effusion.",
     "Small left pleural effusion. Heart size is normal.", "Left effusion."),
    ("58921007", 10113344, "Endotracheal tube 4 cm above the carina.", "Tube in place.",
     "Endotracheal tube in standard position.", "Tube in place."),
]  # fmt: skip


def reference_entries() -> dict[str, dict[str, Any]]:
    """ReXrank input entries shaped as its MIMIC-CXR test file (NaN impression included)."""
    return {
        study_id: {
            "image_path": [f"/p10/p{subject}/s{study_id}/frontal.jpg"],
            "section_findings": findings,
            "section_impression": impression,
            "frontal_lateral": ["postero-anterior"],
            "split": "test",
            "subject_id": subject,
            "context": "Age:50-60.Gender:M.Indication: ___-year-old male with cough.",
            "key_image_path": f"/p10/p{subject}/s{study_id}/frontal.jpg",
            "report": f"Findings: {findings} Impression: {impression}",
        }
        for study_id, subject, findings, impression, _, _ in STUDIES
    }


def generated_rows() -> list[dict[str, Any]]:
    """`cxr generate`-style rows (reports.jsonl), plus one study ReXrank did not ask for."""
    rows = [
        {"study_id": s, "patient_id": str(p), "findings": f, "impression": i}
        for s, p, _, _, f, i in STUDIES
    ]
    return [*rows, {"study_id": "99999999", "findings": "Clear.", "impression": "Normal."}]


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- the text of model_prediction ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sections"),
    [
        ("Findings: Lungs clear. Impression: Normal.", ("Lungs clear.", "Normal.")),
        # MedVersa's output in ReXrank's example_files/prediction.json: no spaces, no newline.
        ("Findings:Low volumes.  No effusion.Impression:No acute process.",
         ("Low volumes. No effusion.", "No acute process.")),
        ("FINDINGS: Lungs clear.\nIMPRESSION: Normal.", ("Lungs clear.", "Normal.")),
        ("Findings: None. Impression: 1. Stable tubes.", ("", "1. Stable tubes.")),
        ("Impression: Normal.", ("", "Normal.")),
        ("Lungs clear. No effusion.", ("Lungs clear. No effusion.", "")),  # the findings track
        ("", ("", "")),
    ],
)  # fmt: skip
def test_split_labelled_report(text: str, sections: tuple[str, str]) -> None:
    assert split_labelled_report(text) == sections


def test_prediction_text_per_track_reads_back_as_written() -> None:
    findings, impression = "Small left  pleural effusion.\nNo pneumothorax.", "Effusion."
    both = prediction_text(findings, impression, Track.FINDINGS_IMPRESSION)
    assert both == "Findings: Small left pleural effusion. No pneumothorax. Impression: Effusion."
    assert split_labelled_report(both) == (" ".join(findings.split()), impression)
    alone = prediction_text(findings, impression, Track.FINDINGS)
    assert alone == "Small left pleural effusion. No pneumothorax."
    assert split_labelled_report(alone) == (alone, "")
    assert labelled_report("", "Normal.") == "Impression: Normal."
    assert (Track.FINDINGS.section, Track.FINDINGS_IMPRESSION.section) == (
        Section.FINDINGS,
        Section.REPORT,
    )


@pytest.mark.parametrize(
    ("context", "fields"),
    [
        ("Age:50-60.Gender:M.Indication: Cough.Comparison: ___.", ("Cough.", "___.")),
        ("<context>Indication: Fever.</context>", ("Fever.", "")),
        ("Indication: Chest pain, dyspnea Comparison: None.", ("Chest pain, dyspnea", "")),
        ("Age:77.0.Gender:F.Indication:nanComparison: None.", ("", "")),  # CheXpert Plus
        (math.nan, ("", "")),
    ],
)
def test_context_fields(context: Any, fields: tuple[str, str]) -> None:
    assert context_fields(context) == fields


# --- the output file -----------------------------------------------------------------------


def test_output_is_each_input_entry_with_model_prediction(tmp_path: Path) -> None:
    inputs = reference_entries()
    del inputs["58921007"]["section_findings"]  # an entry's own keys are kept as they are
    output = tmp_path / "out.json"
    unreported = "57000000"
    inputs[unreported] = {"image_path": ["/p10/x.jpg"], "key_image_path": "/p10/x.jpg"}

    written = write_predictions(generated_rows(), output, Track.FINDINGS_IMPRESSION, inputs)

    assert written == [s for s, *_ in STUDIES]  # input order; neither extra study
    assert "NaN" in output.read_text()  # ReXrank's bare NaN for a missing section survives
    data = json.loads(output.read_text())
    for study_id, _, _, _, findings, impression in STUDIES:
        entry = data[study_id]
        assert entry.keys() == {*inputs[study_id], "model_prediction"}
        assert entry["model_prediction"] == f"Findings: {findings} Impression: {impression}"
    assert math.isnan(data["53492798"]["section_impression"])
    bare = write_predictions(generated_rows(), tmp_path / "bare.json", Track.FINDINGS)
    assert json.loads((tmp_path / "bare.json").read_text())["99999999"] == {
        "model_prediction": "Clear."
    }
    assert len(bare) == len(STUDIES) + 1


def test_tables_read_from_rexrank_files(tmp_path: Path) -> None:
    references = write_json(tmp_path / "gt.json", reference_entries())
    output = tmp_path / "out.json"
    write_predictions(generated_rows(), output, Track.FINDINGS_IMPRESSION, reference_entries())

    predicted = read_table(output).set_index("study_id")
    reference = read_joined([references]).set_index("study_id")
    # ReXrank's own evaluation reads the references from the output file: so can cxr.
    from_output = read_joined([output]).set_index("study_id")
    for study_id, subject, findings, impression, generated, generated_impression in STUDIES:
        assert predicted.loc[study_id, "findings"] == generated
        assert predicted.loc[study_id, "impression"] == generated_impression
        for table in (reference, from_output):
            assert table.loc[study_id, "findings"] == " ".join(findings.split())
            assert table.loc[study_id, "impression"] == (
                "" if impression != impression else impression
            )
            assert table.loc[study_id, "patient_id"] == str(subject)


def test_references_from_the_report_alone(tmp_path: Path) -> None:
    entries = {
        "patient64620_study1": {
            "image_path": ["valid/patient64620/study1/view1_frontal.png"],
            "report": "Findings: None. Impression: 1. Stable chest tubes.\n2. No pneumothorax.",
        }
    }
    table = read_joined([write_json(tmp_path / "chexpert.json", entries)])
    row = table.iloc[0]
    assert (row["study_id"], row["findings"], row["impression"]) == (
        "patient64620_study1",
        "",
        "1. Stable chest tubes. 2. No pneumothorax.",
    )
    assert row["patient_id"] is None


# --- cxr evaluate on ReXrank files ---------------------------------------------------------


def _metrics(
    predictions: Path, references: Path, section: str, out: Path, *extra: str
) -> dict[str, Any]:
    code = main(
        [
            "evaluate", "--predictions", str(predictions), "--references", str(references),
            "-o", str(out), "--section", section, "--bootstrap", "50", "--meteor", "false",
            "--plots", "false", *extra,
        ]
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("track", list(Track))
def test_evaluate_scores_rexrank_files_as_the_same_studies_in_jsonl(
    track: Track, tmp_path: Path
) -> None:
    references = write_json(tmp_path / "gt.json", reference_entries())
    output = tmp_path / "out.json"
    write_predictions(generated_rows(), output, track, reference_entries())
    # The same studies as cxr's own files: what the track scores, and the patients.
    reference_rows = [
        {"study_id": s, "patient_id": str(p), "findings": f,
         "impression": None if i != i else i}
        for s, p, f, i, _, _ in STUDIES
    ]  # fmt: skip
    prediction_rows = [
        {"study_id": s, "patient_id": str(p), "findings": f,
         "impression": i if track is Track.FINDINGS_IMPRESSION else ""}
        for s, p, _, _, f, i in STUDIES
    ]  # fmt: skip
    jsonl_references = write_jsonl(tmp_path / "refs.jsonl", reference_rows)
    jsonl_predictions = write_jsonl(tmp_path / "preds.jsonl", prediction_rows)

    section = track.section.value
    from_rexrank = _metrics(output, references, section, tmp_path / "rexrank")
    from_jsonl = _metrics(jsonl_predictions, jsonl_references, section, tmp_path / "jsonl")

    assert from_rexrank == from_jsonl
    assert 0 < from_rexrank["BLEU-1"]["value"] < 1


# --- files that are not ReXrank's ----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [[{"id": "s1", "report": "x"}], {"s1": 1}, {"s1": {"text": "no ReXrank key"}}, {"": "x"}],
    ids=["list", "number-values", "unknown-keys", "text-values"],
)
def test_json_of_neither_format_is_an_input_error_naming_the_file(
    content: Any, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "wrong.json", content)
    for references in (True, False):
        with pytest.raises(InputError) as error:
            read_table(path, references=references)
        assert error.value.path == str(path)
        assert "R2Gen-style annotation" in error.value.reason and "ReXrank" in error.value.reason


def test_evaluate_names_the_wrong_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = write_json(tmp_path / "wrong.json", {"s1": {"text": "x"}})
    references = write_json(tmp_path / "gt.json", reference_entries())
    code = main(
        ["evaluate", "--predictions", str(wrong), "--references", str(references),
         "-o", str(tmp_path / "eval"), "--bootstrap", "0"]
    )  # fmt: skip
    assert code == 2
    assert f"{wrong}: unknown JSON" in capsys.readouterr().err


def test_input_file_given_as_predictions_and_unlabelled_output_as_references(
    tmp_path: Path,
) -> None:
    references = write_json(tmp_path / "gt.json", reference_entries())
    with pytest.raises(InputError, match="not predictions"):
        read_table(references)
    output = tmp_path / "out.json"
    write_predictions(generated_rows(), output, Track.FINDINGS)  # no input entries: no sections
    with pytest.raises(InputError, match="no reference text"):
        read_joined([output])
    not_json = tmp_path / "broken.json"
    not_json.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="not JSON"):
        read_table(not_json)


@pytest.mark.parametrize("track", list(Track))
def test_evaluate_writes_the_evaluated_studies_as_rexrank_output(
    track: Track, tmp_path: Path
) -> None:
    """--rexrank_json from cxr's own files scores the same when read back, and against a
    ReXrank reference file each entry is that file's own, with model_prediction added."""
    reference_rows = [
        {"study_id": s, "patient_id": str(p), "findings": f, "impression": None if i != i else i}
        for s, p, f, i, _, _ in STUDIES
    ]
    jsonl_references = write_jsonl(tmp_path / "refs.jsonl", reference_rows)
    predictions = write_jsonl(tmp_path / "preds.jsonl", generated_rows())
    section = track.section.value
    written = tmp_path / "rexrank.json"
    from_jsonl = _metrics(
        predictions, jsonl_references, section, tmp_path / "a", "--rexrank_json", str(written)
    )
    entries = json.loads(written.read_text())
    assert list(entries) == [s for s, *_ in STUDIES]  # the evaluated studies, none other
    assert entries["53492798"]["section_impression"] != entries["53492798"]["section_impression"]
    # the written file holds both sides: as predictions and as references it scores the same
    assert _metrics(written, written, section, tmp_path / "b") == from_jsonl

    gt = write_json(tmp_path / "gt.json", reference_entries())
    _metrics(predictions, gt, section, tmp_path / "c", "--rexrank_json", str(written))
    entries = json.loads(written.read_text())
    for study_id, entry in reference_entries().items():
        assert entries[study_id]["image_path"] == entry["image_path"]
        findings, impression = split_labelled_report(entries[study_id]["model_prediction"])
        generated = next(r for r in generated_rows() if r["study_id"] == study_id)
        assert findings == generated["findings"]
        assert impression == (generated["impression"] if track is Track.FINDINGS_IMPRESSION else "")


def test_rexrank_has_no_impression_track(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "evaluate", "--predictions", str(tmp_path / "p.jsonl"), "--references",
            str(tmp_path / "r.jsonl"), "--section", "impression", "--rexrank_json",
            str(tmp_path / "x.json"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "--section: ReXrank has no impression track" in capsys.readouterr().err
