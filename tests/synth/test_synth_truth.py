"""Ground-truth records and labels.csv rows: RANZCR semantics, change and observation labels."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from cxr.synth import (
    Device,
    Finding,
    FindingTruth,
    Placement,
    Side,
    StudyTruth,
    label_row,
    patient_id,
    sample_patient,
)
from cxr.synth.labels import CHANGE_COLUMNS, LABEL_COLUMNS
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, TUBE_LINE_DEVICES, TUBE_LINE_LABELS, Change


def test_label_columns_follow_the_shared_vocabularies() -> None:
    assert LABEL_COLUMNS[:2] == ("study_id", "patient_id")
    assert LABEL_COLUMNS[2:13] == TUBE_LINE_LABELS
    assert tuple(f"{f}_progression" for f in CHANGE_FINDINGS) == CHANGE_COLUMNS
    assert LABEL_COLUMNS[13:18] == CHANGE_COLUMNS
    assert LABEL_COLUMNS[18:32] == OBSERVATIONS
    assert LABEL_COLUMNS[-1] == "findings" and len(LABEL_COLUMNS) == 33


def test_each_present_device_has_exactly_one_status(studies: list[StudyTruth]) -> None:
    for study in studies:
        labels = study.tube_line_labels()
        values = [labels[name] for name in TUBE_LINE_LABELS]
        for device, indices in TUBE_LINE_DEVICES.items():
            present = study.device(Device(device)) is not None
            assert sum(values[i] for i in indices) == (1 if present else 0), (
                study.study_uid,
                device,
            )


def test_every_status_occurs_in_a_few_hundred_studies(studies: list[StudyTruth]) -> None:
    counts = Counter(name for s in studies for name, v in s.tube_line_labels().items() if v)
    assert len(studies) > 500
    for name in TUBE_LINE_LABELS:
        assert counts[name] >= 5, (name, counts)
    changes = Counter(c for s in studies if (ch := s.changes()) for c in ch.values())
    assert min(changes[c] for c in Change) >= 20, changes


def test_change_labels_compare_the_burden_where_either_study_has_the_finding(
    studies: list[StudyTruth],
) -> None:
    unlabelled = 0
    for study in studies:
        changes = study.changes()
        if study.prior is None:
            assert changes is None
            assert all(label_row(study)[c] == "" for c in CHANGE_COLUMNS)
            continue
        assert changes is not None
        for name in CHANGE_FINDINGS:
            now, before = study.burden(Finding(name)), study.prior.burden(Finding(name))
            cell = label_row(study)[f"{name}_progression"]
            if now == before == 0:  # MS-CXR-T: absent from both studies, no label
                assert name not in changes and cell == ""
                unlabelled += 1
                continue
            expected = "worsening" if now > before else "improving" if now < before else "stable"
            assert changes[name].value == expected and cell == expected
    assert unlabelled > 500


def test_stable_is_no_longer_the_label_of_findings_seen_in_neither_study(
    studies: list[StudyTruth],
) -> None:
    # Before the MS-CXR-T rule about 77 % of the labels of these studies were "stable" (1714 of
    # 2215); now only findings present in one of the studies are labelled (725, 224 stable).
    labels = Counter(c for s in studies if (ch := s.changes()) for c in ch.values())
    assert sum(labels.values()) < 1000
    assert labels[Change.STABLE] / sum(labels.values()) < 0.4, labels


def test_a_finding_of_the_prior_only_is_improving_and_one_of_neither_has_no_label() -> None:
    patient = next(p for n in range(50) if len((p := sample_patient(3, n)).studies) >= 2)
    effusion = FindingTruth(Finding.PLEURAL_EFFUSION, 2, Side.LEFT)
    prior = replace(patient.studies[0], findings=(effusion,), devices=())
    current = replace(patient.studies[1], findings=(), devices=(), prior=prior)
    assert current.changes() == {"pleural_effusion": Change.IMPROVING}
    row = label_row(current)
    assert row["pleural_effusion_progression"] == "improving"
    assert [row[c] for c in CHANGE_COLUMNS if c != "pleural_effusion_progression"] == [""] * 4
    new_edema = replace(current, findings=(FindingTruth(Finding.EDEMA, 1),))
    assert new_edema.changes() == {
        "pleural_effusion": Change.IMPROVING,
        "edema": Change.WORSENING,
    }


def test_pneumonia_is_the_consolidation_of_infected_patients(studies: list[StudyTruth]) -> None:
    seen = 0
    for study in studies:
        for f in study.findings:
            if f.finding is Finding.PNEUMONIA:
                seen += 1
                assert study.severity(Finding.CONSOLIDATION, f.side) == f.severity
    assert seen > 10


def test_findings_cell_lists_every_finding_with_severity_and_side(
    studies: list[StudyTruth],
) -> None:
    for study in studies[:200]:
        cell = label_row(study)["findings"]
        items = [item.split(":") for item in str(cell).split(";")] if cell else []
        assert len(items) == len(study.findings)
        for (key, severity), f in zip(items, study.findings, strict=True):
            assert key == f.key and severity == f.severity_word
            assert (f.side is None) == (key in ("cardiomegaly", "edema"))


def test_studies_of_a_patient_are_on_increasing_dates_with_linked_priors() -> None:
    patient = next(p for n in range(50) if len((p := sample_patient(5, n)).studies) >= 3)
    dates = [s.study_datetime for s in patient.studies]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert patient.studies[0].prior is None
    for before, after in zip(patient.studies, patient.studies[1:], strict=False):
        assert after.prior_study_id == before.study_uid


def test_ids_and_uids_differ_between_seeds_and_are_valid() -> None:
    a, b = sample_patient(1, 0), sample_patient(2, 0)
    assert a.patient_id == patient_id(1, 0) == "PH1-00000" and b.patient_id == "PH2-00000"
    assert a.studies[0].study_uid != b.studies[0].study_uid
    for uid in (a.studies[0].study_uid, b.studies[0].study_uid):
        assert uid.startswith("2.25.") and len(uid) <= 64
    assert sample_patient(1, 0) == a  # deterministic


@pytest.mark.parametrize("device", [Device.ETT, Device.NGT, Device.CVC])
def test_placements_of_each_device_are_varied(studies: list[StudyTruth], device: Device) -> None:
    placements = {d.placement for s in studies for d in s.devices if d.device is device}
    assert Placement.NORMAL in placements and Placement.ABNORMAL in placements
    assert Placement.BORDERLINE in placements
