"""Patient bootstrap on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from cxr.evaluation.bootstrap import (
    bootstrap,
    paired_differences,
    patient_weights,
    percentile_interval,
)


def test_patient_weights_draw_whole_patients() -> None:
    patients = ["a", "a", "b", "c", "c", "c"]
    weights = patient_weights(patients, 500, seed=1)
    assert weights.shape == (500, 6)
    assert np.array_equal(weights[:, 0], weights[:, 1])
    assert np.array_equal(weights[:, 3], weights[:, 5])
    # three patients drawn per resample: the study count is 2*a + 1*b + 3*c
    draws = weights[:, [0, 2, 3]]
    assert (draws.sum(axis=1) == 3).all()
    assert np.array_equal(weights, patient_weights(patients, 500, seed=1))
    assert not np.array_equal(weights, patient_weights(patients, 500, seed=2))


def test_percentile_interval_ignores_undefined() -> None:
    samples = np.r_[np.arange(101, dtype=float), np.nan]
    assert percentile_interval(samples) == pytest.approx((2.5, 97.5))
    assert np.isnan(percentile_interval(np.array([np.nan]))[0])


def test_bootstrap_mean_and_paired_difference() -> None:
    values = np.array([0.0, 1.0, 1.0, 0.0])

    def mean(w: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean": w @ values / w.sum(axis=1)}

    def shifted(w: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean": w @ (values + 0.25) / w.sum(axis=1)}

    weights = patient_weights(["p", "q", "r", "s"], 2000, seed=0)
    estimate = bootstrap(mean, 4, weights)["mean"]
    assert estimate.value == 0.5
    assert 0.0 <= estimate.ci_low < 0.5 < estimate.ci_high <= 1.0
    difference = paired_differences(shifted, mean, 4, weights)["mean"]
    assert difference.value == pytest.approx(0.25)
    assert difference.ci_low == pytest.approx(0.25) and difference.ci_high == pytest.approx(0.25)
    assert np.isnan(bootstrap(mean, 4, np.zeros((0, 4)))["mean"].ci_low)
