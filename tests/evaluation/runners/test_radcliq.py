"""The RadCliQ-v1 runner (cxr/evaluation/runners/radcliq.py) gives RadEval's own numbers: the
per-study RadCliQ-v1 of its CompositeMetric and 1 / their mean, as RadEval's "radcliq" metric
reports them.

The weights are the tiny random models of the other parity tests, in the packages' formats,
in one hub cache: RadGraph (tiny_radgraph.py), CheXbert and distilroberta-base
(hub_folders.py). On the package's side the folder is reached as a user would reach it,
through the module constants its RadGraph and CheXbert download into by default.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cxr.errors import InputError
from cxr.evaluation.hub_cache import hub_cache, require
from cxr.evaluation.metric_keys import reciprocal_key
from cxr.evaluation.runners.chexbert import F1CHEXBERT_MODULE
from cxr.evaluation.runners.radcliq import METRIC, SCORERS
from cxr.evaluation.runners.radgraph import vendored_core
from cxr.evaluation.scorers import ModelScorers, ScoreCache, ScorerOptions, load_scorers
from evaluation.runners.hub_folders import (
    evaluate_reports,
    save_tiny_chexbert,
    save_tiny_distilroberta,
)
from evaluation.runners.tiny_radgraph import save_tiny_radgraph

SPEC = SCORERS[0]
OPTIONS = ScorerOptions(progress=False, batch_size=4)

# (reference, generated)
REPORTS = [
    ("No acute cardiopulmonary process.", "No acute cardiopulmonary process."),
    ("Small left pleural effusion.", "Small right pleural effusion with atelectasis."),
    ("Mild pulmonary edema. Heart size is enlarged.", "Moderate cardiomegaly without edema."),
    ("Right lower lobe pneumonia.", "Right lower lobe opacity."),
    ("No pneumothorax.", "No pneumothorax. Heart size is normal."),
    ("Lungs are clear.", "Heart size is normal and the lungs are clear."),
]
REFERENCES = [reference for reference, _ in REPORTS]
GENERATED = [generated for _, generated in REPORTS]


@pytest.fixture(scope="module", autouse=True)
def _only_this_scorer() -> Iterator[None]:
    """The registry holds just this runner's spec, whatever other runner modules exist."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cxr.evaluation.scorers.known_scorers", lambda: {SPEC.name: SPEC})
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hub cache with tiny RadGraph, CheXbert and distilroberta-base."""
    cache = tmp_path_factory.mktemp("radcliq-hub")
    save_tiny_radgraph(cache, "radgraph")
    save_tiny_chexbert(cache, REFERENCES + GENERATED, seed=2)
    save_tiny_distilroberta(cache, REFERENCES + GENERATED)
    return cache


def _radeval(folder: Path, references: list[str], generated: list[str]) -> dict[str, object]:
    """RadEval's own "radcliq" metric, per sample and for the corpus, on the CPU, its
    RadGraph and CheXbert reading `folder` through their default cache constants."""
    import radeval

    core = vendored_core()
    f1chexbert = importlib.import_module(F1CHEXBERT_MODULE)
    with pytest.MonkeyPatch.context() as patch, hub_cache(folder):
        patch.setattr(core, "CACHE_DIR", str(folder))
        patch.setattr(f1chexbert, "CACHE_DIR", str(folder))
        per_sample = radeval.RadEval(metrics=["radcliq"], per_sample=True, show_progress=False)
        corpus = radeval.RadEval(metrics=["radcliq"], detailed=True, show_progress=False)
        return {
            "per_sample": per_sample(refs=references, hyps=generated)["radcliq_v1"],
            "corpus": corpus(refs=references, hyps=generated)["radcliq_v1"],
        }


def test_the_folder_holds_every_needed_file_and_a_missing_one_is_named(
    folder: Path, tmp_path: Path
) -> None:
    require(SPEC.name, folder, SPEC.needs)
    assert {need.repo_id for need in SPEC.needs} >= {
        "StanfordAIMI/RRG_scorers",
        "distilroberta-base",
    }
    broken = tmp_path / "hub"
    shutil.copytree(folder, broken, ignore=shutil.ignore_patterns("radgraph"))
    snapshot = next((broken / "models--distilroberta-base" / "snapshots").iterdir())
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"hf download distilroberta-base model\.safetensors"):
        load_scorers({SPEC.name: broken}, OPTIONS)


def test_cxr_gives_radevals_radcliq_per_study_and_its_reciprocal(folder: Path) -> None:
    expected = _radeval(folder, REFERENCES, GENERATED)
    scorers = load_scorers({SPEC.name: folder}, OPTIONS)
    assert scorers.notes() == {SPEC.name: "ran"}
    per_study = scorers.per_study(GENERATED, REFERENCES).scores[METRIC]
    evaluation = evaluate_reports(GENERATED, REFERENCES, scorers, n_bootstrap=20)
    metrics = evaluation.systems["model"]

    assert per_study == pytest.approx(expected["per_sample"], rel=1e-6, abs=1e-9)
    reciprocal = metrics[reciprocal_key(METRIC)].value
    assert reciprocal == pytest.approx(1 / np.mean(expected["per_sample"]), rel=1e-6)
    assert reciprocal == pytest.approx(expected["corpus"], abs=5e-5)  # RadEval rounds to 4 places
    assert metrics[METRIC].value == pytest.approx(np.mean(per_study), rel=1e-9)
    assert metrics[METRIC].ci_low <= metrics[METRIC].value <= metrics[METRIC].ci_high
    assert len(set(np.round(per_study, 6))) > 2  # the reports do score differently


def test_scores_depend_on_the_reference_corpus_and_are_cached_per_corpus(
    folder: Path, tmp_path: Path
) -> None:
    """BERTScore's IDF comes from the references: a study scored within another corpus gets
    RadEval's number for that corpus, not the first corpus's cached one."""
    loaded = load_scorers({SPEC.name: folder}, OPTIONS)
    scorers = ModelScorers(loaded.runners, loaded.statuses, ScoreCache(tmp_path))
    first = scorers.per_study(GENERATED, REFERENCES).scores[METRIC]
    half = len(REPORTS) // 2
    part = scorers.per_study(GENERATED[:half], REFERENCES[:half]).scores[METRIC]
    expected = _radeval(folder, REFERENCES[:half], GENERATED[:half])["per_sample"]
    assert part == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert not np.allclose(part, first[:half])
