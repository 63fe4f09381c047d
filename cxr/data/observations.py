"""Observation targets (`Targets.observations`) from the label values sources and labelers give.

A CheXpert-style label is 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not
mentioned): the CheXpert and NegBio tables of MIMIC-CXR-JPG, the offline labeler
(`cxr.evaluation.labeler`) and a user's labels CSV all speak it. A target is 1.0 (present),
0.0 (absent) or NaN (unknown, not trained on). `LabelPolicy` says what uncertain
(`UncertainMapping`, the same choice evaluation makes: positive | negative | ignore) and not
mentioned (`NotMentioned`) become; every source that turns such labels into targets goes
through it. `label_from_reports` labels studies from their own report text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import numpy as np

from cxr.errors import CxrError
from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.labeler import label_reports
from cxr.types import OBSERVATIONS, Study, is_missing

POSITIVE, NEGATIVE, UNCERTAIN = 1.0, 0.0, -1.0


class NotMentioned(str, Enum):
    """What a blank (not mentioned) label becomes as a target."""

    NEGATIVE = "negative"  # absent: a report that does not mention a finding did not see it
    IGNORE = "ignore"  # unknown (NaN)


E = TypeVar("E", bound=Enum)


def parse_choice(kind: type[E], value: str | E, option: str) -> E:
    """`value` as a member of `kind`; a CxrError names `option` and the known values."""
    try:
        return kind(value)
    except ValueError:
        known = " | ".join(str(member.value) for member in kind)
        raise CxrError(f"{option}: unknown value {value!r} (expected {known})") from None


def label_value(value: Any) -> float:
    """A label cell (1, 0, -1 as numbers or text; blank / None / NaN) as 1.0, 0.0, -1.0 or NaN.

    Raises:
        ValueError: any other value (names it).
    """
    if is_missing(value):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.inf
    if number not in (POSITIVE, NEGATIVE, UNCERTAIN):
        raise ValueError(f"{value!r} is not a label (1, 0, -1 or blank)")
    return number


@dataclass(frozen=True)
class LabelPolicy:
    """What uncertain and not-mentioned labels become as targets (positive stays 1, negative 0).

    `uncertain`: ignore (unknown: not trained on), positive ("U-Ones") or negative ("U-Zeros"),
    the variants of Irvin et al. (CheXpert, 2019).
    """

    uncertain: UncertainMapping = UncertainMapping.IGNORE
    not_mentioned: NotMentioned = NotMentioned.NEGATIVE

    def targets(self, labels: Mapping[Any, Any]) -> np.ndarray:
        """float32 [14] in OBSERVATIONS order from a row keyed by observation name; an
        observation absent from the row counts as not mentioned.

        Raises:
            ValueError: a cell that is no label (names the observation).
        """
        values = np.empty(len(OBSERVATIONS), dtype=np.float64)
        for i, name in enumerate(OBSERVATIONS):
            try:
                values[i] = label_value(labels.get(name))
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        blank = np.isnan(values)
        values = self.uncertain.resolve(values)
        if self.not_mentioned is NotMentioned.NEGATIVE:
            values[blank] = NEGATIVE
        return values.astype(np.float32)


# A labels CSV states what is known: a blank cell is unknown there, and uncertain too.
TABLE_POLICY = LabelPolicy(UncertainMapping.IGNORE, NotMentioned.IGNORE)
# The offline labeler on a study's own report: positive -> 1, negative or not mentioned -> 0,
# uncertain -> unknown.
LABELER_POLICY = LabelPolicy(UncertainMapping.IGNORE, NotMentioned.NEGATIVE)


def has_observations(observations: np.ndarray) -> bool:
    """True when at least one observation is known."""
    return not bool(np.isnan(observations).all())


def label_from_reports(studies: Sequence[Study]) -> int:
    """Sets the observations of the studies that have none known from their own report
    (findings + impression), read by the offline labeler under `LABELER_POLICY`; studies
    without a report are left as they are. Returns how many were labelled."""
    unlabelled = [
        study
        for study in studies
        if study.targets.report and not has_observations(study.targets.observations)
    ]
    if not unlabelled:
        return 0
    table = label_reports(study.targets.report or "" for study in unlabelled)
    for study, row in zip(unlabelled, table.to_dict(orient="records"), strict=True):
        study.targets.observations = LABELER_POLICY.targets(row)
    return len(unlabelled)
