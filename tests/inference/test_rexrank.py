"""`cxr rexrank` end to end: a phantom ReXrank input JSON over synthetic DICOM (and one PNG)
files, a tiny untrained model, and the entry point and environment file of a submission."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomllib
import yaml
from models.tiny_models import tiny_decoder, tiny_encoder, tiny_model, train_tokenizer
from PIL import Image

from cxr.cli import main
from cxr.evaluation import rexrank as rexrank_format
from cxr.inference.outputs import ErrorRecord
from cxr.inference.rexrank import rexrank_study, view_role
from cxr.io import index_folder, read_image
from cxr.synth import synthesize
from cxr.types import ImageRole, Study

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_NEW_TOKENS = 8


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' tiny model (64 px, 1-layer decoder), decoding 8 tokens, saved as cxr exports it."""
    model = tiny_model(
        train_tokenizer(),
        tiny_decoder(layers=1, positions=512),
        encoder=tiny_encoder(name="resnet10t"),
    )
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    return model.save_pretrained(tmp_path_factory.mktemp("rexrank_model") / "tiny")


@dataclass
class RexrankInput:
    """A ReXrank input JSON over a phantom image folder, and what each study should give."""

    path: Path
    img_root: Path
    entries: dict[str, dict[str, Any]]
    good: list[str]  # studies that must be reported
    broken: dict[str, str]  # study id -> words its recorded reason must hold


@pytest.fixture(scope="module")
def rexrank_input(tmp_path_factory: pytest.TempPathFactory) -> RexrankInput:
    """Phantom studies described as ReXrank describes MIMIC-CXR (a leading "/", views spelt
    "postero-anterior" / "lateral", subject_id, NaN impression) and IU X-ray ("Frontal"/"Lateral",
    PNG), plus three studies that cannot be reported: a corrupt frontal, a missing frontal file,
    and an entry that names no frontal at all."""
    root = tmp_path_factory.mktemp("rexrank") / "images"
    synthesize(root, patients=2, seed=11, size=128, workers=1)
    truth = {row["study_id"]: row for row in read_jsonl(root / "reports.jsonl")}
    entries: dict[str, dict[str, Any]] = {}
    for number, study in enumerate(index_folder(root, workers=1, progress=False).studies):
        assert study.frontal is not None
        row = truth[study.study_id]
        paths = [Path(p).relative_to(root).as_posix() for p in (study.frontal, study.lateral) if p]
        if number == 0:  # IU X-ray's spelling, with the frontal as a PNG
            png = Path(study.frontal).with_suffix(".png")
            pixels = np.round(read_image(study.frontal).pixels * 255).astype(np.uint8)
            Image.fromarray(pixels).save(png)
            paths[0] = png.relative_to(root).as_posix()
            views: list[Any] = ["Frontal", "Lateral"][: len(paths)]
        else:  # MIMIC-CXR's spelling
            paths = ["/" + p for p in paths]
            views = ["postero-anterior", "lateral"][: len(paths)]
        entries[f"s{number}"] = {
            "image_path": paths,
            "key_image_path": paths[0],
            "frontal_lateral": views,
            "context": f"Age:60-70.Gender:F.Indication: {row['indication']}Comparison: None.",
            "section_findings": row["findings"],
            "section_impression": row["impression"] if number % 2 else math.nan,
            "subject_id": 10000 + number,
        }
    good = list(entries)
    (root / "broken").mkdir()
    (root / "broken" / "garbage.dcm").write_bytes(b"not an image at all" * 10)
    entries["corrupt"] = {
        "image_path": ["broken/garbage.dcm"],
        "key_image_path": "broken/garbage.dcm",
        "frontal_lateral": ["Frontal"],
        "section_findings": "Lungs are clear.",
    }
    entries["missing"] = {
        "image_path": ["broken/absent.png"],
        "key_image_path": "broken/absent.png",
        "frontal_lateral": ["Frontal"],
        "section_findings": "Lungs are clear.",
    }
    entries["no_frontal"] = {
        "image_path": [entries["s1"]["image_path"][0]],
        "frontal_lateral": ["Erect"],
        "section_findings": "Lungs are clear.",
    }
    path = root.parent / "input.json"
    path.write_text(json.dumps(entries, indent=4), encoding="utf-8")
    broken = {"corrupt": "not DICOM", "missing": "cannot open", "no_frontal": "no frontal image"}
    return RexrankInput(path, root, entries, good, broken)


def run_rexrank(inputs: RexrankInput, output: Path, model_dir: Path, *options: str) -> int:
    return main(
        [
            "rexrank", str(inputs.path), str(output), str(inputs.img_root),
            "--model", str(model_dir), "--workers", "0", *options,
        ]
    )  # fmt: skip


def test_every_study_is_reported_and_broken_images_are_recorded_not_fatal(
    rexrank_input: RexrankInput,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "predictions.json"
    assert run_rexrank(rexrank_input, output, tiny_model_dir, "--batch-size", "2") == 0
    log = capsys.readouterr().err

    written = json.loads(output.read_text(encoding="utf-8"))
    assert list(written) == rexrank_input.good  # input order; no entry for a failed study
    for study_id, entry in written.items():
        # The input entry, untouched (NaN included), with the report added.
        expected = rexrank_input.entries[study_id]
        assert {k: v for k, v in entry.items() if k != "model_prediction"}.keys() == expected.keys()
        assert entry["image_path"] == expected["image_path"]
        assert entry["model_prediction"].startswith("Findings: ")
    assert math.isnan(written["s0"]["section_impression"])

    work = tmp_path / "predictions.cxr"
    rows = {row["study_id"]: row for row in read_jsonl(work / "reports.jsonl")}
    assert sorted(rows) == sorted(rexrank_input.good)
    for study_id, row in rows.items():
        text = rexrank_format.labelled_report(row["findings"], row["impression"])
        assert written[study_id]["model_prediction"] == text
        assert row["patient_id"] == str(rexrank_input.entries[study_id]["subject_id"])
    # The PNG frontal and the MIMIC-style "/"-rooted paths were read, laterals included.
    assert rows["s0"]["frontal_image"].endswith(".png")
    for study_id in rexrank_input.good:
        with_lateral = len(rexrank_input.entries[study_id]["image_path"]) == 2
        assert ("lateral_image" in rows[study_id]) == with_lateral

    reasons: dict[str, str] = {}
    for error in read_jsonl(work / "errors.jsonl"):
        reasons[error["study_id"]] = reasons.get(error["study_id"], "") + error["reason"]
    assert reasons.keys() == rexrank_input.broken.keys()
    for study_id, words in rexrank_input.broken.items():
        assert words in reasons[study_id], (study_id, reasons[study_id])
        assert f"study {study_id} not reported: " in log


def test_findings_track_rewrites_the_output_without_generating_again(
    rexrank_input: RexrankInput, tiny_model_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.json"
    assert run_rexrank(rexrank_input, output, tiny_model_dir, "--strict") == 1  # 3 failed
    work = tmp_path / "out.cxr"
    reports = (work / "reports.jsonl").read_bytes()

    findings_output = tmp_path / "findings.json"
    code = run_rexrank(
        rexrank_input, findings_output, tiny_model_dir, "--track", "findings",
        "--work-dir", str(work),
    )  # fmt: skip
    assert code == 0
    assert (work / "reports.jsonl").read_bytes() == reports  # every study was already reported
    rows = {row["study_id"]: row for row in read_jsonl(work / "reports.jsonl")}
    written = json.loads(findings_output.read_text(encoding="utf-8"))
    assert list(written) == rexrank_input.good
    for study_id, entry in written.items():
        assert entry["model_prediction"] == " ".join(rows[study_id]["findings"].split())
        assert "Impression:" not in entry["model_prediction"]


def test_output_scores_with_cxr_evaluate_against_the_input(
    rexrank_input: RexrankInput, tiny_model_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.json"
    assert run_rexrank(rexrank_input, output, tiny_model_dir) == 0
    code = main(
        [
            "evaluate", "--predictions", str(output), "--references", str(rexrank_input.path),
            "-o", str(tmp_path / "eval"), "--bootstrap", "0", "--plots", "false",
            "--meteor", "false",
        ]
    )  # fmt: skip
    assert code == 0
    unmatched = (tmp_path / "eval" / "unmatched_ids.csv").read_text(encoding="utf-8")
    assert set(rexrank_input.broken) <= set(re.findall(r"^(\w+),", unmatched, re.MULTILINE))


@pytest.mark.parametrize(
    ("view", "role"),
    [
        ("Frontal", ImageRole.FRONTAL),
        ("postero-anterior", ImageRole.FRONTAL),
        ("antero-posterior", ImageRole.FRONTAL),
        ("Lateral", ImageRole.LATERAL),
        ("left lateral", ImageRole.LATERAL),
        ("Erect", ImageRole.OTHER),
        (math.nan, ImageRole.OTHER),
    ],
)
def test_view_labels_of_every_rexrank_file(view: Any, role: ImageRole) -> None:
    assert view_role(view) is role


def test_a_study_from_an_entry(tmp_path: Path) -> None:
    entry = {
        "image_path": ["/p10/p1/s5/lat.jpg", "/p10/p1/s5/pa.jpg"],
        "key_image_path": "/p10/p1/s5/pa.jpg",
        "frontal_lateral": ["lateral", "postero-anterior"],
        "context": "<context>Age:50-60.Gender:M.Indication: Cough.Comparison: Chest radiograph ___.</context>",
        "subject_id": 10046166,
    }
    study = rexrank_study("5", entry, tmp_path)
    assert isinstance(study, Study)
    assert study.images.frontal == str(tmp_path / "p10/p1/s5/pa.jpg")
    assert study.images.lateral == str(tmp_path / "p10/p1/s5/lat.jpg")
    assert study.patient_id == "10046166"
    assert (study.prompt.indication, study.prompt.comparison) == ("Cough.", "Chest radiograph ___.")
    # IU X-ray lists a view per image only sometimes: unpaired views give no lateral.
    unpaired = rexrank_study("iu", {**entry, "frontal_lateral": ["Frontal"]}, tmp_path)
    assert isinstance(unpaired, Study) and unpaired.images.lateral is None
    without_context = rexrank_study("5", entry, tmp_path, context=False)
    assert isinstance(without_context, Study) and without_context.prompt.indication == ""
    unusable = rexrank_study("x", {"image_path": ["a.png"], "frontal_lateral": ["Erect"]}, tmp_path)
    assert isinstance(unusable, ErrorRecord) and "no frontal image" in unusable.reason


def test_the_inference_script_takes_both_of_rexranks_spellings(
    rexrank_input: RexrankInput,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location(
        "rexrank_inference", REPO_ROOT / "scripts" / "rexrank_inference.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("CXR_REXRANK_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CXR_REXRANK_DEVICE", "cpu")
    first, second = tmp_path / "round1.json", tmp_path / "round2.json"
    assert script.main([str(rexrank_input.path), str(first), str(rexrank_input.img_root)]) == 0
    args = [
        "--input_json_file", str(rexrank_input.path), "--save_json_file", str(second),
        "--img_root_dir", str(rexrank_input.img_root),
    ]  # fmt: skip
    assert script.main(args) == 0
    assert json.loads(first.read_text()) == json.loads(second.read_text())
    assert list(json.loads(first.read_text())) == rexrank_input.good


def _requirement(text: str) -> tuple[str, str | None]:
    """(canonical name, pinned version or None) of a requirement such as `jsonargparse[x]==4`."""
    match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]+\])?(?:==(\S+))?", text)
    assert match is not None, text
    return re.sub(r"[-_.]+", "-", match[1]).lower(), match[2]


def test_environment_file_pins_every_dependency_as_constraints_txt_does() -> None:
    environment = yaml.safe_load((REPO_ROOT / "scripts" / "rexrank_environment.yaml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    pinned = dict(map(_requirement, pip))
    constraints = dict(
        _requirement(line)
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert None not in pinned.values()
    assert {name: constraints.get(name) for name in pinned} == pinned
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    required = {_requirement(d)[0] for d in project["dependencies"]}
    assert required <= pinned.keys()
