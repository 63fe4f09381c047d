"""`cxr generate` end to end on phantom DICOM folders with a tiny untrained model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import highdicom as hd
import pandas as pd
import pydicom
import pytest
import torch
from pydicom import Dataset
from pydicom.uid import ComprehensiveSRStorage, generate_uid
from transformers import GenerationConfig

from cxr.cli import main
from cxr.data.datasets.records import report_text
from cxr.data.reports import build_prompt
from cxr.errors import InputError
from cxr.inference.commands import PSEUDONYM_KEY_ENV, pseudonym
from cxr.inference.generator import ReportGenerator
from cxr.inference.outputs import ErrorRecord, Prediction, change_probability_column
from cxr.models import ReportModel
from cxr.synth import synthesize
from cxr.types import CHANGE_FINDINGS, NOT_ASSESSED, Change, Study, StudyImages, change_column

if TYPE_CHECKING:
    from conftest import CrWriter, GenerateRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
CHANGE_CALLS = {change.value for change in Change}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, parsed: a line that is not JSON fails the test."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def phantom_truth(folder: Path) -> dict[str, dict[str, Any]]:
    """The phantom's own report rows (study_id, patient_id, prior_study_id, ...) by study_id."""
    return {row["study_id"]: row for row in read_jsonl(folder / "reports.jsonl")}


def reasons_by_study(errors: list[dict[str, Any]]) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for row in errors:
        if "study_id" in row:
            reasons[row["study_id"]] = f"{reasons.get(row['study_id'], '')} | {row['reason']}"
    return reasons


def reasons_by_file(errors: list[dict[str, Any]]) -> dict[str, str]:
    return {Path(row["path"]).name: row["reason"] for row in errors if "path" in row}


@dataclass
class PhantomRun:
    """One `cxr generate --batch-size 8 --sr --prior-reports` run over the phantom folder."""

    output: Path
    exit_code: int
    studies: dict[str, Study]  # what the command handed to ReportGenerator, by study_id

    @property
    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.output / "reports.jsonl")


@pytest.fixture(scope="session")
def phantom_run(
    phantom_dir: Path, run_generate: GenerateRunner, tmp_path_factory: pytest.TempPathFactory
) -> PhantomRun:
    output = tmp_path_factory.mktemp("phantom_run") / "out"
    seen: dict[str, Study] = {}
    original = ReportGenerator.generate_batches

    def spy(self: ReportGenerator, studies: Any) -> Any:
        studies = list(studies)
        seen.update((study.study_id, study) for study in studies)
        return original(self, studies)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReportGenerator, "generate_batches", spy)
        code = run_generate(
            phantom_dir, output, "--batch-size", "8", "--sr",
            "--prior-reports", str(phantom_dir / "reports.jsonl"),
        )  # fmt: skip
    return PhantomRun(output, code, seen)


# --- 1. a folder of good and bad files --------------------------------------------------------


@pytest.fixture
def mixed_folder(tmp_path: Path, shared_data: Path, write_cr: CrWriter) -> Path:
    """Phantom studies plus one file or study for each way an input can be bad."""
    folder = tmp_path / "mixed"
    synthesize(folder, patients=2, seed=5, size=128, workers=1)
    bad = folder / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("not an image\n")
    _cut_in_half(write_cr(bad / "truncated.dcm", generate_uid(), "BAD-TRUNC"))
    write_cr(bad / "colour.dcm", generate_uid(), "BAD-RGB", colour=True)
    write_cr(bad / "lateral_only.dcm", generate_uid(), "BAD-LAT", view="LL")
    # RG2_JPLY is a hip CR without a view; the copy is labelled a PA chest so that its study
    # reaches pixel decoding, which no installed plugin can do for this file.
    undecodable = pydicom.dcmread(shared_data / "cxr-dicom" / "RG2_JPLY.dcm")
    undecodable.ViewPosition = "PA"
    undecodable.BodyPartExamined = "CHEST"
    undecodable.save_as(bad / "undecodable.dcm")
    # Reportable studies with one bad image: a cut lateral, and a prior whose frontal is cut.
    study = generate_uid()
    write_cr(folder / "partly" / "frontal.dcm", study, "PARTLY", view="AP")
    _cut_in_half(write_cr(folder / "partly" / "lateral.dcm", study, "PARTLY", view="LL"))
    _cut_in_half(
        write_cr(folder / "prior" / "old.dcm", generate_uid(), "PRIOR", study_date="20200101")
    )
    write_cr(folder / "prior" / "new.dcm", generate_uid(), "PRIOR", study_date="20210101")
    return folder


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _header(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def test_mixed_folder_reports_good_studies_once_and_names_every_bad_input_strict_fails(
    mixed_folder: Path, run_generate: GenerateRunner, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    assert run_generate(mixed_folder, output, "--batch-size", "4") == 0

    rows = read_jsonl(output / "reports.jsonl")
    partly = _header(mixed_folder / "partly" / "frontal.dcm").StudyInstanceUID
    new, old = (_header(mixed_folder / "prior" / name) for name in ("new.dcm", "old.dcm"))
    good = {*phantom_truth(mixed_folder), partly, new.StudyInstanceUID}
    assert Counter(row["study_id"] for row in rows) == Counter(good)
    by_id = {row["study_id"]: row for row in rows}
    # Only the images that were read are listed as used; change needs a readable prior.
    assert "lateral_image" not in by_id[partly]
    assert by_id[new.StudyInstanceUID]["prior_study_id"] is None
    assert "prior_frontal_image" not in by_id[new.StudyInstanceUID]
    assert by_id[new.StudyInstanceUID][change_column("edema")] == NOT_ASSESSED

    errors = read_jsonl(output / "errors.jsonl")
    by_file = reasons_by_file(errors)
    assert "not DICOM" in by_file["notes.txt"]
    assert "colour photometric RGB" in by_file["colour.dcm"]
    by_study = reasons_by_study(errors)
    headers = {
        name: _header(mixed_folder / "bad" / name)
        for name in ("truncated.dcm", "lateral_only.dcm", "undecodable.dcm")
    }
    assert "truncated pixel data" in by_study[headers["truncated.dcm"].StudyInstanceUID]
    assert "lateral: " in by_study[partly] and "truncated pixel data" in by_study[partly]
    assert "truncated pixel data" in by_study[old.StudyInstanceUID]
    assert "cannot decode JPEG Extended" in by_study[headers["undecodable.dcm"].StudyInstanceUID]
    lateral_reason = by_study[headers["lateral_only.dcm"].StudyInstanceUID]
    assert "no frontal image" in lateral_reason and "ViewPosition=LL" in lateral_reason
    assert by_study[new.StudyInstanceUID].startswith(" | prior_frontal: ")
    # Reported studies appear in errors.jsonl only for an image they had to leave out.
    assert (good - {partly, new.StudyInstanceUID}).isdisjoint(by_study)

    # --strict: the same folder again (nothing new to report) now exits non-zero.
    reports = (output / "reports.jsonl").read_bytes()
    assert run_generate(mixed_folder, output, "--strict") != 0
    assert (output / "reports.jsonl").read_bytes() == reports
    # errors.jsonl still lists every problem once, including those of reported studies.
    assert sorted(map(json.dumps, read_jsonl(output / "errors.jsonl"))) == sorted(
        map(json.dumps, errors)
    )


def test_exits_non_zero_when_no_study_is_reported(
    tmp_path: Path, run_generate: GenerateRunner, write_cr: CrWriter
) -> None:
    folder = tmp_path / "dicom"
    write_cr(folder / "lateral.dcm", generate_uid(), "ONLY-LAT", view="LL")
    assert run_generate(folder, tmp_path / "out") != 0
    assert _line_count(tmp_path / "out" / "reports.jsonl") == 0
    assert "no frontal image" in (tmp_path / "out" / "errors.jsonl").read_text()


def test_not_a_model_folder_is_a_user_error(
    phantom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["generate", str(phantom_dir), "--model", str(tmp_path), "-o", str(tmp_path / "o")])
    assert code == 2
    assert "not a model folder" in capsys.readouterr().err


# --- 2. killed mid-run, then resumed --------------------------------------------------------


def _line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_reports_every_study_exactly_once(
    tmp_path: Path, model_dir: Path, run_generate: GenerateRunner
) -> None:
    folder = tmp_path / "dicom"
    synthesize(folder, patients=5, seed=13, size=128, workers=1)
    expected = set(phantom_truth(folder))
    assert len(expected) >= 8
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "cxr.cli", "generate", str(folder), "--model", str(model_dir),
        "-o", str(output), "--batch-size", "1", "--max-new-tokens", "16", "--workers", "2",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    try:
        while _line_count(output / "reports.jsonl") < 1 and process.poll() is None:
            assert time.monotonic() < deadline, "no report written within 180 s"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the run and its worker processes
        _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, f"the run ended before the kill: {stderr!r}"
    written_before = _line_count(output / "reports.jsonl")
    assert 1 <= written_before < len(expected), "the kill did not land mid-run"

    assert run_generate(folder, output, "--batch-size", "1", "--max-new-tokens", "16") == 0
    rows = read_jsonl(output / "reports.jsonl")
    assert Counter(row["study_id"] for row in rows) == Counter(expected)
    read_jsonl(output / "errors.jsonl")  # valid JSON on every line
    csv = pd.read_csv(output / "reports.csv", dtype={"study_id": str})
    assert sorted(csv["study_id"]) == sorted(expected)


# --- 3. DICOM SR -----------------------------------------------------------------------------


def test_sr_per_study_reads_back_and_references_its_study(phantom_run: PhantomRun) -> None:
    assert phantom_run.exit_code == 0
    rows = {row["study_id"]: row for row in phantom_run.rows}
    files = sorted((phantom_run.output / "sr").glob("*.sr.dcm"))
    assert len(files) == len(rows)
    for path in files:
        dataset = pydicom.dcmread(path)
        assert dataset.SOPClassUID == ComprehensiveSRStorage
        row = rows[dataset.StudyInstanceUID]
        frontal = pydicom.dcmread(row["frontal_image"], stop_before_pixels=True)
        assert dataset.PatientID == frontal.PatientID
        evidence = dataset.CurrentRequestedProcedureEvidenceSequence[0]
        assert evidence.StudyInstanceUID == dataset.StudyInstanceUID
        referenced = {
            item.ReferencedSOPInstanceUID
            for series in evidence.ReferencedSeriesSequence
            for item in series.ReferencedSOPSequence
        }
        assert frontal.SOPInstanceUID in referenced
        report = hd.sr.srread(path)
        assert report.StudyInstanceUID == row["study_id"]
        if row["findings"]:
            assert row["findings"] in _text_values(report)


def _text_values(dataset: Dataset) -> list[str]:
    """Every TEXT content item's value in an SR content tree."""
    values = [str(dataset.TextValue)] if "TextValue" in dataset else []
    for item in dataset.get("ContentSequence", []):
        values.extend(_text_values(item))
    return values


# --- 4. batch size does not change greedy output ---------------------------------------------


@pytest.mark.slow
def test_greedy_output_is_the_same_for_batch_size_1_and_8(
    phantom_run: PhantomRun, phantom_dir: Path, run_generate: GenerateRunner, tmp_path: Path
) -> None:
    # --prior-reports makes the prompts differ in length, so batch 8 pads some of them.
    prompts = {build_prompt(study.prompt) for study in phantom_run.studies.values()}
    assert len({len(prompt) for prompt in prompts}) > 1
    output = tmp_path / "out"
    options = ["--batch-size", "1", "--prior-reports", str(phantom_dir / "reports.jsonl")]
    assert run_generate(phantom_dir, output, *options) == 0
    single = {row["study_id"]: row for row in read_jsonl(output / "reports.jsonl")}
    batched = {row["study_id"]: row for row in phantom_run.rows}
    assert single.keys() == batched.keys()
    for study_id, row in single.items():
        other = batched[study_id]
        assert (row["findings"], row["impression"]) == (other["findings"], other["impression"])
        for column, value in row.items():
            if column.endswith(("status", "_progression")):
                assert value == other[column], column
            elif isinstance(value, float) and column != "seconds":
                assert value == pytest.approx(other[column], abs=1e-5), column


# --- 5. change against the prior -------------------------------------------------------------


def test_change_is_assessed_only_when_the_prior_is_in_the_folder(
    phantom_run: PhantomRun, phantom_dir: Path
) -> None:
    truth = phantom_truth(phantom_dir)
    rows = phantom_run.rows
    with_prior = [row for row in rows if truth[row["study_id"]]["prior_study_id"]]
    assert with_prior and len(with_prior) < len(rows)
    for row in rows:
        prior = truth[row["study_id"]]["prior_study_id"]
        assert row["prior_study_id"] == prior
        for finding in CHANGE_FINDINGS:
            column = change_column(finding)
            probs = [row[change_probability_column(finding, change)] for change in Change]
            if prior:
                assert row[column] in CHANGE_CALLS
                assert sum(probs) == pytest.approx(1.0, abs=1e-4)
                assert row["prior_frontal_image"]
            else:
                assert row[column] == NOT_ASSESSED and probs == [None, None, None]
                assert "prior_frontal_image" not in row
    csv = pd.read_csv(phantom_run.output / "reports.csv", dtype={"study_id": str})
    no_prior = csv[csv["prior_study_id"].isna()]
    assert len(no_prior) == len(rows) - len(with_prior)
    assert (no_prior[change_column("edema")] == NOT_ASSESSED).all()


def test_prior_reports_are_put_into_the_prompt(phantom_run: PhantomRun, phantom_dir: Path) -> None:
    truth = phantom_truth(phantom_dir)
    assert phantom_run.studies.keys() == truth.keys()
    for study_id, study in phantom_run.studies.items():
        prior = truth[study_id]["prior_study_id"]
        expected = report_text(truth[prior]) if prior else ""
        assert study.prompt.prior_report == expected
        if prior:
            assert " ".join(expected.split()) in build_prompt(study.prompt)


# --- 6. resume --------------------------------------------------------------------------------


def test_second_run_reports_nothing_new_and_keeps_the_rows(
    phantom_run: PhantomRun,
    phantom_dir: Path,
    run_generate: GenerateRunner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out"
    shutil.copytree(phantom_run.output, output)
    before = (output / "reports.jsonl").read_bytes()
    capsys.readouterr()
    assert run_generate(phantom_dir, output, "--batch-size", "8") == 0
    summary = capsys.readouterr().err
    assert f"reported 0, skipped {len(phantom_run.studies)} (already done)" in summary
    assert (output / "reports.jsonl").read_bytes() == before
    csv = pd.read_csv(output / "reports.csv", dtype={"study_id": str})
    assert sorted(csv["study_id"]) == sorted(phantom_truth(phantom_dir))
    assert csv["study_id"].is_unique


# --- 7. pseudonyms ---------------------------------------------------------------------------

PATIENT = "MRN-4711"


@pytest.fixture
def identified_folder(tmp_path: Path, write_cr: CrWriter) -> Path:
    """Two studies of one patient in a folder named after the patient (as PACS exports do)."""
    folder = tmp_path / "export"
    first, second = generate_uid(), generate_uid()
    write_cr(folder / PATIENT / "2023" / "frontal.dcm", first, PATIENT, study_date="20230101")
    write_cr(folder / PATIENT / "2024" / "frontal.dcm", second, PATIENT, study_date="20240101")
    write_cr(folder / PATIENT / "2024" / "lateral.dcm", second, PATIENT, view="LL")
    bad = write_cr(folder / PATIENT / "2025" / "frontal.dcm", generate_uid(), PATIENT)
    bad.write_bytes(bad.read_bytes()[:600])
    return folder


def test_pseudonymize_hides_the_patient_id_in_every_output(
    identified_folder: Path,
    run_generate: GenerateRunner,
    write_cr: CrWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "test-secret")
    write_cr(identified_folder / "anonymous.dcm", generate_uid(), patient_id="")
    output = tmp_path / "out"
    assert run_generate(identified_folder, output, "--pseudonymize", "--sr") == 0
    rows = read_jsonl(output / "reports.jsonl")
    alias = pseudonym(PATIENT, "test-secret")
    # The study without a PatientID is reported too (under a made-up id, hashed as well).
    assert len(rows) == 3 and [row["patient_id"] for row in rows].count(alias) == 2
    assert any(alias in row["frontal_image"] for row in rows)
    for name in ("reports.jsonl", "reports.csv", "errors.jsonl"):
        text = (output / name).read_text(encoding="utf-8")
        assert PATIENT not in text, name
    assert read_jsonl(output / "errors.jsonl"), "the cut file should be listed"
    patients = [pydicom.dcmread(path).PatientID for path in (output / "sr").glob("*.sr.dcm")]
    assert sorted(patients).count(alias) == 2 and PATIENT not in patients


def test_pseudonymize_without_a_key_exits_2_and_says_why(
    identified_folder: Path,
    run_generate: GenerateRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
    assert run_generate(identified_folder, tmp_path / "out", "--pseudonymize") == 2
    assert PSEUDONYM_KEY_ENV in capsys.readouterr().err
    assert not (tmp_path / "out" / "reports.jsonl").exists()


def test_without_pseudonymize_the_patient_id_is_kept(
    identified_folder: Path, run_generate: GenerateRunner, tmp_path: Path
) -> None:
    # The counterpart of the test above, showing that its check on the text can fail.
    assert run_generate(identified_folder, tmp_path / "out") == 0
    rows = read_jsonl(tmp_path / "out" / "reports.jsonl")
    assert {row["patient_id"] for row in rows} == {PATIENT}
    assert PATIENT in (tmp_path / "out" / "errors.jsonl").read_text(encoding="utf-8")


# --- the Python API ------------------------------------------------------------------------------


def test_report_generator_yields_in_input_order_with_an_error_for_an_unreadable_frontal(
    model_dir: Path, tmp_path: Path, write_cr: CrWriter
) -> None:
    good = [
        Study(study_id=f"s{i}", patient_id="P", images=StudyImages(frontal=str(path)))
        for i, path in enumerate(
            write_cr(tmp_path / f"{i}.dcm", generate_uid(), "P", size=32 + 16 * i) for i in range(2)
        )
    ]
    missing = Study(study_id="gone", patient_id="P", images=StudyImages(frontal="/no/such.dcm"))
    generator = ReportGenerator(
        model_dir, batch_size=3, generation_config=GenerationConfig(max_new_tokens=6)
    )
    results = list(generator.generate([good[0], missing, good[1]]))
    predictions = [r for r in results if isinstance(r, Prediction)]
    assert [p.study_id for p in predictions] == ["s0", "s1"]
    assert all(p.model.startswith("tiny@") and p.change == {} for p in predictions)
    errors = [r for r in results if isinstance(r, ErrorRecord)]
    assert {e.study_id for e in errors} == {"gone"}
    assert any("no readable frontal image" in e.reason for e in errors)


@pytest.mark.parametrize(
    ("generation_config", "seed"),
    [
        (GenerationConfig(max_new_tokens=6, do_sample=True, temperature=0.9, top_p=0.9), 3),
        (GenerationConfig(max_new_tokens=6, num_beams=2, repetition_penalty=1.3), 0),
    ],
    ids=["sampling", "beam"],
)
def test_sampling_and_beam_search_are_reproducible(
    model_dir: Path,
    tmp_path: Path,
    write_cr: CrWriter,
    generation_config: GenerationConfig,
    seed: int,
) -> None:
    path = write_cr(tmp_path / "f.dcm", generate_uid(), "P")
    study = Study(study_id="s", patient_id="P", images=StudyImages(frontal=str(path)))
    generator = ReportGenerator(
        model_dir, batch_size=1, generation_config=generation_config, seed=seed
    )
    (first,), (second,) = (list(generator.generate([study])) for _ in range(2))
    assert isinstance(first, Prediction) and isinstance(second, Prediction)
    assert (first.findings, first.impression) == (second.findings, second.impression)


# --- decoding options: the model folder's generation_config.json, field by field -------------


def generate_with(model: Path, dicom_dir: Path, output: Path, *options: str) -> int:
    """`cxr generate` in this process with only the decoding options given (unlike
    `run_generate`, which always gives --max-new-tokens)."""
    command = ["generate", str(dicom_dir), "--model", str(model), "-o", str(output)]
    return main([*command, "--workers", "0", *options])


@pytest.fixture
def two_studies(tmp_path: Path, write_cr: CrWriter) -> Path:
    folder = tmp_path / "dicom"
    for number in range(2):
        write_cr(folder / f"{number}.dcm", generate_uid(), f"P{number}")
    return folder


def test_a_decoding_option_replaces_only_its_field_of_the_model_folder(
    model_dir: Path, two_studies: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    settings_path = folder / "generation_config.json"
    settings = json.loads(settings_path.read_text())
    settings.update(max_new_tokens=7, repetition_penalty=1.3)
    settings_path.write_text(json.dumps(settings))
    decoded: list[tuple[GenerationConfig, torch.Tensor]] = []
    original = ReportModel.generate_ids

    def spy(
        self: ReportModel,
        batch: Any,
        generation_config: Any = None,
        slot_tokens: Any = None,
        heads: Any = None,
    ) -> torch.Tensor:
        token_ids = original(self, batch, generation_config, slot_tokens, heads)
        decoded.append((generation_config, token_ids))
        return token_ids

    monkeypatch.setattr(ReportModel, "generate_ids", spy)

    def run(output: str, *options: str) -> tuple[GenerationConfig, torch.Tensor]:
        decoded.clear()
        assert generate_with(folder, two_studies, tmp_path / output, *options) == 0
        ((config, token_ids),) = decoded  # one batch of both studies
        return config, token_ids

    folder_config, folder_ids = run("folder")
    given_config, given_ids = run("given", "--max-new-tokens", "12")

    # The untrained model never ends a report early: its reports are as long as allowed.
    assert folder_ids.shape == (2, 7)
    assert given_ids.shape == (2, 12)
    assert torch.equal(given_ids[:, :7], folder_ids)  # greedy both times: the same start
    # Every other field, repetition_penalty 1.3 included, is still the folder's.
    assert given_config.repetition_penalty == 1.3
    others = ({**c.to_dict(), "max_new_tokens": None} for c in (folder_config, given_config))
    assert next(others) == next(others)


def test_sampling_options_without_do_sample_are_refused_before_any_work(
    model_dir: Path, two_studies: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Hugging Face would ignore the temperature and decode greedily, with a warning only.
    assert generate_with(model_dir, two_studies, tmp_path / "o", "--temperature", "0.7") == 2
    message = capsys.readouterr().err
    assert "temperature" in message and "do_sample" in message
    assert not (tmp_path / "o").exists()


def test_do_sample_true_samples_with_the_temperature_given(
    model_dir: Path, two_studies: Path, tmp_path: Path
) -> None:
    def reports(output: str, *options: str) -> list[str]:
        short = ("--max-new-tokens", "8")
        assert generate_with(model_dir, two_studies, tmp_path / output, *short, *options) == 0
        rows = read_jsonl(tmp_path / output / "reports.jsonl")
        return [row["findings"] + row["impression"] for row in rows]

    greedy = reports("greedy")
    sampled = reports("sampled", "--do-sample", "true", "--temperature", "5.0", "--top-k", "0")

    # Temperature 5 over the whole vocabulary: 16 sampled tokens equal to greedy's would
    # mean that nothing was sampled.
    assert sampled != greedy


def test_report_generator_refuses_a_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a model folder"):
        ReportGenerator(tmp_path)


def test_generate_takes_a_hub_repo_id_from_the_local_cache_offline(
    model_dir: Path, phantom_dir: Path, tmp_path: Path
) -> None:
    """`--model org/name` reads the repo's snapshot in the local hub cache (HF_HUB_OFFLINE),
    and reports as the folder itself does."""
    from evaluation.runners.hub_folders import save_to_hub_cache

    from cxr.evaluation.hub_cache import hub_cache

    cache = tmp_path / "hub"
    save_to_hub_cache(
        cache, "cxr-test/tiny", lambda f: shutil.copytree(model_dir, f, dirs_exist_ok=True)
    )
    options = ["--workers", "0", "--max-new-tokens", "10"]
    assert main(["generate", str(phantom_dir), "--model", str(model_dir),
                 "-o", str(tmp_path / "folder"), *options]) == 0  # fmt: skip
    with hub_cache(cache):
        assert main(["generate", str(phantom_dir), "--model", "cxr-test/tiny",
                     "-o", str(tmp_path / "hub-id"), *options]) == 0  # fmt: skip

    def reports(folder: str) -> list[str]:
        rows = (tmp_path / folder / "reports.jsonl").read_text().splitlines()
        return sorted(json.loads(row)["findings"] for row in rows)

    assert reports("hub-id") == reports("folder")
    missing = main(["generate", str(phantom_dir), "--model", "cxr-test/absent",
                    "-o", str(tmp_path / "absent"), *options])  # fmt: skip
    assert missing == 2
