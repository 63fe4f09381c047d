"""Observation labels of IU X-ray reports from their Open-I MeSH indexing.

Each Open-I report XML lists ``<MeSH><major>`` terms, written by the collection's annotators
(e.g. ``Opacity/lung/base/left/mild``: a heading, then qualifiers), and ``<automatic>`` terms
that a MeSH indexing program suggested from the text. Only the major terms are read: they are
the manual indexing that NegBio's Open-I gold standard is drawn from, while the automatic ones
also fire on what the report rules out or merely suggests (on the 989 sample reports they add
18 atelectasis, 9 pneumonia and 7 edema calls the annotators did not make).

The indexing is taken as exhaustive per report (an annotator tagged every abnormality): with
major terms present, an observation no term maps to is absent (0). "No Indexing" (or no term at
all) leaves every observation unknown. No Finding is CheXpert's: present when every term is
"normal", a support device, or image quality, so a report that only lists a catheter is still
"no finding", and one with any other abnormality (even one outside the 14, e.g. degenerative
change) is not, as Open-I's own "normal" says and the offline labeler reads.

Calcified granulomas and granulomatous disease are not Lung Lesion: neither CheXpert's labeler
nor cxr's offline labeler counts them, and they are the most common Open-I term after
"normal"; "Surgical Instruments" (clips, sternotomy wires) is not Support Devices, for the
same reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cxr.types import OBSERVATIONS

# (MeSH heading, a qualifier it must carry or None, observation), headings lower-cased.
MESH_OBSERVATIONS: tuple[tuple[str, str | None, str], ...] = (
    ("mediastinum", "prominent", "Enlarged Cardiomediastinum"),
    ("mediastinum", "widened", "Enlarged Cardiomediastinum"),
    ("cardiomegaly", None, "Cardiomegaly"),
    ("cardiac shadow", "enlarged", "Cardiomegaly"),
    ("opacity", None, "Lung Opacity"),
    ("density", "lung", "Lung Opacity"),
    ("infiltrate", None, "Lung Opacity"),
    ("airspace disease", None, "Lung Opacity"),
    ("markings", "interstitial", "Lung Opacity"),
    ("lung diseases, interstitial", None, "Lung Opacity"),
    ("cicatrix", "lung", "Lung Opacity"),
    ("nodule", None, "Lung Lesion"),
    ("multiple pulmonary nodules", None, "Lung Lesion"),
    ("mass", None, "Lung Lesion"),
    ("lung neoplasms", None, "Lung Lesion"),
    ("pulmonary edema", None, "Edema"),
    ("edema", None, "Edema"),
    ("consolidation", None, "Consolidation"),
    ("pneumonia", None, "Pneumonia"),
    ("pulmonary atelectasis", None, "Atelectasis"),
    ("atelectasis", None, "Atelectasis"),
    ("pneumothorax", None, "Pneumothorax"),
    ("hydropneumothorax", None, "Pneumothorax"),
    ("hydropneumothorax", None, "Pleural Effusion"),
    ("pleural effusion", None, "Pleural Effusion"),
    ("costophrenic angle", "blunted", "Pleural Effusion"),
    ("thickening", "pleura", "Pleural Other"),
    ("fractures, bone", None, "Fracture"),
    ("rib fractures", None, "Fracture"),
    ("spinal fractures", None, "Fracture"),
    ("humeral fractures", None, "Fracture"),
    ("fractures, comminuted", None, "Fracture"),
    ("catheters, indwelling", None, "Support Devices"),
    ("central venous catheters", None, "Support Devices"),
    ("catheterization, central venous", None, "Support Devices"),
    ("tube, inserted", None, "Support Devices"),
    ("medical device", None, "Support Devices"),
    ("implanted medical device", None, "Support Devices"),
    ("pacemaker, artificial", None, "Support Devices"),
    ("stents", None, "Support Devices"),
    ("heart valve prosthesis", None, "Support Devices"),
    ("tracheostomy", None, "Support Devices"),
)
NORMAL = "normal"
NOT_INDEXED = "no indexing"
# Headings that say something of the image, not of the patient.
IMAGE_QUALITY = frozenset({"technical quality of image unsatisfactory"})


def _parts(term: str) -> tuple[str, frozenset[str]]:
    heading, *qualifiers = (part.strip().lower() for part in term.split("/"))
    return heading, frozenset(qualifiers)


def term_observations(term: str) -> set[str]:
    """The observations one MeSH term (``Heading/qualifier/...``) states."""
    heading, qualifiers = _parts(term)
    return {
        name
        for rule_heading, qualifier, name in MESH_OBSERVATIONS
        if heading == rule_heading and (qualifier is None or qualifier in qualifiers)
    }


def mesh_observations(terms: Sequence[str]) -> np.ndarray:
    """float32 [14] in OBSERVATIONS order from a report's major MeSH terms: 1.0 tagged, 0.0 not
    tagged, all NaN when the report is not indexed."""
    terms = [term for term in terms if term.strip()]
    headings = [_parts(term)[0] for term in terms]
    if not terms or NOT_INDEXED in headings:
        return np.full(len(OBSERVATIONS), math.nan, dtype=np.float32)
    stated = [term_observations(term) for term in terms]
    present = set().union(*stated)
    if all(
        heading == NORMAL or heading in IMAGE_QUALITY or names == {"Support Devices"}
        for heading, names in zip(headings, stated, strict=True)
    ):
        present.add("No Finding")
    return np.array([float(name in present) for name in OBSERVATIONS], dtype=np.float32)
