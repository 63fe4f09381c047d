"""The rule-based labeler against the CheXpert labeler's sample output, Open-I expert labels,
and hand-written negation / uncertainty cases."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr.evaluation.labeler import (
    OBSERVATIONS,
    label_changes,
    label_devices,
    label_report,
    label_reports,
)

# Open-I (ChestX-ray14 names) -> CheXpert observation; Mass or Nodule -> Lung Lesion.
OPENI_TO_CHEXPERT = {
    "Atelectasis": ("Atelectasis",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Pleural Effusion": ("Effusion",),
    "Pneumonia": ("Pneumonia",),
    "Pneumothorax": ("Pneumothorax",),
    "Consolidation": ("Consolidation",),
    "Edema": ("Edema",),
    "Lung Lesion": ("Mass", "Nodule"),
    "No Finding": ("normal",),
}
# Achieved 0.904 when written (rules developed on this same set, so in-sample); floor below it.
MACRO_F1_FLOOR = 0.89
PER_CLASS_F1_FLOOR = 0.75


def _openi_text(xml_path: Path) -> str:
    sections = {a.get("Label"): (a.text or "") for a in ET.parse(xml_path).iter("AbstractText")}
    return " ".join(t for t in (sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")) if t)


def test_matches_chexpert_labeler_sample_output(shared_data: Path) -> None:
    expected = pd.read_csv(shared_data / "report-labels" / "chexpert_labeler_labeled_reports.csv")
    labelled = label_reports(expected["Reports"])
    assert list(labelled.columns) == list(OBSERVATIONS)
    for observation in OBSERVATIONS:
        got, want = labelled[observation].to_numpy(), expected[observation].to_numpy(float)
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        assert same.all(), (observation, got, want)


def test_agreement_with_openi_expert_labels(shared_data: Path) -> None:
    gold = pd.read_csv(shared_data / "report-labels" / "openi_gld_std14_ids_le_1000.csv")
    xml_dir = shared_data / "iu-xray-reports" / "openi-xml-sample"
    texts = [_openi_text(xml_dir / f"{name.removeprefix('CXR')}.xml") for name in gold["filename"]]
    labelled = label_reports(texts)
    f1s = {}
    print("\nobservation         n_gold  agreement  F1(positive)")
    for observation, columns in OPENI_TO_CHEXPERT.items():
        truth = gold[list(columns)].max(axis=1).to_numpy() == 1
        positive = labelled[observation].to_numpy() == 1.0
        tp, fp, fn = (positive & truth).sum(), (positive & ~truth).sum(), (~positive & truth).sum()
        f1s[observation] = 2 * tp / (2 * tp + fp + fn)
        print(
            f"{observation:20s}{truth.sum():6d}  {np.mean(positive == truth):9.3f}  {f1s[observation]:.3f}"
        )
    macro = float(np.mean(list(f1s.values())))
    print(f"macro F1 over {len(f1s)} mapped observations: {macro:.3f}")
    assert macro >= MACRO_F1_FLOOR
    assert min(f1s.values()) >= PER_CLASS_F1_FLOOR


@pytest.mark.parametrize(
    ("text", "observation", "value"),
    [
        ("No evidence of pneumothorax.", "Pneumothorax", 0.0),
        ("There is a small left pneumothorax.", "Pneumothorax", 1.0),
        ("Pneumothorax is not seen.", "Pneumothorax", 0.0),
        ("Pneumonia cannot be excluded.", "Pneumonia", -1.0),
        ("Cannot exclude a small pleural effusion.", "Pleural Effusion", -1.0),
        ("Effusion is not ruled out.", "Pleural Effusion", -1.0),  # double negation
        ("No change in the right pleural effusion.", "Pleural Effusion", 1.0),  # pseudo-negation
        ("Opacity may represent atelectasis.", "Atelectasis", -1.0),
        ("No focal consolidation to suggest pneumonia.", "Pneumonia", 0.0),
        ("Lungs clear without pneumothorax, effusion, or edema.", "Edema", 0.0),
        ("No pneumothorax but there is a large effusion.", "Pleural Effusion", 1.0),
        ("Heart size is normal.", "Cardiomegaly", 0.0),
        ("The heart is not enlarged.", "Cardiomegaly", 0.0),
        ("Borderline cardiomegaly.", "Cardiomegaly", -1.0),
        ("Moderate cardiomegaly.", "Cardiomegaly", 1.0),
        ("Fracture of the left 5th rib.", "Fracture", 1.0),
        ("Endotracheal tube tip 4 cm above the carina.", "Support Devices", 1.0),
        ("Measures 2.5 cm. No effusion.", "Pleural Effusion", 0.0),
    ],
)
def test_hand_written_cases(text: str, observation: str, value: float) -> None:
    assert label_report(text)[observation] == value


def test_no_finding_and_unmentioned() -> None:
    labels = label_report("Heart size normal. Lungs are clear. No effusion.")
    assert labels["No Finding"] == 1.0
    assert math.isnan(labels["Fracture"])
    assert math.isnan(label_report("Small left effusion.")["No Finding"])
    assert math.isnan(label_report("Calcified granuloma. Lungs clear.")["No Finding"])
    assert all(math.isnan(v) for v in label_report("").values())


def test_devices_and_changes() -> None:
    devices = label_devices(["ETT in place. Right PICC line tip in the SVC. No NG tube."])
    assert (
        devices.loc[0, "ETT"] == 1.0
        and devices.loc[0, "CVC"] == 1.0
        and devices.loc[0, "NGT"] == 0.0
    )
    assert math.isnan(devices.loc[0, "Swan Ganz"])
    changes = label_changes(
        ["Improving left lower lobe consolidation. Pleural effusion is unchanged. Worsening edema."]
    )
    row = changes.loc[0]
    assert row["consolidation"] == "improving"
    assert row["pleural_effusion"] == "stable"
    assert row["edema"] == "worsening"
    assert row["pneumothorax"] is None
