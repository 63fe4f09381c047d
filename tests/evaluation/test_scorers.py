"""Model-based scorers (cxr/evaluation/scorers.py): every known scorer has a status, shown in
place of its metrics when it did not run; weights folders are checked before loading; per-study
results are computed once, cached by text and scorer version, and bootstrapped like every
other metric."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr.errors import InputError
from cxr.evaluation.evaluate import EvaluationOptions, evaluate_systems
from cxr.evaluation.hub_cache import HubFile
from cxr.evaluation.outputs import format_table, read_evaluation, write_outputs
from cxr.evaluation.scorers import (
    LoadedScorer,
    ModelScorers,
    ScoreCache,
    ScorerSpec,
    ScorerUnavailable,
    load_scorers,
    parse_scorer_specs,
)
from cxr.evaluation.studies import References, Section, StudyTable, System, build_references
from cxr.types import OBSERVATIONS

TOY = ScorerSpec(
    name="toy",
    summary="a scorer of the tests",
    package="none",
    needs=(HubFile("org/toy", "config.json"), HubFile("org/toy", "model.safetensors")),
    metrics=("Toy-F1",),
    parity_test="tests/evaluation/test_scorers.py",
    load=lambda folder, options: WordCount(),
)


@pytest.fixture(autouse=True)
def _toy_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cxr.evaluation.scorers.known_scorers", lambda: {"toy": TOY})


def _references() -> References:
    return build_references(
        pd.DataFrame(
            {
                "study_id": ["s1", "s2", "s3", "s4"],
                "patient_id": ["p1", "p2", "p3", "p3"],
                "findings": ["No effusion.", "", "Small effusion.", "Edema."],
            }
        ),
        Section.REPORT,
    )


def test_a_scorer_without_weights_is_unavailable_in_the_table_and_metrics_json(
    tmp_path: Path,
) -> None:
    scorers = load_scorers({})
    assert scorers.notes() == {"toy": "unavailable: no weights folder given (--scorer toy=DIR)"}
    evaluation = evaluate_systems(
        [System("model", StudyTable.text_only(["a", "b", "c", "d"]))],
        _references(),
        EvaluationOptions(n_bootstrap=5, meteor=False),
        scorers=scorers,
    )
    write_outputs(evaluation, tmp_path, make_plots=False)
    metrics = read_evaluation(tmp_path).systems["model"]
    table = format_table(evaluation)
    for spec in [TOY]:
        for metric in spec.metrics:
            assert np.isnan(metrics[metric].value)
            assert metrics[metric].unavailable == (
                f"unavailable: no weights folder given (--scorer {spec.name}=DIR)"
            )
            assert metric in table
    assert "unavailable: no weights folder given (--scorer toy=DIR)" in table


def test_a_folder_without_the_needed_files_names_them_and_how_to_fetch_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match="not a directory"):
        load_scorers({"toy": tmp_path / "absent"})
    needs = TOY.needs
    with pytest.raises(InputError) as raised:
        load_scorers({"toy": tmp_path})
    assert f"hf download org/toy config.json model.safetensors --cache-dir {tmp_path}" in str(
        raised.value
    )
    assert [need.filename for need in needs] == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("spec", ["toy", "=x", "bleurt=/models/bleurt"])
def test_a_wrong_scorer_spec_is_a_user_error(spec: str) -> None:
    with pytest.raises(InputError):
        parse_scorer_specs([spec])


def test_scorer_names_are_case_blind_and_paths_expand_home() -> None:
    assert parse_scorer_specs(["Toy=~/w"]) == {"toy": Path.home() / "w"}


class WordCount:
    """Scores a report by its number of words; records the reports it was asked about."""

    version = "test"
    corpus_dependent = False

    def __init__(self) -> None:
        self.seen: list[str] = []

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        assert len(hypotheses) == len(references)
        self.seen += hypotheses
        return {"words": np.array([len(h.split()) for h in hypotheses], float)}


class MentionsEdema:
    """Labels "Edema" positive when the text says edema, uncertain when it says "possible"."""

    version = "test"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def labels(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += texts
        labels = np.zeros((len(texts), len(OBSERVATIONS)))
        for row, text in enumerate(texts):
            if "edema" in text.lower():
                labels[row, OBSERVATIONS.index("Edema")] = -1 if "possible" in text else 1
        return labels


def test_per_study_scores_are_bootstrapped_as_a_mean_and_cached_by_text(tmp_path: Path) -> None:
    texts = ["one", "two words", "three words here", "one"]
    runner = WordCount()
    cache = ScoreCache(tmp_path / "cache")
    scorers = ModelScorers(
        runners={"count": LoadedScorer(runner, reciprocals=("words",))}, cache=cache
    )
    systems = [System("model", StudyTable.text_only(texts))]
    options = EvaluationOptions(n_bootstrap=50, meteor=False)
    evaluation = evaluate_systems(systems, _references(), options, scorers=scorers)
    estimate = evaluation.systems["model"]["words"]
    assert estimate.value == pytest.approx((1 + 3 + 1) / 3)  # s2 has no reference text
    assert 1 <= estimate.ci_low <= estimate.ci_high <= 3
    assert evaluation.systems["model"]["1/words"].value == pytest.approx(3 / 5)
    assert runner.seen == ["one", "three words here", "one"]
    # A new process on the same cache, and a second system sharing reports, run nothing again.
    again = ModelScorers(runners={"count": WordCount()}, cache=ScoreCache(tmp_path / "cache"))
    rerun = evaluate_systems(systems, _references(), options, scorers=again)
    assert rerun.systems["model"]["words"] == estimate
    assert again.runners["count"].seen == []  # type: ignore[union-attr]


def test_a_changed_scorer_version_is_not_served_from_the_cache(tmp_path: Path) -> None:
    cache = ScoreCache(tmp_path)
    first, second = WordCount(), WordCount()
    second.version = "other weights"
    table = StudyTable.text_only(["a b", "c", "d", "e"])
    for runner in (first, second):
        evaluate_systems(
            [System("model", table)],
            _references(),
            EvaluationOptions(n_bootstrap=0, meteor=False),
            scorers=ModelScorers(runners={"count": runner}, cache=cache),
        )
    assert first.seen == second.seen == ["a b", "d", "e"]


class SharedWords(WordCount):
    """Scores a report by how many of its words occur anywhere in the reference corpus."""

    corpus_dependent = True

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        self.seen += hypotheses
        corpus = {word for reference in references for word in reference.split()}
        return {"shared": np.array([len(set(h.split()) & corpus) for h in hypotheses], float)}


def test_a_corpus_dependent_scorer_scores_all_pairs_together_per_reference_corpus(
    tmp_path: Path,
) -> None:
    cache = ScoreCache(tmp_path)
    texts = ["effusion", "x", "edema", "small"]
    options = EvaluationOptions(n_bootstrap=0, meteor=False)

    def run(references: References) -> tuple[float, list[str]]:
        runner = SharedWords()
        scorers = ModelScorers(runners={"shared": runner}, cache=cache)
        evaluation = evaluate_systems(
            [System("model", StudyTable.text_only(texts))], references, options, scorers=scorers
        )
        return evaluation.systems["model"]["shared"].value, runner.seen

    # Corpus {No, effusion., Small, Edema.}: no generated word is in it, word for word.
    assert run(_references()) == (0.0, ["effusion", "edema", "small"])
    assert run(_references()) == (0.0, [])  # cached under this corpus
    other = build_references(
        pd.DataFrame(
            {
                "study_id": ["s1", "s2", "s3", "s4"],
                "patient_id": ["p1", "p2", "p3", "p3"],
                "findings": ["effusion", "", "small", "No edema"],
            }
        ),
        Section.REPORT,
    )
    assert run(other) == (1.0, ["effusion", "edema", "small"])  # a new corpus scores again


def test_a_scorer_whose_package_cannot_run_here_is_unavailable_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_run(folder: Path, options: object) -> WordCount:
        raise ScorerUnavailable("its package needs numpy < 2")

    monkeypatch.setattr(
        "cxr.evaluation.scorers.known_scorers",
        lambda: {"toy": dataclasses.replace(TOY, needs=(), load=cannot_run)},
    )
    scorers = load_scorers({"toy": tmp_path})
    assert scorers.notes() == {"toy": "unavailable: its package needs numpy < 2"}
    assert scorers.unavailable_metrics() == {"Toy-F1": "unavailable: its package needs numpy < 2"}


def test_label_runners_give_chexbert_f1_with_uncertain_counted_positive() -> None:
    runner = MentionsEdema()
    evaluation = evaluate_systems(
        [System("model", StudyTable.text_only(["Clear.", "x", "possible edema", "Edema."]))],
        _references(),
        EvaluationOptions(n_bootstrap=0, meteor=False),
        scorers=ModelScorers(runners={"chexbert": runner}),
    )
    metrics = evaluation.systems["model"]
    # References: no edema, effusion, edema; generated: nothing, possible edema (counted
    # positive), edema: one true positive, one false positive (counted as negative: F1 1).
    assert metrics["CheXbert-F1/Edema"].value == pytest.approx(2 / 3)
    assert metrics["CheXbert-P-micro-14"].value == pytest.approx(1 / 2)
    assert sorted(set(runner.seen)) == sorted(
        {"Edema.", "possible edema", "Clear.", "No effusion.", "Small effusion."}
    )
