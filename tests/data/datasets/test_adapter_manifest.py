"""Manifest adapter: user-written CSV/JSONL tables, and prior linking at scale on NIH ChestX-ray14."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from cxr.data.datasets import build_adapter
from cxr.errors import InputError
from cxr.types import Change


def test_csv_with_report_labels_and_relative_images(
    tmp_path: Path, write_image: Callable[[Path, int], None]
) -> None:
    write_image(tmp_path / "img" / "a1.png", 0)
    write_image(tmp_path / "img" / "a2.png", 1)
    write_image(tmp_path / "img" / "a2_lat.png", 2)
    (tmp_path / "studies.csv").write_text(
        "study_id,patient_id,study_datetime,frontal,lateral,report,ETT - Normal,edema_progression\n"
        'a1,P1,2020-01-02,img/a1.png,,"INDICATION: cough. FINDINGS: Clear lungs. IMPRESSION: Normal.",1,\n'
        "a2,P1,20200305,img/a2.png,img/a2_lat.png,,0,worsening\n"
        "b1,,,img/missing.png,,,,\n"
    )
    studies = {s.study_id: s for s in build_adapter("manifest", tmp_path / "studies.csv").studies()}
    first, second, lone = studies["a1"], studies["a2"], studies["b1"]
    assert first.images.frontal == str(tmp_path / "img" / "a1.png")
    assert first.prompt.indication == "cough." and first.targets.impression == "Normal."
    assert first.targets.tube_line[2] == 1 and (first.targets.change == -1).all()
    assert second.study_datetime == datetime(2020, 3, 5)
    assert second.prior_study_id == "a1" and second.images.prior_frontal == first.images.frontal
    assert second.prompt.prior_report == "Clear lungs. Normal."
    assert second.images.lateral == str(tmp_path / "img" / "a2_lat.png")
    assert second.targets.change[4] == Change.WORSENING.code and second.targets.report is None
    assert lone.images.frontal is None and lone.patient_id == "unknown-patient:b1"


def test_jsonl_one_row_per_image_with_views(
    tmp_path: Path, write_image: Callable[[Path, int], None]
) -> None:
    rows = [
        {
            "study_id": "s1",
            "patient_id": "p",
            "image": "x/ap.png",
            "view": "AP",
            "findings": "Lines in place.",
        },
        {"study_id": "s1", "patient_id": "p", "image": "x/pa.png", "view": "PA"},
        {"study_id": "s1", "patient_id": "p", "image": "x/lat.png", "view": "LL"},
    ]
    for number, row in enumerate(rows):
        write_image(tmp_path / "data" / row["image"], number)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    (study,) = build_adapter("manifest", manifest, image_root=tmp_path / "data").studies()
    assert study.images.frontal == str(tmp_path / "data" / "x" / "pa.png")  # PA over AP
    assert study.images.lateral == str(tmp_path / "data" / "x" / "lat.png")
    assert study.targets.findings == "Lines in place."


def test_explicit_prior_column(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        "study_id,patient_id,prior_study_id,frontal\nb,p,a,b.png\na,p,,a.png\n"
    )
    studies = {
        s.study_id: s
        for s in build_adapter("manifest", tmp_path / "m.csv", check_images=False).studies()
    }
    assert studies["b"].prior_study_id == "a" and studies["b"].images.prior_frontal == str(
        tmp_path / "a.png"
    )
    assert studies["a"].prior_study_id is None


def test_bad_tables_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "no_id.csv").write_text("frontal\na.png\n")
    with pytest.raises(InputError, match="no study_id column"):
        list(build_adapter("manifest", tmp_path / "no_id.csv").studies())
    (tmp_path / "bad_date.csv").write_text("study_id,study_datetime\na,yesterday\n")
    with pytest.raises(InputError, match="study a"):
        list(build_adapter("manifest", tmp_path / "bad_date.csv").studies())
    with pytest.raises(InputError, match="not found"):
        list(build_adapter("manifest", tmp_path / "absent.csv").studies())


@pytest.fixture(scope="module")
def nih_table(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / "metadata-tables" / "Data_Entry_2017_v2020.csv.gz", dtype=str)


@pytest.mark.slow
def test_nih_priors_by_follow_up_number_at_scale(nih_table: pd.DataFrame, tmp_path: Path) -> None:
    """112,120 NIH ChestX-ray14 images as a one-row-per-image manifest: each image is a study,
    its prior the patient's previous follow-up; views PA and AP are both frontal."""
    manifest = pd.DataFrame(
        {
            "study_id": nih_table["Image Index"],
            "patient_id": nih_table["Patient ID"],
            "sequence": nih_table["Follow-up #"],
            "image": "images/" + nih_table["Image Index"],
            "view": nih_table["View Position"],
        }
    )
    path = tmp_path / "nih.csv"
    manifest.to_csv(path, index=False)
    started = time.perf_counter()
    studies = list(build_adapter("manifest", path, check_images=False).studies())
    elapsed = time.perf_counter() - started
    assert len(studies) == len(nih_table) == 112_120
    assert elapsed < 60, f"{elapsed:.1f} s for 112k rows"

    follow_up = dict(
        zip(nih_table["Image Index"], nih_table["Follow-up #"].astype(int), strict=True)
    )
    patient = dict(zip(nih_table["Image Index"], nih_table["Patient ID"], strict=True))
    # Expected prior: the same patient's image with the largest smaller follow-up number.
    by_patient = nih_table.assign(f=nih_table["Follow-up #"].astype(int)).sort_values(
        ["Patient ID", "f"]
    )
    expected: dict[str, str | None] = {}
    for _, group in by_patient.groupby("Patient ID", sort=False):
        previous: str | None = None
        for image in group["Image Index"]:
            expected[image] = previous
            previous = image
    assert {s.study_id: s.prior_study_id for s in studies} == expected
    with_prior = [s for s in studies if s.prior_study_id]
    assert len(with_prior) == 112_120 - nih_table["Patient ID"].nunique()
    for study in with_prior[:1000]:
        prior = study.prior_study_id or ""
        assert patient[prior] == study.patient_id and follow_up[prior] < follow_up[study.study_id]
        assert study.images.prior_frontal == str(tmp_path / "images" / prior)
    assert all(s.images.frontal == str(tmp_path / "images" / s.study_id) for s in studies)
