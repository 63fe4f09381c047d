"""A written phantom folder: layout, reports.jsonl and labels.csv, determinism, round trip."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from cxr.errors import InputError
from cxr.synth import SynthSummary, synthesize
from cxr.synth.labels import LABEL_COLUMNS
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, TUBE_LINE_LABELS, change_column

REPORT_KEYS = {
    "study_id",
    "patient_id",
    "study_datetime",
    "prior_study_id",
    "indication",
    "technique",
    "comparison",
    "findings",
    "impression",
}


def read_reports(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "reports.jsonl").read_text().splitlines()]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_layout_and_summary(synth_folder: tuple[Path, SynthSummary]) -> None:
    folder, summary = synth_folder
    files = sorted(folder.rglob("*.dcm"))
    assert len(files) == summary.images and summary.studies >= summary.patients
    assert summary.lateral_images > 0 and summary.compressed_images > 0
    for path in files:
        study_dir = path.parent
        assert path.name in ("frontal.dcm", "lateral.dcm")
        assert study_dir.parent.parent == folder
        date, _, short = study_dir.name.partition("_")
        assert len(date) == 8 and date.isdigit() and len(short) == 8
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientID == study_dir.parent.name and ds.StudyDate == date


def test_reports_and_labels_describe_the_same_studies(
    synth_folder: tuple[Path, SynthSummary],
) -> None:
    folder, summary = synth_folder
    reports = read_reports(folder)
    # The file as written: empty change cells where a study has no prior.
    labels = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    assert list(labels.columns) == list(LABEL_COLUMNS)
    assert len(reports) == len(labels) == summary.studies
    assert [r["study_id"] for r in reports] == list(labels["study_id"])
    by_id = {r["study_id"]: r for r in reports}
    for report in reports:
        assert set(report) == REPORT_KEYS
        datetime.fromisoformat(report["study_datetime"])
        prior = report["prior_study_id"]
        if prior is not None:
            assert by_id[prior]["patient_id"] == report["patient_id"]
            assert by_id[prior]["study_datetime"] < report["study_datetime"]
    rows = {row["study_id"]: row for _, row in labels.iterrows()}
    for study_id, row in rows.items():
        prior = by_id[study_id]["prior_study_id"]
        for finding in CHANGE_FINDINGS:
            cell = row[change_column(finding)]
            if prior is None:
                assert cell == ""
            elif finding in _present(row) or finding in _present(rows[prior]):
                assert cell in ("improving", "stable", "worsening"), (study_id, finding)
            else:  # absent from both studies: no label (MS-CXR-T)
                assert cell == "", (study_id, finding, cell)
        assert set(row[list(TUBE_LINE_LABELS)]) <= {"0", "1"}
        assert set(row[list(OBSERVATIONS)]) <= {"0", "1"}
        assert (row["No Finding"] == "1") == (row["findings"] == "")
        assert (row["Pleural Effusion"] == "1") == ("pleural_effusion" in _present(row))


def _present(row: pd.Series) -> set[str]:
    """Finding names of a labels.csv row's findings cell (sides dropped)."""
    keys = [item.split(":")[0] for item in row["findings"].split(";") if item]
    return {key.removesuffix("_left").removesuffix("_right") for key in keys}


def test_same_seed_gives_the_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    one = synthesize(tmp_path / "one", 6, seed=5, size=96, workers=1, compressed_fraction=0.5)
    two = synthesize(tmp_path / "two", 6, seed=5, size=96, workers=2, compressed_fraction=0.5)
    assert one.images == two.images
    assert digest(tmp_path / "one") == digest(tmp_path / "two")


def test_different_seeds_give_disjoint_patients_and_studies(tmp_path: Path) -> None:
    synthesize(tmp_path / "a", 4, seed=1, size=96, workers=1)
    synthesize(tmp_path / "b", 4, seed=2, size=96, workers=1)
    a, b = read_reports(tmp_path / "a"), read_reports(tmp_path / "b")
    assert not {r["patient_id"] for r in a} & {r["patient_id"] for r in b}
    assert not {r["study_id"] for r in a} & {r["study_id"] for r in b}
    assert digest(tmp_path / "a") != digest(tmp_path / "b")


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        synthesize(tmp_path, 1, seed=0, size=64, workers=1)
    assert synthesize(tmp_path, 1, seed=0, size=64, workers=1, overwrite=True).studies >= 1


def test_cli_writes_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cxr.synth.commands import synth

    assert synth(tmp_path / "out", patients=2, seed=4, size=64, workers=1) == 0
    assert "studies" in capsys.readouterr().out
    assert (tmp_path / "out" / "labels.csv").is_file()


def test_cli_entry_point_runs_synth(tmp_path: Path) -> None:
    cli = pytest.importorskip("cxr.cli")
    try:
        code = cli.main(
            [
                "synth",
                str(tmp_path / "o"),
                "--patients",
                "2",
                "--seed",
                "3",
                "--size",
                "64",
                "--lateral-fraction",
                "1.0",
                "--workers",
                "1",
            ]
        )
    except (ImportError, AttributeError) as error:  # another command's module is not written yet
        pytest.skip(f"cxr CLI cannot build its parser yet: {error}")
    assert code == 0
    assert len(list((tmp_path / "o").rglob("lateral.dcm"))) >= 2
    assert cli.main(["synth", str(tmp_path / "o"), "--patients", "1", "--seed", "3"]) == 2


def test_round_trip_through_read_image(synth_folder: tuple[Path, SynthSummary]) -> None:
    io = pytest.importorskip("cxr.io")
    folder, _ = synth_folder
    files = sorted(folder.rglob("*.dcm"))
    for path in files[:20]:
        image = io.read_image(path)
        ds = pydicom.dcmread(path)
        assert image.pixels.shape == (ds.Rows, ds.Columns)
        assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0
        stored = ds.pixel_array.astype("float64")
        if ds.PhotometricInterpretation == "MONOCHROME1":
            stored = -stored
        # bright = dense after reading: same ordering of pixels as the dense-up stored values
        corr = float(
            ((stored - stored.mean()) * (image.pixels - image.pixels.mean())).mean()
            / (stored.std() * image.pixels.std() + 1e-9)
        )
        assert corr > 0.9, (path, ds.PhotometricInterpretation, corr)


def test_round_trip_through_index_folder(synth_folder: tuple[Path, SynthSummary]) -> None:
    io = pytest.importorskip("cxr.io")
    folder, summary = synth_folder
    index = io.index_folder(folder, workers=1, progress=False)
    # only the two sidecar files are skipped (they are not images)
    assert {Path(s.path).name for s in index.skipped} <= {"reports.jsonl", "labels.csv"}
    reports = {r["study_id"]: r for r in read_reports(folder)}
    assert {s.study_id for s in index.studies} == set(reports)
    for study in index.studies:
        report = reports[study.study_id]
        assert study.patient_id == report["patient_id"]
        assert study.prior_study_id == report["prior_study_id"]
        assert study.frontal is not None and Path(study.frontal).name == "frontal.dcm"
        has_lateral = (Path(study.frontal).parent / "lateral.dcm").exists()
        assert (study.lateral is not None) == has_lateral
        if study.lateral:
            assert Path(study.lateral).name == "lateral.dcm"
    assert sum(1 for s in index.studies if s.lateral) == summary.lateral_images
