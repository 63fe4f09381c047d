"""ReXrank's JSON files: its references and predictions as `cxr evaluate`'s tables, and cxr's
predictions written as the output JSON a ReXrank submission writes.

ReXrank is the public report-generation leaderboard of rexrank.ai (rajpurkarlab.github.io/ReXrank),
repository github.com/rajpurkarlab/ReXrank. What it specifies, and where (paths in that
repository; branch main unless gh-pages is named; read from its snapshot of 2025-09):

Input (the file a submission's inference.py reads): one JSON object keyed by study id, one
object per study (README.md "Dataset"; data/READMD.md, so spelt). Keys:
- `image_path`: list of the study's image paths, relative to the image root; `key_image_path`:
  the frontal image, for models that take one image; `frontal_lateral`: the view of each image.
- `context`: one string with age, gender, indication and comparison when known.
- `section_findings`, `section_impression`: the reference sections; `report`:
  "Findings: " + findings + " Impression: " + impression.
The files (data/mimic-cxr/ReXRank_MIMICCXR_test.json, 2347 studies; data/iu_xray/
ReXRank_IUXray_test.json, 590, and _valid.json, 296; data/chexpert_plus/ReXRank_CheXpertPlus.json,
200) show what the README leaves out:
- ids and images: MIMIC-CXR by study number ("50051329"), images
  "/p10/p10046166/s50051329/<dicom_id>.jpg" (MIMIC-CXR-JPG, with a leading slash; image root
  mimic-cxr/files) plus `subject_id` (the patient, an int) and `split`; IU X-ray by
  "CXR3030_IM-1405", images "CXR3030_IM-1405/0.png" (root iu_xray/images) plus `split`;
  CheXpert Plus by "patient64620_study1", images "valid/patient64620/study1/view1_frontal.png"
  (root chexpert_plus/PNG) plus `ap_pa`, `age`, `sex`, `race`, `ethnicity`,
  `section_clinical_history`. So images are JPEG or PNG files, never DICOM.
- views: MIMIC "antero-posterior", "postero-anterior", "lateral", "left lateral", "Erect" or
  null; IU and CheXpert "Frontal" / "Lateral". In 46 of IU's 590 test studies the
  `frontal_lateral` list is not as long as `image_path` (its views cannot be paired with images).
  `key_image_path` is always one of `image_path`.
- a missing section is a bare NaN (Python's json writes and reads it): 723 MIMIC impressions,
  138 CheXpert findings; `report` then says "None" for it.
- context: "Age:50-60.Gender:M.Indication: ...", "Indication: Chest pain, dyspnea Comparison:
  None.", "Age:77.0.Gender:F.Indication:nanComparison: None."; example_files/prediction.json
  wraps it in "<context>...</context>".
- ReXGradient (the private 10,000-study test set, gh-pages index.html) is run by the organisers;
  its file is not published. We assume it has the keys above.

Tracks: gh-pages index.html and generate_html_from_csv.py show, per dataset, a "Findings" table
(gh-pages results/findings_result_<dataset>.csv) and a "Findings + Impression" table
(results/result_<dataset>.csv); the paper (arXiv 2411.15122) "separately assesses models
capable of generating only findings sections and those providing both". Both tracks read the
same input file; no other input is published.

Output (the file inference.py writes): example_files/merversa_inference.py and
medgamma_inference.py copy each input entry, add `model_prediction` (the generated text) and
write {study id: entry} with json.dump(indent=4); both skip the studies already in an existing
output file. example_files/prediction.json shows MedVersa's text as "Findings:... Impression:...".
How a findings-only model writes its text is not said: we write the findings alone, unlabelled.

Reference and scoring: example_files/evaluation_script.md reads the output file itself (its
entries still carry `section_findings` / `section_impression`), makes the reference
"Findings: {section_findings} Impression: {section_impression}" (None where NaN) and the
prediction `model_prediction`, as study_id,report CSVs scored by CXR-Report-Metric, GREEN,
RaTEScore and FineRadScore. So the reference file is the input file with its sections.

Submission: example_files/submission_tutorial.md (and gh-pages submission_tutorial_round1.md)
asks for a conda "environment.yaml" and `python inference.py <input_json_file>
<output_json_file> <img_root_dir>`; submission_tutorial_round2.md for
`python inference.py --input_json_file X --save_json_file Y --img_root_dir Z`. The MedVersa
example joins the image root and a path by string concatenation (MIMIC's leading slash).

How cxr reads them: a predictions file's `model_prediction` is split at its "Findings:" and
"Impression:" labels (any case); text without a label is findings. A references file gives
`section_findings` and `section_impression`, or its `report` split the same way when neither
key is there. A section that is missing, blank or ReXrank's "None" is empty. `subject_id`
becomes `patient_id`. `split` is not filtered on: each ReXrank file holds one split. The
tracks are `cxr evaluate --section findings` and `--section report` (`Track.section`); cxr
scores its own joined text (findings, a space, impression), without ReXrank's labels.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cxr.errors import InputError
from cxr.jsonl import read_json
from cxr.types import is_missing

if TYPE_CHECKING:
    from cxr.evaluation.studies import Section

IMAGE_PATHS = "image_path"
KEY_IMAGE = "key_image_path"
VIEWS = "frontal_lateral"
CONTEXT = "context"
FINDINGS = "section_findings"
IMPRESSION = "section_impression"
REPORT = "report"
PATIENT = "subject_id"
PREDICTION = "model_prediction"

# Keys of which a study entry has at least one, in every file ReXrank publishes or expects.
_ENTRY_KEYS = frozenset({IMAGE_PATHS, KEY_IMAGE, FINDINGS, IMPRESSION, PREDICTION})
_LABEL = re.compile(r"(?<![A-Za-z])(?P<label>findings|impression)\s*:", re.IGNORECASE)
# Capitalised but not word-bounded: CheXpert Plus writes "Indication:nanComparison: None.".
_CONTEXT_LABEL = re.compile(r"(?P<label>Indication|INDICATION|Comparison|COMPARISON)\s*:")
_CONTEXT_TAGS = re.compile(r"</?context>", re.IGNORECASE)
# How ReXrank's files spell an unknown value inside a text ("Findings: None.", "Indication:nan").
_UNKNOWN_TEXTS = frozenset({"none", "none.", "nan", "null"})

FORMAT_HINT = "a ReXrank file: {study_id: {image_path, section_findings, model_prediction, ...}}"


class Track(str, Enum):
    """ReXrank's two leaderboards: findings only, or findings and impression."""

    FINDINGS = "findings"
    FINDINGS_IMPRESSION = "findings_impression"

    @property
    def section(self) -> Section:
        """The `cxr evaluate --section` that scores this track."""
        from cxr.evaluation.studies import Section

        return Section.FINDINGS if self is Track.FINDINGS else Section.REPORT


def track_of(section: Section) -> Track:
    """The ReXrank track `cxr evaluate --section` scores; ReXrank has no impression track."""
    for track in Track:
        if track.section is section:
            return track
    raise InputError("--section", f"ReXrank has no {section.value} track (findings, report)")


def reference_entries(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """ReXrank entries of a references table: its sections (a bare NaN where one is missing,
    as ReXrank's files write it) and `subject_id` where the table knows the patient."""
    entries: dict[str, dict[str, Any]] = {}
    for row in table.to_dict("records"):
        entry: dict[str, Any] = {
            key: clean_text(row.get(column)) or math.nan
            for key, column in ((FINDINGS, "findings"), (IMPRESSION, "impression"))
        }
        if not is_missing(row.get("patient_id")):
            entry[PATIENT] = str(row["patient_id"])
        entries[str(row["study_id"])] = entry
    return entries


def is_rexrank(data: Any) -> bool:
    """Whether parsed JSON has ReXrank's shape: {study id: {...}} with study keys."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(entry, dict) and _ENTRY_KEYS & entry.keys() for entry in data.values())
    )


def load_entries(path: str | Path) -> dict[str, dict[str, Any]]:
    """A ReXrank file's study entries, by study id (as text)."""
    path = Path(path)
    data = read_json(path)
    if not is_rexrank(data):
        raise InputError(path, f"not {FORMAT_HINT}")
    return entries_of(data)


def entries_of(data: Mapping[Any, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Parsed ReXrank JSON's study entries, by study id as text (MIMIC's ids parse as text
    already; other writers may give numbers)."""
    return {str(study_id): entry for study_id, entry in data.items()}


def clean_text(value: Any) -> str:
    """A section or context value as one line of text; "" when missing or ReXrank's "None"."""
    if is_missing(value) or not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return "" if text.lower() in _UNKNOWN_TEXTS else text


def _labelled(text: str, pattern: re.Pattern[str]) -> dict[str, str] | None:
    """The text after each label up to the next one, by lower-case label; None without labels."""
    matches = list(pattern.finditer(text))
    if not matches:
        return None
    parts: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        label = match["label"].lower()
        parts[label] = " ".join(filter(None, (parts.get(label), text[match.end() : end])))
    return {label: clean_text(part) for label, part in parts.items()}


def split_labelled_report(text: Any) -> tuple[str, str]:
    """(findings, impression) of a text in ReXrank's "Findings: ... Impression: ..." form;
    a text without either label is findings."""
    raw = "" if is_missing(text) or not isinstance(text, str) else text
    parts = _labelled(raw, _LABEL)
    if parts is None:
        return clean_text(raw), ""
    return parts.get("findings", ""), parts.get("impression", "")


def labelled_report(findings: str, impression: str) -> str:
    """ReXrank's "Findings: ... Impression: ..." text; a section without text is left out."""
    parts = [
        f"{label}: {' '.join(text.split())}"
        for label, text in (("Findings", findings), ("Impression", impression))
        if text and text.strip()
    ]
    return " ".join(parts)


def prediction_text(findings: str, impression: str, track: Track) -> str:
    """The `model_prediction` of a study for `track`: the findings alone, or both labelled."""
    if track is Track.FINDINGS:
        return " ".join((findings or "").split())
    return labelled_report(findings, impression)


def context_fields(context: Any) -> tuple[str, str]:
    """(indication, comparison) from a study's `context` string; "" where it has none."""
    raw = _CONTEXT_TAGS.sub(" ", context) if isinstance(context, str) else ""
    parts = _labelled(raw, _CONTEXT_LABEL) or {}
    return parts.get("indication", ""), parts.get("comparison", "")


def patient_id(entry: Mapping[str, Any]) -> str | None:
    """A study entry's patient (`subject_id`, MIMIC-CXR's), as text; None when not given."""
    value = entry.get(PATIENT)
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def predictions_table(path: str | Path, entries: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """A predictions table (study_id, patient_id, findings, impression) of the entries that
    have a `model_prediction`."""
    rows = []
    for study_id, entry in entries.items():
        if PREDICTION not in entry:
            continue
        findings, impression = split_labelled_report(entry[PREDICTION])
        rows.append(
            {
                "study_id": study_id,
                "patient_id": patient_id(entry),
                "findings": findings,
                "impression": impression,
            }
        )
    if not rows:
        raise InputError(
            path,
            f"no study has a {PREDICTION!r}: this ReXrank file is an input or reference file, "
            "not predictions (give it as --references)",
        )
    return pd.DataFrame(rows)


def references_table(path: str | Path, entries: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """A references table (study_id, patient_id, findings, impression) of every entry."""
    rows = []
    for study_id, entry in entries.items():
        if FINDINGS in entry or IMPRESSION in entry:
            findings, impression = (
                clean_text(entry.get(FINDINGS)),
                clean_text(entry.get(IMPRESSION)),
            )
        elif REPORT in entry:
            findings, impression = split_labelled_report(entry[REPORT])
        else:
            raise InputError(
                path,
                f"study {study_id!r} has no reference text ({FINDINGS}, {IMPRESSION} or {REPORT}): "
                "is this an input file without ground truth?",
            )
        rows.append(
            {
                "study_id": study_id,
                "patient_id": patient_id(entry),
                "findings": findings,
                "impression": impression,
            }
        )
    return pd.DataFrame(rows)


def read_table(path: str | Path, data: Any, references: bool) -> pd.DataFrame:
    """Parsed ReXrank JSON `data` (from `path`) as a references or a predictions table."""
    entries = entries_of(data)
    return references_table(path, entries) if references else predictions_table(path, entries)


def write_predictions(
    rows: Iterable[Mapping[str, Any]],
    output: Path,
    track: Track,
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Writes predictions rows (study_id, findings, impression: `cxr generate`'s reports.jsonl)
    as ReXrank's output JSON for `track`; returns the study ids written.

    With `inputs` (the ReXrank input entries), each written entry is the study's input entry
    with `model_prediction` added, in input order, as ReXrank's examples write it (its
    evaluation reads the reference sections from those entries); studies of `inputs` without a
    row are left out, and rows of other studies are ignored. Without `inputs`, every row is
    written as {"model_prediction": text}. The file is replaced whole, never left half-written.
    """
    predicted = {
        str(row["study_id"]): prediction_text(
            clean_text(row.get("findings")), clean_text(row.get("impression")), track
        )
        for row in rows
    }
    if inputs is None:
        entries = {study_id: {PREDICTION: text} for study_id, text in predicted.items()}
    else:
        entries = {
            study_id: {**entry, PREDICTION: predicted[study_id]}
            for study_id, entry in inputs.items()
            if study_id in predicted
        }
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    # allow_nan: input entries keep ReXrank's bare NaN for a missing section, as its files do.
    partial.write_text(json.dumps(entries, indent=4, allow_nan=True), encoding="utf-8")
    os.replace(partial, output)
    return list(entries)
