"""Trivial report baselines shown beside every model: constant and retrieval.

- `most_common_report`: the training report text that occurs most often (after the same
  tokenization the metrics use), given to every test study.
- Retrieval through `ReportRetriever`: `FeatureRetriever` gives each test study the report of
  the training study whose image feature vector is nearest (cosine similarity);
  `RandomRetriever` gives a seeded random training report. They carry different names
  ("nearest-neighbour-report" / "random-train-report") so a table never shows the random one
  under the name of the feature-based one.

`baseline_systems` builds both as systems of text only: they get text metrics, and no
tube/line or change metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from cxr.errors import InputError
from cxr.evaluation.nlg import tokenize_report
from cxr.evaluation.studies import Section, StudyTable, System, section_text

log = logging.getLogger(__name__)


def most_common_report(train_reports: Sequence[str]) -> str:
    """The most frequent training report (ties: the first seen), as written in the training set."""
    texts = [t for t in train_reports if t and t.strip()]
    if not texts:
        raise InputError("--train_references", "no training report text")
    counts = Counter(tokenize_report(t) for t in texts)
    best = max(counts.values())
    return next(t for t in texts if counts[tokenize_report(t)] == best)


class ReportRetriever(Protocol):
    """Chooses a training report for each test study."""

    name: str

    def retrieve(self, test_study_ids: Sequence[str]) -> list[str]:
        """One training report per test study."""
        ...


class RandomRetriever:
    """A seeded random training report per test study (no image information)."""

    name = "random-train-report"

    def __init__(self, train_reports: Sequence[str], seed: int) -> None:
        self._reports = [t for t in train_reports if t and t.strip()]
        if not self._reports:
            raise InputError("--train_references", "no training report text")
        self._rng = np.random.default_rng(seed)

    def retrieve(self, test_study_ids: Sequence[str]) -> list[str]:
        picks = self._rng.integers(0, len(self._reports), size=len(test_study_ids))
        return [self._reports[i] for i in picks]


class FeatureRetriever:
    """The report of the training study with the most similar image features (cosine)."""

    name = "nearest-neighbour-report"

    def __init__(
        self,
        train_study_ids: Sequence[str],
        train_reports: Sequence[str],
        features: dict[str, np.ndarray],
    ) -> None:
        usable = [
            (s, t)
            for s, t in zip(train_study_ids, train_reports, strict=True)
            if t and s in features
        ]
        if not usable:
            raise InputError(
                "--retrieval_features", "no training study has both features and a report"
            )
        self._reports = [t for _, t in usable]
        self._train = _unit_rows(np.stack([features[s] for s, _ in usable]))
        self._features = features

    def retrieve(self, test_study_ids: Sequence[str]) -> list[str]:
        missing = [s for s in test_study_ids if s not in self._features]
        if missing:
            raise InputError(
                "--retrieval_features",
                f"{len(missing)} test studies have no features, e.g. {missing[0]!r}",
            )
        test = _unit_rows(np.stack([self._features[s] for s in test_study_ids]))
        nearest = np.argmax(test @ self._train.T, axis=1)
        return [self._reports[i] for i in nearest]


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def read_features(path: str | Path) -> dict[str, np.ndarray]:
    """Feature vectors by study id from an .npz with arrays `study_ids` (n) and `features` (n x d)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            study_ids, features = archive["study_ids"], archive["features"]
    except (OSError, ValueError, KeyError) as error:
        raise InputError(
            path, f"expected an .npz with arrays study_ids and features: {error}"
        ) from error
    if features.ndim != 2 or len(features) != len(study_ids):
        raise InputError(
            path, f"features must be (n x d) with n = len(study_ids); got {features.shape}"
        )
    return {str(s): features[i].astype(float) for i, s in enumerate(study_ids)}


def baseline_systems(
    test_study_ids: Sequence[str],
    train: pd.DataFrame,
    section: Section,
    seed: int,
    features_path: str | None = None,
) -> list[System]:
    """The most-common-report and retrieval baselines for the evaluated studies.

    Args:
        test_study_ids: the evaluated studies.
        train: the training references (study_id and report text columns).
        section: the compared text.
        seed: seed of the random retrieval (used without `features_path`).
        features_path: .npz of image features (see `read_features`) for nearest-neighbour
            retrieval; None retrieves a seeded random training report.
    """
    texts = [section_text(r, section) for r in train.to_dict("records")]
    constant = most_common_report(texts)
    retriever: ReportRetriever
    if features_path:
        retriever = FeatureRetriever(list(train["study_id"]), texts, read_features(features_path))
    else:
        retriever = RandomRetriever(texts, seed)
    return [
        System("most-common-report", StudyTable.text_only([constant] * len(test_study_ids))),
        System(retriever.name, StudyTable.text_only(retriever.retrieve(test_study_ids))),
    ]
