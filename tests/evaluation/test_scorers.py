"""Model-based scorers (cxr/evaluation/scorers.py): every known scorer has a status, unknown
names are errors, and a runner's per-study scores are computed once per system and
bootstrapped as a mean."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr.errors import InputError
from cxr.evaluation.evaluate import EvaluationOptions, evaluate_systems
from cxr.evaluation.scorers import RUNNER_LOADERS, ModelScorers, load_scorers, parse_weight_specs
from cxr.evaluation.studies import Section, StudyTable, System, build_references


def test_every_known_scorer_says_why_it_is_unavailable(tmp_path: Path) -> None:
    assert load_scorers({}).notes() == dict.fromkeys(
        RUNNER_LOADERS, "unavailable: no local weights given"
    )
    weights = tmp_path / "chexbert.pth"
    weights.write_bytes(b"")
    scorers = load_scorers(parse_weight_specs([f"CheXbert={weights}"]))
    assert scorers.runners == {}
    assert scorers.notes()["chexbert"].startswith("unavailable: weights given")
    with pytest.raises(InputError, match="not found"):
        load_scorers({"chexbert": tmp_path / "missing.pth"})


@pytest.mark.parametrize("spec", ["chexbert", "=x", "bleurt=/models/bleurt"])
def test_a_wrong_weight_spec_is_a_user_error(spec: str) -> None:
    with pytest.raises(InputError):
        parse_weight_specs([spec])


class WordCount:
    """Scores a report by its number of words; counts its calls."""

    version = "test"

    def __init__(self) -> None:
        self.calls = 0

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        self.calls += 1
        assert len(hypotheses) == len(references)
        return {"words": np.array([len(h.split()) for h in hypotheses], float)}


def test_a_runner_runs_once_per_system_and_its_mean_is_bootstrapped() -> None:
    references = build_references(
        pd.DataFrame(
            {
                "study_id": ["s1", "s2", "s3"],
                "patient_id": ["p1", "p2", "p3"],
                "findings": ["No effusion.", "", "Small effusion."],
            }
        ),
        Section.REPORT,
    )
    texts = ["one", "two words", "three words here"]
    runner = WordCount()
    evaluation = evaluate_systems(
        [System("model", StudyTable.text_only(texts))],
        references,
        EvaluationOptions(n_bootstrap=50, meteor=False),
        scorers=ModelScorers(runners={"count": runner}),
    )
    estimate = evaluation.systems["model"]["count/words"]
    assert estimate.value == pytest.approx((1 + 3) / 2)  # s2 has no reference text
    assert 1 <= estimate.ci_low <= estimate.ci_high <= 3
    assert runner.calls == 1
