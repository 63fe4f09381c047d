"""The 14 CheXpert observations of a phantom study, from its ground truth.

This is the one place that says which `cxr.types.OBSERVATIONS` a drawn finding or device is:

- each drawn finding is its CheXpert namesake (cardiomegaly -> Cardiomegaly, pleural_effusion
  -> Pleural Effusion, consolidation, pneumonia, edema, pneumothorax, atelectasis);
- a consolidation is also a Lung Opacity: every consolidation sentence of the reports names an
  opacity, and the offline labeler (`cxr.evaluation.labeler`) reads Lung Opacity from opacity
  words only. Edema and atelectasis are not: the reports never call them opacities, and the
  labeler does not propagate CheXpert's hierarchy, so labelling them Lung Opacity would make
  the truth disagree with the labeler on the phantom's own reports;
- any tube or line is Support Devices;
- No Finding is 1 when no finding is drawn (devices do not count, as in CheXpert);
- Enlarged Cardiomediastinum is 0 even with cardiomegaly: the reports speak of the heart or
  cardiac silhouette, never of a widened mediastinum, and the labeler keeps the two apart;
  Lung Lesion, Pleural Other and Fracture are never drawn, so they are 0.

Every label is known (1 or 0): the phantom's truth is complete. The figures behind these
choices (the labeler on the phantom's reference reports against these labels) are checked by
tests/synth/test_synth_observations.py.
"""

from __future__ import annotations

from cxr.synth.truth import Finding, StudyTruth
from cxr.types import OBSERVATIONS

FINDING_OBSERVATIONS: dict[Finding, tuple[str, ...]] = {
    Finding.CARDIOMEGALY: ("Cardiomegaly",),
    Finding.PLEURAL_EFFUSION: ("Pleural Effusion",),
    Finding.CONSOLIDATION: ("Consolidation", "Lung Opacity"),
    Finding.PNEUMONIA: ("Pneumonia",),
    Finding.EDEMA: ("Edema",),
    Finding.PNEUMOTHORAX: ("Pneumothorax",),
    Finding.ATELECTASIS: ("Atelectasis",),
}
DEVICE_OBSERVATION = "Support Devices"
NO_FINDING = "No Finding"


def observation_labels(study: StudyTruth) -> dict[str, int]:
    """The 14 OBSERVATIONS of one study, in their order, as 1 (present) or 0 (absent)."""
    present = {name for f in study.findings for name in FINDING_OBSERVATIONS[f.finding]}
    if study.devices:
        present.add(DEVICE_OBSERVATION)
    if not study.findings:
        present.add(NO_FINDING)
    return {name: int(name in present) for name in OBSERVATIONS}
