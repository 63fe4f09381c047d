"""Prior studies from any ordering of a patient's studies: a datetime, a follow-up number, ..."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from cxr.io import IndexedStudy


def link_priors_in_order(
    studies: Sequence[IndexedStudy], order: Callable[[IndexedStudy], Any]
) -> None:
    """Sets each study's prior: the same patient's latest study whose `order` is strictly smaller.

    Studies whose `order` is None, or that have no patient, neither get nor serve as priors;
    studies of equal order are not each other's priors (same as `cxr.io.studies.link_priors`,
    which orders by study datetime).
    """
    by_patient: dict[str, list[tuple[Any, IndexedStudy]]] = defaultdict(list)
    for study in studies:
        study.prior_study_id = None
        key = order(study)
        if study.patient_id and key is not None:
            by_patient[study.patient_id].append((key, study))
    for timeline in by_patient.values():
        timeline.sort(key=lambda entry: (entry[0], entry[1].study_id))
        latest_earlier: str | None = None
        previous: tuple[Any, IndexedStudy] | None = None
        for key, study in timeline:
            if previous is not None and previous[0] != key:
                latest_earlier = previous[1].study_id
            study.prior_study_id = latest_earlier
            previous = (key, study)
