"""`cxr generate` with Hugging Face vision-language models as the report writer.

Tiny random models of each family (tests/vlm_folders.py) go through the command on phantom
DICOM studies. Their reports are nonsense but deterministic: what is checked is that every
study is reported once, with the outputs of cxr's own models (SR included), the labels the
models do not give "not assessed", batched decoding equal to one study at a time, the prompt
holding the study's clinical context, and a folder with its own code refused unless asked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import torch
from transformers import AutoProcessor, GenerationConfig
from vlm_folders import (
    EXECUTED,
    FAMILY_BUILDERS,
    MAIRA2_CALLS,
    build_maira2_standin_folder,
    build_remote_code_folder,
)

from cxr.cli import main
from cxr.data.datasets.records import read_reports, studies_from_index
from cxr.data.reports import split_report
from cxr.errors import InputError
from cxr.inference.backends import Family, detect_family
from cxr.inference.backends.base import resolve_folder_generation_config
from cxr.inference.backends.images import StudyPictures, to_picture
from cxr.inference.backends.prompts import CHAT_PROMPTS, ChatPrompt, instruction, read_answer
from cxr.inference.backends.remote_code import chexagent_query, maira2_arguments
from cxr.inference.generator import ReportGenerator, model_fingerprint
from cxr.inference.outputs import Prediction
from cxr.io import XrayImage, index_folder
from cxr.jsonl import read_jsonl
from cxr.tube_line import status_column
from cxr.types import (
    CHANGE_FINDINGS,
    NOT_ASSESSED,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Prompt,
    Study,
    StudyImages,
    change_column,
)

MAX_NEW_TOKENS = "4"
FAMILIES = list(FAMILY_BUILDERS)
# The placeholder each family's chat template writes for one image.
IMAGE_PLACEHOLDERS = {
    "gemma3": "<start_of_image>",
    "qwen2_5_vl": "<|image_pad|>",
    "qwen3_vl": "<|image_pad|>",
    "llava": "<image>",
}


@pytest.fixture(scope="session")
def vlm_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The tiny model folder of a family, built once per session."""
    built: dict[str, Path] = {}

    def folder(family: str) -> Path:
        if family not in built:
            built[family] = FAMILY_BUILDERS[family](tmp_path_factory.mktemp(family) / family)
        return built[family]

    return folder


def generate(model: Path, dicom_dir: Path, output: Path, *options: str) -> int:
    """`cxr generate` in this process, no worker processes, short reports."""
    return main(
        [
            "generate", str(dicom_dir), "--model", str(model), "-o", str(output),
            "--workers", "0", "--max-new-tokens", MAX_NEW_TOKENS, *options,
        ]
    )  # fmt: skip


@dataclass
class Run:
    folder: Path
    output: Path
    rows: list[dict[str, Any]]


@pytest.fixture(scope="session")
def family_run(
    vlm_folder: Callable[[str], Path], phantom_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Run]:
    """`cxr generate --sr --batch-size 4` of a family's tiny model over the phantom folder,
    run once per session."""
    runs: dict[str, Run] = {}

    def run(family: str) -> Run:
        if family not in runs:
            folder = vlm_folder(family)
            output = tmp_path_factory.mktemp(f"{family}-out")
            assert generate(folder, phantom_dir, output, "--sr", "--batch-size", "4") == 0
            runs[family] = Run(folder, output, read_jsonl(output / "reports.jsonl"))
        return runs[family]

    return run


def _sr_texts(dataset: pydicom.Dataset) -> list[str]:
    """Every TEXT value of an SR content tree."""
    texts = []
    for item in getattr(dataset, "ContentSequence", []):
        if item.ValueType == "TEXT":
            texts.append(str(item.TextValue))
        texts.extend(_sr_texts(item))
    return texts


# --- every family through `cxr generate` -------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_every_study_is_reported_once_with_labels_not_assessed_and_a_readable_sr(
    family: str, family_run: Callable[[str], Run], phantom_dir: Path
) -> None:
    run = family_run(family)
    index = index_folder(phantom_dir, workers=1)
    expected = {study.study_id for study in index.studies if study.frontal}
    ids = [row["study_id"] for row in run.rows]
    assert sorted(ids) == sorted(expected) and len(expected) >= 4
    errors = read_jsonl(run.output / "errors.jsonl")
    assert all("study_id" not in error for error in errors)  # only the non-DICOM files
    fingerprint = model_fingerprint(run.folder)
    for row in run.rows:
        assert row["model"] == fingerprint
        assert row["frontal_image"]
        assert all(row[label] is None for label in TUBE_LINE_LABELS)
        assert all(row[status_column(device)] == NOT_ASSESSED for device in TUBE_LINE_DEVICES)
        assert all(row[observation] is None for observation in OBSERVATIONS)
        assert all(row[change_column(finding)] == NOT_ASSESSED for finding in CHANGE_FINDINGS)
        assert row["prior_study_id"] is None  # no change assessed against it

    sr_files = sorted((run.output / "sr").glob("*.dcm"))
    assert len(sr_files) == len(run.rows)
    for path in sr_files:
        dataset = pydicom.dcmread(path)
        assert dataset.StudyInstanceUID in expected
        # 4 devices, 14 observations and 5 change findings, each said not assessed.
        count = len(TUBE_LINE_DEVICES) + len(OBSERVATIONS) + len(CHANGE_FINDINGS)
        assert _sr_texts(dataset).count(NOT_ASSESSED) == count
    assert (run.output / "reports.csv").read_text().count("\n") == len(run.rows) + 1


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_greedy_reports_equal_one_study_at_a_time(
    family: str, family_run: Callable[[str], Run], phantom_dir: Path
) -> None:
    run = family_run(family)
    index = index_folder(phantom_dir, workers=1)
    studies = list(studies_from_index(index.studies, {}, {}, source="generate"))
    generator = ReportGenerator(
        run.folder,
        batch_size=1,
        generation_config=GenerationConfig(max_new_tokens=int(MAX_NEW_TOKENS)),
    )
    single = {
        p.study_id: (p.findings, p.impression)
        for p in generator.generate(studies)
        if isinstance(p, Prediction)
    }
    batched = {row["study_id"]: (row["findings"], row["impression"]) for row in run.rows}
    assert single == batched
    # Something was written: random weights seldom stop at once, never for all studies.
    assert any(findings or impression for findings, impression in single.values())


def test_rerun_after_a_kill_reports_only_the_missing_studies_and_pseudonymizes(
    vlm_folder: Callable[[str], Path],
    phantom_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = vlm_folder("llava")
    monkeypatch.setenv("CXR_PSEUDONYM_KEY", "secret")
    output = tmp_path / "out"
    assert generate(folder, phantom_dir, output, "--pseudonymize") == 0
    reports = output / "reports.jsonl"
    lines = reports.read_text(encoding="utf-8").splitlines(keepends=True)
    # As a kill during the write of the fourth line leaves the file.
    reports.write_text("".join(lines[:3]) + lines[3][:20], encoding="utf-8")
    assert generate(folder, phantom_dir, output, "--pseudonymize") == 0
    rerun = reports.read_text(encoding="utf-8").splitlines(keepends=True)
    assert rerun[:3] == lines[:3]

    def reported(rows: list[str]) -> list[dict[str, Any]]:
        return sorted(({**json.loads(r), "seconds": None} for r in rows), key=str)

    assert reported(rerun) == reported(lines)  # each study once, as the first run wrote it
    written = reports.read_text(encoding="utf-8") + (output / "errors.jsonl").read_text()
    patients = {study.patient_id for study in index_folder(phantom_dir, workers=1).studies}
    assert patients and not any(patient in written for patient in patients if patient)


def test_prior_report_and_indication_reach_the_prompt(
    vlm_folder: Callable[[str], Path],
    phantom_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: dict[str, str] = {}
    messages = ChatPrompt.messages

    def spy(self: ChatPrompt, item: StudyPictures, with_pictures: bool = True) -> Any:
        conversation = messages(self, item, with_pictures)
        shown[item.study.study_id] = conversation[-1]["content"][-1]["text"]
        return conversation

    monkeypatch.setattr(ChatPrompt, "messages", spy)
    prior_reports = phantom_dir / "reports.jsonl"
    options = ("--prior-reports", str(prior_reports))
    assert generate(vlm_folder("qwen2_5_vl"), phantom_dir, tmp_path / "o", *options) == 0
    reports = read_reports(prior_reports)
    with_prior = [row for row in reports.values() if row.get("prior_study_id")]
    assert with_prior and len(shown) == len(reports)
    for study_id, row in reports.items():
        text = shown[study_id]
        assert f"INDICATION: {row['indication']}" in text
        assert ("PRIOR REPORT:" in text) == bool(row.get("prior_study_id"))
        assert row["findings"] not in text  # the study's own report is never shown
    for row in with_prior:
        prior = reports[row["prior_study_id"]]
        assert " ".join(prior["findings"].split()) in shown[row["study_id"]]
        assert "the frontal view of the prior study" in shown[row["study_id"]]


# --- prompt builders ---------------------------------------------------------------------------


def _pictures(*slots: str, prompt: Prompt | None = None) -> StudyPictures:
    study = Study(study_id="s", patient_id="P", prompt=prompt or Prompt())
    grey = XrayImage(np.full((40, 30), 0.5, dtype=np.float32), None, "x")  # type: ignore[arg-type]
    return StudyPictures(study, {slot: to_picture(grey) for slot in slots})


CONTEXT = Prompt(indication="Fever.", technique="PA view.", prior_report="Mild edema.")


def test_instruction_names_each_image_and_the_known_context_only() -> None:
    text = instruction(CONTEXT, ["frontal", "lateral", "prior_frontal"])
    assert (
        "in order: the current frontal view; the current lateral view; the frontal view of" in text
    )
    assert "INDICATION: Fever.\nTECHNIQUE: PA view.\nPRIOR REPORT: Mild edema." in text
    assert "COMPARISON" not in text  # unknown, so not written
    assert "in order" not in instruction(Prompt(), ["frontal"])


@pytest.mark.parametrize("family", FAMILIES)
def test_chat_template_renders_each_fed_image_and_the_context(
    family: str, vlm_folder: Callable[[str], Path]
) -> None:
    processor = AutoProcessor.from_pretrained(vlm_folder(family), local_files_only=True)
    chat = CHAT_PROMPTS[Family(family)]
    slots = [slot for slot in ("frontal", "lateral", "prior_frontal") if slot in chat.slots]
    rendered = processor.apply_chat_template(
        chat.messages(_pictures(*slots, prompt=CONTEXT)),
        add_generation_prompt=True,
        tokenize=False,
    )
    assert rendered.count(IMAGE_PLACEHOLDERS[family]) == len(slots)
    assert "INDICATION: Fever." in rendered and "PRIOR REPORT: Mild edema." in rendered
    # LLaVA-1.5 style models read one image; MedGemma the current views; Qwen every slot.
    assert len(slots) == {"llava": 1, "gemma3": 2}.get(family, 3)


def test_medgemma_prompt_has_a_system_turn_and_the_text_before_the_image() -> None:
    (system, user) = CHAT_PROMPTS[Family.GEMMA3].messages(_pictures("frontal"))
    assert system["role"] == "system" and "radiologist" in system["content"][0]["text"]
    assert [item["type"] for item in user["content"]] == ["text", "image"]


def test_maira2_gets_every_part_of_the_study_and_none_for_what_is_unknown() -> None:
    item = _pictures("frontal", "prior_frontal", prompt=CONTEXT)
    arguments = maira2_arguments(item)
    assert arguments["current_frontal"] is item.pictures["frontal"]
    assert arguments["prior_frontal"] is item.pictures["prior_frontal"]
    assert arguments["current_lateral"] is None
    assert arguments["indication"] == "Fever." and arguments["technique"] == "PA view."
    assert arguments["prior_report"] == "Mild edema." and arguments["comparison"] is None
    assert arguments["get_grounding"] is False


def test_chexagent_query_lists_the_image_files_then_the_instruction() -> None:
    query = chexagent_query(_pictures("frontal", "lateral", prompt=CONTEXT), ["f.png", "l.png"])
    assert query[:2] == [{"image": "f.png"}, {"image": "l.png"}]
    assert "PRIOR REPORT: Mild edema." in query[2]["text"]


@pytest.mark.parametrize(
    "answer",
    [
        "**Findings:** Lungs are clear.\n\n**Impression:** Normal.",
        "## Findings\nLungs are clear.\n## Impression\nNormal.",
        "findings: Lungs are clear.\nimpression: Normal.",
        "FINDINGS: Lungs are clear. IMPRESSION: Normal.",
    ],
)
def test_a_chat_model_s_section_headers_are_read_as_cxr_s(answer: str) -> None:
    assert split_report(read_answer(answer)) == ("Lungs are clear.", "Normal.")


def test_findings_inside_a_sentence_are_not_a_header() -> None:
    answer = "No new findings: stable lines."
    assert read_answer(answer) == answer


def test_pictures_keep_bright_as_dense() -> None:
    pixels = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    picture = to_picture(XrayImage(pixels, None, "x"))  # type: ignore[arg-type]
    assert picture.mode == "RGB"
    assert np.asarray(picture)[0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]


# --- which folder is which, and which code runs -------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_a_hugging_face_folder_is_recognised_by_its_config(
    family: str, vlm_folder: Callable[[str], Path]
) -> None:
    assert detect_family(vlm_folder(family)) is Family(family)


def test_a_cxr_folder_is_cxr_s_own_despite_its_auto_map(model_dir: Path) -> None:
    assert "auto_map" in json.loads((model_dir / "config.json").read_text())
    assert detect_family(model_dir) is Family.CXR


def test_an_unknown_model_names_the_families_that_run(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match=r"a bert model.*Gemma 3.*Qwen2\.5-VL.*MAIRA-2"):
        detect_family(tmp_path)
    with pytest.raises(InputError, match="not a model folder"):
        detect_family(tmp_path / "missing")


@pytest.mark.parametrize("family", ["maira2", "chexagent"])
def test_a_folder_with_its_own_code_is_refused_without_the_flag_and_nothing_runs(
    family: str, phantom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = build_remote_code_folder(tmp_path / family, family)
    assert generate(folder, phantom_dir, tmp_path / "out") == 2
    message = capsys.readouterr().err
    assert str(folder) in message and "--trust-remote-code" in message
    assert f"modeling_{family}.py" in message
    assert not (folder / EXECUTED).exists()
    assert not (tmp_path / "out").exists()  # refused before any work


def test_with_trust_remote_code_the_folder_s_code_runs(
    phantom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = build_remote_code_folder(tmp_path / "maira2", "maira2")
    assert generate(folder, phantom_dir, tmp_path / "out", "--trust-remote-code") == 2
    assert (folder / EXECUTED).exists()  # the flag, spelt as the issue spells it, ran it
    # The stand-in defines no classes: a clear error, not a traceback.
    assert "cannot load the MAIRA-2 processor" in capsys.readouterr().err


def test_maira2_s_interface_runs_end_to_end_with_every_part_of_each_study(
    phantom_dir: Path, tmp_path: Path
) -> None:
    # A folder name of its own: transformers caches a folder's code modules by folder name.
    folder = build_maira2_standin_folder(tmp_path / "maira2-standin")
    prior_reports = phantom_dir / "reports.jsonl"
    options = ("--trust-remote-code", "--prior-reports", str(prior_reports), "--batch-size", "4")
    assert generate(folder, phantom_dir, tmp_path / "out", *options) == 0

    rows = read_jsonl(tmp_path / "out" / "reports.jsonl")
    reports = read_reports(prior_reports)
    assert sorted(row["study_id"] for row in rows) == sorted(reports)
    assert all(row["model"] == model_fingerprint(folder) for row in rows)
    assert all(row[label] is None for row in rows for label in TUBE_LINE_LABELS)
    calls = read_jsonl(folder / MAIRA2_CALLS)  # one processor call per study, in study order
    assert len(calls) == len(rows)
    for row, call in zip(rows, calls, strict=True):
        known = reports[row["study_id"]]
        assert call["indication"] == known["indication"] and call["get_grounding"] is False
        assert call["lateral"] == bool(row.get("lateral_image"))
        has_prior = bool(known.get("prior_study_id"))
        assert call["prior_frontal"] == has_prior == bool(row.get("prior_frontal_image"))
        assert (call["prior_report"] is not None) == has_prior
        assert call["images"] == 1 + call["lateral"] + call["prior_frontal"]


# --- decoding settings of a Hugging Face folder ------------------------------------------------


def test_folder_settings_apply_and_do_sample_false_drops_the_folder_s_sampling() -> None:
    defaults = GenerationConfig(max_new_tokens=160, do_sample=False, temperature=1.0, top_p=1.0)
    folder = GenerationConfig(do_sample=True, top_k=64, top_p=0.95)
    sampled = resolve_folder_generation_config(defaults, folder, None)
    assert (sampled.do_sample, sampled.top_k, sampled.top_p) == (True, 64, 0.95)
    assert sampled.max_new_tokens == 160  # the folder does not say: cxr's default
    greedy = resolve_folder_generation_config(
        defaults, folder, GenerationConfig(do_sample=False, max_new_tokens=9)
    )
    assert (greedy.do_sample, greedy.top_k, greedy.top_p, greedy.max_new_tokens) == (
        False,
        None,
        1.0,
        9,
    )
    greedy.validate(strict=True)  # nothing contradictory left


# --- the vLLM engine ---------------------------------------------------------------------------


def _has_vllm() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_has_vllm(), reason="vllm is installed here")
def test_engine_vllm_without_vllm_says_how_to_get_it(
    vlm_folder: Callable[[str], Path],
    phantom_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert generate(vlm_folder("llava"), phantom_dir, tmp_path / "o", "--engine", "vllm") == 2
    message = capsys.readouterr().err
    assert "make vllm-env" in message and "requirements-vllm.txt" in message


def test_engine_vllm_refuses_cxr_s_own_folder(
    model_dir: Path, phantom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate(model_dir, phantom_dir, tmp_path / "o", "--engine", "vllm") == 2
    assert "cxr's own" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", FAMILIES)
def test_engine_vllm_reports_every_study(
    family: str,
    vlm_folder: Callable[[str], Path],
    family_run: Callable[[str], Run],
    phantom_dir: Path,
    tmp_path: Path,
) -> None:
    output = tmp_path / "vllm"
    assert (
        generate(vlm_folder(family), phantom_dir, output, "--engine", "vllm", "--device", "cuda")
        == 0
    )
    rows = read_jsonl(output / "reports.jsonl")
    assert sorted(r["study_id"] for r in rows) == sorted(
        r["study_id"] for r in family_run(family).rows
    )


def test_a_study_without_a_readable_frontal_is_an_error_not_a_report(
    vlm_folder: Callable[[str], Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a dicom file")
    study = Study(study_id="s", patient_id="P", images=StudyImages(frontal=str(broken)))
    generator = ReportGenerator(
        vlm_folder("llava"), generation_config=GenerationConfig(max_new_tokens=2)
    )
    (frontal_error, study_error) = list(generator.generate([study]))
    assert not isinstance(frontal_error, Prediction) and not isinstance(study_error, Prediction)
    assert frontal_error.reason.startswith("frontal: ")
    assert study_error.reason == "no readable frontal image"
