"""Patient-level bootstrap: what is resampled and how intervals are read off.

A resample draws as many patients as the evaluation set has, with replacement, uniformly;
every study of a drawn patient enters the resample once per draw. A resample is therefore a
row of study multiplicities (`weights`), and each metric is recomputed on the weighted set
(corpus-level metrics from their summed statistics, see cxr.evaluation.nlg). When no patient
ids are known, each study is its own patient. The 95 % interval is the 2.5th and 97.5th
percentile of the resampled values (percentile bootstrap), ignoring resamples where a metric
is undefined (e.g. an AUC on a resample without positives). Paired differences use the same
resamples for both systems.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MetricFunction = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the evaluation set and its bootstrap interval; a metric that could
    not be computed (a model-based scorer without its weights) has NaN and `unavailable`."""

    value: float
    ci_low: float
    ci_high: float
    unavailable: str | None = None  # "unavailable: <reason>"

    @classmethod
    def missing(cls, note: str) -> Estimate:
        """A metric that was not computed, and why."""
        return cls(float("nan"), float("nan"), float("nan"), note)

    def to_dict(self) -> dict[str, float | str | None]:
        """JSON-ready; NaN becomes None; `unavailable` only when set."""
        values: dict[str, float | str | None] = {
            k: None if np.isnan(v) else float(v)
            for k, v in (("value", self.value), ("ci_low", self.ci_low), ("ci_high", self.ci_high))
        }
        if self.unavailable is not None:
            values["unavailable"] = self.unavailable
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, float | str | None]) -> Estimate:
        """The inverse of `to_dict`; None (or an absent bound) is NaN."""

        def number(key: str) -> float:
            value = values.get(key)
            return float("nan") if value is None else float(value)

        note = values.get("unavailable")
        return cls(
            number("value"),
            number("ci_low"),
            number("ci_high"),
            None if note is None else str(note),
        )


def patient_weights(patient_ids: Sequence[str], n_resamples: int, seed: int) -> np.ndarray:
    """Study multiplicities of `n_resamples` patient-level resamples, (resamples x studies).

    Args:
        patient_ids: the patient of each study (studies of one patient are drawn together).
        n_resamples: number of resamples.
        seed: seed of numpy's default generator.
    """
    _, patient_of_study = np.unique(np.asarray(patient_ids, dtype=str), return_inverse=True)
    n_patients = int(patient_of_study.max()) + 1 if len(patient_ids) else 0
    if n_patients == 0:
        return np.zeros((n_resamples, 0))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_patients, np.full(n_patients, 1.0 / n_patients), size=n_resamples)
    return draws[:, patient_of_study].astype(float)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """(low, high) percentiles of the defined samples; NaN when none is defined."""
    defined = samples[~np.isnan(samples)]
    if defined.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def _evaluate(metrics: MetricFunction, weights: np.ndarray, chunk: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(weights), chunk):
        for name, values in metrics(weights[start : start + chunk]).items():
            parts.setdefault(name, []).append(np.asarray(values, float))
    return {name: np.concatenate(values) for name, values in parts.items()}


def bootstrap(
    metrics: MetricFunction,
    n_studies: int,
    weights: np.ndarray,
    chunk: int = 250,
    point: dict[str, float] | None = None,
) -> dict[str, Estimate]:
    """Every metric's value (all studies once) and its interval over the resampled weights.

    Args:
        metrics: maps (resamples x studies) weights to {name: (resamples,) values}.
        n_studies: number of studies.
        weights: resamples from `patient_weights`; zero rows give point estimates only.
        chunk: resamples computed at once (bounds memory).
        point: values that replace the recomputed point estimates (e.g. pycocoevalcap's own).
    """
    computed = {k: float(v[0]) for k, v in metrics(np.ones((1, n_studies))).items()}
    point = {**computed, **{k: v for k, v in (point or {}).items() if k in computed}}
    samples = _evaluate(metrics, weights, chunk) if len(weights) else {}
    result = {}
    for name, value in point.items():
        low, high = percentile_interval(samples[name]) if name in samples else (np.nan, np.nan)
        result[name] = Estimate(value, low, high)
    return result


def paired_differences(
    first: MetricFunction,
    second: MetricFunction,
    n_studies: int,
    weights: np.ndarray,
    chunk: int = 250,
) -> dict[str, Estimate]:
    """first - second for every metric both give, with intervals from the same resamples."""

    def difference(w: np.ndarray) -> dict[str, np.ndarray]:
        a, b = first(w), second(w)
        return {name: a[name] - b[name] for name in a if name in b}

    return bootstrap(difference, n_studies, weights, chunk)
