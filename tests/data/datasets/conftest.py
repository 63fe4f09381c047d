"""Tiny fake trees in the layouts the public datasets ship in (official file names and headers).

Image files of the MIMIC-CXR DICOM tree are placeholders (the adapters only need their names);
JPG/PNG images are small real images so that a training step can read them.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr.types import CHANGE_FINDINGS, TUBE_LINE_LABELS

MIMIC_METADATA_HEADER = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
    "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning",
)  # fmt: skip
CHEXPERT_HEADER = (
    "subject_id", "study_id", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
    "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity", "No Finding",
    "Pleural Effusion", "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices",
)  # fmt: skip

# (dicom_id, subject, study, ViewPosition, StudyDate, StudyTime, on disk)
MIMIC_IMAGES = (
    ("d1", "10000032", "50414267", "PA", "21800506", "213014.531", True),
    ("d2", "10000032", "50414267", "LATERAL", "21800506", "213014.531", True),
    ("d3", "10000032", "53189527", "AP", "21800626", "165500.312", True),
    ("d4", "10000032", "53189527", "PA", "21800626", "165500.312", True),
    ("d5", "10000032", "53189527", "LL", "21800626", "165500.312", True),
    # Same day, earlier: StudyTime without its leading zero (08:05:56), image not downloaded.
    ("d6", "10000032", "53911762", "AP", "21800626", "80556.875", False),
    ("d7", "11000011", "51000001", "PA", "21900101", "120000", True),
)
MIMIC_SPLITS = {"10000032": "train", "11000011": "test"}
MIMIC_REPORTS = {
    "50414267": """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with new onset ascites  // eval for infection

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows.

 IMPRESSION:

 No acute cardiopulmonary process.
""",
    "53911762": """                                 FINAL REPORT
 HISTORY:  Shortness of breath.

 AP portable view of the chest.

 Mild pulmonary edema has developed since the prior study.
""",
    "53189527": """                                 FINAL REPORT
 INDICATION:  Follow-up edema.
 COMPARISON:  ___.
 FINDINGS:  Edema has resolved. LINES/TUBES:  None.
 IMPRESSION:  Resolved edema.
""",
}


# The label tables list the studies that have a report: 1.0 positive, 0.0 negative, -1.0
# uncertain, blank not mentioned. NegBio differs from CheXpert on one cell of each table.
MIMIC_CHEXPERT = {
    "50414267": {"No Finding": "1.0"},
    "53911762": {"Edema": "1.0", "Pleural Effusion": "-1.0"},
    "53189527": {"Edema": "0.0", "Support Devices": "0.0"},
}
MIMIC_NEGBIO = {
    "50414267": {"No Finding": "1.0", "Lung Opacity": "-1.0"},
    "53911762": {"Edema": "1.0", "Pleural Effusion": "0.0"},
    "53189527": {"Edema": "0.0", "Support Devices": "0.0"},
}


def write_image(path: Path, seed: int, size: int = 48) -> None:
    """A small grey image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as handle:  # type: ignore[operator]
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_mimic_tree(root: Path, suffix: str, gzipped: bool = True) -> Path:
    """A MIMIC-CXR (suffix .dcm) or MIMIC-CXR-JPG (.jpg) tree with reports and tables."""
    ext = ".csv.gz" if gzipped else ".csv"
    rows = []
    for number, (dicom_id, subject, study, view, date, time, on_disk) in enumerate(MIMIC_IMAGES):
        rows.append(
            (dicom_id, subject, study, "CHEST (PA AND LAT)", view, 48, 48, date, time, "", "", "")
        )
        image = (
            root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}{suffix}"
        )
        if on_disk and suffix == ".dcm":
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(b"\0" * 128 + b"DICM")
        elif on_disk:
            write_image(image, number)
    write_csv(root / f"mimic-cxr-2.0.0-metadata{ext}", MIMIC_METADATA_HEADER, rows)
    write_csv(
        root / f"mimic-cxr-2.0.0-split{ext}",
        ("dicom_id", "study_id", "subject_id", "split"),
        [(d, st, su, MIMIC_SPLITS[su]) for d, su, st, *_ in MIMIC_IMAGES],
    )
    subjects = {st: su for _, su, st, *_ in MIMIC_IMAGES}
    for name, table in (("chexpert", MIMIC_CHEXPERT), ("negbio", MIMIC_NEGBIO)):
        write_csv(
            root / f"mimic-cxr-2.0.0-{name}{ext}",
            CHEXPERT_HEADER,
            [
                (subjects[st], st, *(labels.get(c, "") for c in CHEXPERT_HEADER[2:]))
                for st, labels in table.items()
            ],
        )
    for study, text in MIMIC_REPORTS.items():
        subject = next(su for _, su, st, *_ in MIMIC_IMAGES if st == study)
        report = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text)
    return root


MS_CXR_T_ROWS = (
    # dicom_id, previous_dicom_id, study_id, previous_study_id, subject_id, progression per finding
    ("d4", "d1", "53189527", "50414267", "10000032",
     {"consolidation": "improving", "pneumothorax": "stable", "edema": "worsening"}),
    ("p10/p10000032/s53189527/d3", "p10/p10000032/s53911762/d6", "53189527", "53911762", "10000032",
     {"pleural_effusion": "stable"}),
    ("d7", "d0", "51000001", "50999999", "11000011", {"pneumonia": "worsening"}),
)  # fmt: skip


def make_ms_cxr_t_table(path: Path) -> Path:
    header = ["dicom_id", "previous_dicom_id", "study_id", "previous_study_id", "subject_id"]
    for finding in CHANGE_FINDINGS:
        header += [f"{finding}_progression", f"{finding}_label_quality"]
    rows = []
    for *keys, labels in MS_CXR_T_ROWS:
        row = list(keys)
        for finding in CHANGE_FINDINGS:
            row += [labels.get(finding, ""), "one_expert" if finding in labels else ""]
        rows.append(row)
    return write_csv(path, header, rows)


RANZCR_ROWS = (
    # StudyInstanceUID, PatientID, labels (indices of TUBE_LINE_LABELS set to 1), image on disk
    ("1.2.826.0.1.3680043.8.498.1", "ec89415d1", (2, 6, 9), True),
    ("1.2.826.0.1.3680043.8.498.2", "ec89415d1", (9,), True),
    ("1.2.826.0.1.3680043.8.498.3", "bf4c6da3c", (), True),
    ("1.2.826.0.1.3680043.8.498.4", "3fc1c97e5", (0, 3, 7, 10), True),
    ("1.2.826.0.1.3680043.8.498.5", "77b3c0a19", (1,), True),
    ("1.2.826.0.1.3680043.8.498.6", "77b3c0a19", (5,), False),
)


def make_ranzcr_tree(root: Path) -> Path:
    rows = []
    for number, (uid, patient, positives, on_disk) in enumerate(RANZCR_ROWS):
        labels = [int(i in positives) for i in range(len(TUBE_LINE_LABELS))]
        rows.append((uid, *labels, patient))
        if on_disk:
            write_image(root / "train" / f"{uid}.jpg", 100 + number)
    write_csv(root / "train.csv", ("StudyInstanceUID", *TUBE_LINE_LABELS, "PatientID"), rows)
    write_csv(root / "train_annotations.csv", ("StudyInstanceUID", "label", "data"), [])
    return root


def make_r2gen_folder(root: Path, annotation: Path, per_split: int = 6) -> Path:
    """An R2Gen-style IU folder: the first entries of each split of the real annotation file,
    with their images as small PNGs."""
    content = json.loads(annotation.read_text())
    subset = {key: entries[:per_split] for key, entries in content.items()}
    for number, entry in enumerate(e for entries in subset.values() for e in entries):
        for offset, image in enumerate(entry["image_path"]):
            write_image(root / "images" / image, 1000 + 2 * number + offset)
    (root / "annotation.json").write_text(json.dumps(subset))
    return root


@pytest.fixture
def mimic_tree(tmp_path: Path) -> Callable[..., Path]:
    """Builds a MIMIC-CXR tree: `mimic_tree(".dcm")` or `mimic_tree(".jpg", gzipped=False)`."""

    def build(suffix: str = ".dcm", gzipped: bool = True) -> Path:
        return make_mimic_tree(tmp_path / f"mimic{suffix.replace('.', '-')}", suffix, gzipped)

    return build


@pytest.fixture(name="write_image")
def write_image_fixture() -> Callable[[Path, int], None]:
    """`write_image(path, seed)`: a small grey PNG/JPG."""
    return write_image


@pytest.fixture(name="make_ms_cxr_t_table")
def make_ms_cxr_t_table_fixture() -> Callable[[Path], Path]:
    """`make_ms_cxr_t_table(path)`: the MS-CXR-T table of MS_CXR_T_ROWS over the MIMIC tree."""
    return make_ms_cxr_t_table


@pytest.fixture
def ranzcr_tree(tmp_path: Path) -> Path:
    return make_ranzcr_tree(tmp_path / "ranzcr")


@pytest.fixture
def r2gen_folder(tmp_path: Path, shared_data: Path) -> Path:
    return make_r2gen_folder(
        tmp_path / "iu_r2gen", shared_data / "iu-xray-reports" / "annotation_r2gen_split.json"
    )
