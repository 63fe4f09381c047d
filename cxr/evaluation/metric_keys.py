"""Metric names: every key of metrics.json, systems.json, differences.json and the table.

Each name is built here and only here; metric families, tables, plots and notebooks import
these builders, and find a family's per-label metrics through `PerSubject.select` instead of
parsing names themselves, so a renamed metric changes in one place. The spellings are part of
the output contract (users and tests read metrics.json): change them only on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import TypeVar

T = TypeVar("T")

BLEU_4 = "BLEU-4"
BLEU: tuple[str, ...] = ("BLEU-1", "BLEU-2", "BLEU-3", BLEU_4)
METEOR = "METEOR"
ROUGE_L = "ROUGE-L"
CIDER = "CIDEr"
# The NLG metrics, in the order tables show them.
NLG_METRICS: tuple[str, ...] = (*BLEU, METEOR, ROUGE_L, CIDER)

AUC_MACRO = "AUC-macro"
"""Tube/line ROC AUC, mean over the TUBE_LINE_LABELS labels whose references hold both
classes among the studies where both sides are known."""
FINDINGS_AUC_MACRO = "FindingsAUC-macro"
"""Findings-head ROC AUC, mean over the OBSERVATIONS whose references hold both classes
(present and absent) among the evaluated studies where both sides are known; observations
with one class only have no AUC and are left out of the mean."""
REPORT_HEAD_AGREEMENT_MICRO = "ReportHeadAgree-micro"
"""Report-to-head consistency: the fraction of (study, observation) cells, pooled over all
OBSERVATIONS, where the labeler's reading of the generated report and the same system's
findings-head call agree on present / absent."""
CHANGE_MACRO_ACCURACY = "ChangeMacroAcc"
"""MS-CXR-T change macro accuracy, the headline change metric: per finding, the mean of the
per-class recalls (improving, stable, worsening) over the classes its references hold
(balanced accuracy), then the mean over the findings with any known reference. A constant
predictor scores 1/3 on a finding whose references hold all three classes."""
CHANGE_ACCURACY_MACRO = "ChangeAcc-macro"
"""Plain change accuracy (correct / known references) per finding, mean over findings."""
CHANGE_F1_MACRO = "ChangeF1-macro"
"""Macro F1 over the change classes per finding, mean over findings."""


class PerSubject(str, Enum):
    """Families with one metric per subject (a label, device, observation or finding).

    A key is "<family>/<subject>", e.g. "AUC/ETT - Normal" or "CE-F1/Edema".
    """

    TUBE_LINE_AUC = "AUC"  # per TUBE_LINE_LABELS label
    FINDINGS_AUC = "FindingsAUC"  # per OBSERVATIONS observation (findings-head probability)
    STATUS_ACCURACY = "StatusAcc"  # per TUBE_LINE_DEVICES device
    OBSERVATION_F1 = "CE-F1"  # per labeler observation
    CHEXBERT_F1 = "CheXbert-F1"  # per CheXbert observation (model-based scorer)
    REPORT_HEAD_AGREEMENT = "ReportHeadAgree"  # per OBSERVATIONS observation: report vs head
    CHANGE_MACRO_ACCURACY = "ChangeMacroAcc"  # per CHANGE_FINDINGS finding (balanced accuracy)
    CHANGE_ACCURACY = "ChangeAcc"  # per CHANGE_FINDINGS finding
    CHANGE_F1 = "ChangeF1"  # per CHANGE_FINDINGS finding (macro F1 over the change classes)

    def key(self, subject: str) -> str:
        """The metric name of one subject of this family."""
        return f"{self.value}/{subject}"

    def select(self, metrics: Mapping[str, T]) -> dict[str, T]:
        """{subject: value} of this family's metrics among `metrics`, in their order."""
        prefix = self.key("")
        return {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}


def is_per_subject(key: str) -> bool:
    """Whether a metric is one subject's (tables leave these out unless asked for detail)."""
    return any(key.startswith(family.key("")) for family in PerSubject)


def per_subject_keys(keys: Iterable[str], families: Iterable[PerSubject]) -> list[str]:
    """The keys among `keys` that belong to any of `families`, in their order."""
    prefixes = tuple(family.key("") for family in families)
    return [k for k in keys if k.startswith(prefixes)]


class Labeler(str, Enum):
    """Who labels the reports for a clinical-efficacy family: cxr's rule-based labeler ("CE")
    or the CheXbert model (the `chexbert` scorer)."""

    RULES = "CE"
    CHEXBERT = "CheXbert"

    @property
    def per_observation(self) -> PerSubject:
        """The family of its per-observation F1."""
        return {Labeler.RULES: PerSubject.OBSERVATION_F1, Labeler.CHEXBERT: PerSubject.CHEXBERT_F1}[
            self
        ]


def clinical_key(statistic: str, n_observations: int, labeler: Labeler = Labeler.RULES) -> str:
    """A clinical-efficacy summary, e.g. "CE-F1-micro-14" or "CheXbert-F1-macro-5".

    Args:
        statistic: a key of `cxr.evaluation.classification.micro_macro` ("P-micro", ...).
        n_observations: how many observations it pools (all 14, or the 5 common ones).
        labeler: whose labels are compared.
    """
    return f"{labeler.value}-{statistic}-{n_observations}"


def reciprocal_key(metric: str) -> str:
    """A corpus mean reported as its reciprocal, e.g. "1/RadCliQ-v1" (ReXrank's column)."""
    return f"1/{metric}"
