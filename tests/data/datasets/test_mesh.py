"""The MeSH-term -> observation table, term by term (qualifiers decide some of them)."""

from __future__ import annotations

import numpy as np
import pytest

from cxr.data.datasets.mesh import mesh_observations, term_observations
from cxr.types import OBSERVATIONS


@pytest.mark.parametrize(
    ("term", "observations"),
    [
        ("Cardiomegaly/mild", {"Cardiomegaly"}),
        ("Cardiac Shadow/enlarged/mild", {"Cardiomegaly"}),
        ("Cardiac Shadow/borderline", set()),
        ("Mediastinum/prominent", {"Enlarged Cardiomediastinum"}),
        ("Mediastinum/lymph nodes/enlarged", set()),  # lymphadenopathy, not a wide mediastinum
        ("Density/lung/base/left", {"Lung Opacity"}),
        ("Density/sternum", set()),
        ("Markings/lung/interstitial/prominent", {"Lung Opacity"}),
        ("Markings/bronchovascular", set()),
        ("Thickening/pleura/apex/bilateral", {"Pleural Other"}),
        ("Thickening/heart ventricles", set()),
        ("Hydropneumothorax", {"Pneumothorax", "Pleural Effusion"}),
        ("Calcified Granuloma/lung/upper lobe/right", set()),
        ("Surgical Instruments/mediastinum", set()),
        ("Fractures, Bone/ribs/left", {"Fracture"}),
        ("  pleural effusion / RIGHT ", {"Pleural Effusion"}),  # case and spacing
    ],
)
def test_term_observations(term: str, observations: set[str]) -> None:
    assert term_observations(term) == observations


def test_untagged_observations_are_absent_and_no_indexing_is_unknown() -> None:
    values = mesh_observations(["Pulmonary Atelectasis/base", "Catheters, Indwelling"])
    assert values.dtype == np.float32 and values.shape == (len(OBSERVATIONS),)
    assert {n for n, v in zip(OBSERVATIONS, values, strict=True) if v} == {
        "Atelectasis",
        "Support Devices",
    }
    assert not np.isnan(values).any()
    assert np.isnan(mesh_observations(["No Indexing"])).all()
    assert np.isnan(mesh_observations([])).all()


@pytest.mark.parametrize(
    ("terms", "no_finding"),
    [
        (["normal"], 1.0),
        (["Catheters, Indwelling", "Medical Device"], 1.0),
        (["Technical Quality of Image Unsatisfactory"], 1.0),
        (["Thoracic Vertebrae/degenerative"], 0.0),  # an abnormality outside the 14
        (["Catheters, Indwelling", "Pleural Effusion/left"], 0.0),
    ],
)
def test_no_finding_ignores_devices_and_image_quality(terms: list[str], no_finding: float) -> None:
    assert mesh_observations(terms)[OBSERVATIONS.index("No Finding")] == no_finding
