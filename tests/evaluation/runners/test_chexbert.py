"""The CheXbert runners (cxr/evaluation/runners/chexbert.py) give RadEval's own numbers:
CheXbert-F1 as RadEval's F1CheXbert metric reports it, SembScore as its
semantic_embedding_scores computes it.

The weights are a tiny random CheXbert in RadEval's format: a BertConfig with tiny sizes saved
as "bert-base-uncased" (which `_CheXbertLabeler` builds its BertModel from) with a WordPiece
tokenizer over the reports' words, and StanfordAIMI/RRG_scorers' chexbert.pth holding that
BERT and the 13 + 1 heads as a DataParallel state dict. The seed is one where the labels differ
between reports and include uncertain ones; the tests check that they do.

RadEval's F1CheXbert adapter builds `F1CheXbert()` with its default device "cuda", which fails
without a GPU (the labeler moves to CUDA before the evaluator's CPU fallback), so the test
builds the adapter with the CPU as that default.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cxr.errors import InputError
from cxr.evaluation.evaluate import Evaluation
from cxr.evaluation.hub_cache import hub_cache, require
from cxr.evaluation.metric_keys import Labeler, PerSubject, clinical_key
from cxr.evaluation.runners.chexbert import (
    CHECKPOINT,
    F1CHEXBERT_MODULE,
    LABEL_MODE,
    MODEL,
    SCORERS,
    SEMB_METRIC,
)
from cxr.evaluation.scorers import ModelScorers, ScorerOptions, load_scorers
from cxr.types import COMMON_OBSERVATIONS, OBSERVATIONS
from evaluation.runners.hub_folders import evaluate_reports, save_tiny_chexbert

SPECS = {spec.name: spec for spec in SCORERS}
OPTIONS = ScorerOptions(progress=False, batch_size=3)  # three batches of the package's loop
SEED = 2  # labels differ between these reports, some uncertain (checked below)

# (reference, generated)
REPORTS = [
    ("No acute cardiopulmonary process.", "No acute cardiopulmonary process."),
    ("Small left pleural effusion.", "Small right pleural effusion with atelectasis."),
    ("Mild pulmonary edema. Heart size is enlarged.", "Moderate cardiomegaly without edema."),
    ("Right lower lobe pneumonia.", "Right lower lobe opacity."),
    ("No pneumothorax.", ""),
    ("Lungs are clear.", "Heart size is normal and the lungs are clear."),
    ("Endotracheal tube in standard position.", "Possible consolidation. Tube in place."),
    ("Possible left lower lobe consolidation.", "Left lower lobe atelectasis or pneumonia."),
]
REFERENCES = [reference for reference, _ in REPORTS]
GENERATED = [generated for _, generated in REPORTS]


@pytest.fixture(scope="module", autouse=True)
def _only_these_scorers() -> Iterator[None]:
    """The registry holds just this module's specs, whatever other runner modules exist."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cxr.evaluation.scorers.known_scorers", lambda: dict(SPECS))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache with a tiny CheXbert: bert-base-uncased's files and the checkpoint."""
    cache = tmp_path_factory.mktemp("chexbert-hub")
    save_tiny_chexbert(cache, REFERENCES + GENERATED, SEED)
    return cache


@pytest.fixture(scope="module")
def package_labeler(folder: Path) -> object:
    """RadEval's F1CheXbert on the tiny weights, its checkpoint cache pointed at `folder`."""
    import importlib

    f1chexbert = importlib.import_module(F1CHEXBERT_MODULE)
    with pytest.MonkeyPatch.context() as patch, hub_cache(folder):
        patch.setattr(f1chexbert, "CACHE_DIR", str(folder))
        return f1chexbert.F1CheXbert(device="cpu", batch_size=OPTIONS.batch_size)


@pytest.fixture(scope="module")
def scorers(folder: Path) -> ModelScorers:
    loaded = load_scorers({name: folder for name in SPECS}, OPTIONS)
    assert loaded.notes() == {name: "ran" for name in SPECS}
    return loaded


@pytest.fixture(scope="module")
def evaluation(scorers: ModelScorers) -> Evaluation:
    return evaluate_reports(GENERATED, REFERENCES, scorers)


@pytest.mark.parametrize(
    ("name", "repo_id", "filename"),
    [
        ("chexbert", CHECKPOINT.repo_id, CHECKPOINT.filename),
        ("sembscore", MODEL, "tokenizer.json"),
    ],
)
def test_the_folder_holds_every_needed_file_and_a_missing_one_is_named(
    folder: Path, tmp_path: Path, name: str, repo_id: str, filename: str
) -> None:
    spec = SPECS[name]
    require(name, folder, spec.needs)
    broken = tmp_path / "hub"
    shutil.copytree(folder, broken)
    snapshots = broken / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    (next(snapshots.iterdir()) / filename).unlink()
    with pytest.raises(InputError, match=re.escape(f"hf download {repo_id} {filename}")):
        load_scorers({name: broken}, OPTIONS)


def test_radeval_names_the_observations_as_cxr_does(package_labeler: object) -> None:
    assert sorted(package_labeler.TARGET_NAMES) == sorted(OBSERVATIONS)  # type: ignore[attr-defined]
    assert sorted(package_labeler.TOP5) == sorted(COMMON_OBSERVATIONS)  # type: ignore[attr-defined]


def test_labels_are_radevals_classification_labels_by_observation(
    package_labeler: object, scorers: ModelScorers
) -> None:
    texts = REFERENCES + GENERATED
    rows = package_labeler.get_labels(texts, mode=LABEL_MODE)  # type: ignore[attr-defined]
    names = package_labeler.TARGET_NAMES  # type: ignore[attr-defined]
    expected = np.array([[row[names.index(o)] for o in OBSERVATIONS] for row in rows], float)

    generated, reference = scorers.per_study(GENERATED, REFERENCES).labels["chexbert"]

    assert np.array_equal(np.vstack([reference, generated]), expected)
    assert ((expected != expected[0]).any(axis=0)).sum() >= 2  # observations differ by report
    assert (expected == -1).any() and (expected == 1).any() and (expected == 0).any()


def test_chexbert_f1_is_radevals_f1chexbert_metric(
    folder: Path, package_labeler: object, evaluation: Evaluation
) -> None:
    import importlib

    import radeval

    f1chexbert = importlib.import_module(F1CHEXBERT_MODULE)
    cpu_default = functools.partial(f1chexbert.F1CheXbert, device="cpu", batch_size=3)
    with pytest.MonkeyPatch.context() as patch, hub_cache(folder):
        patch.setattr(f1chexbert, "CACHE_DIR", str(folder))
        patch.setattr(f1chexbert, "F1CheXbert", cpu_default)
        package = radeval.RadEval(metrics=["f1chexbert"], detailed=True, show_progress=False)
        reported = package(refs=REFERENCES, hyps=GENERATED)
    *_, report_14, report_5, _, _ = package_labeler.forward(GENERATED, REFERENCES)  # type: ignore[attr-defined]
    values = {metric: estimate.value for metric, estimate in evaluation.systems["model"].items()}

    expected = {
        "CheXbert-F1-micro-14": reported["f1chexbert_all_micro_f1"],
        "CheXbert-F1-macro-14": reported["f1chexbert_all_macro_f1"],
        "CheXbert-F1-micro-5": reported["f1chexbert_5_micro_f1"],
        "CheXbert-F1-macro-5": reported["f1chexbert_5_macro_f1"],
    }
    assert set(expected) == set(SPECS["chexbert"].metrics)
    for n, report in ((len(OBSERVATIONS), report_14), (len(COMMON_OBSERVATIONS), report_5)):
        for average in ("micro", "macro"):
            for statistic, column in (("P", "precision"), ("R", "recall")):
                key = clinical_key(f"{statistic}-{average}", n, Labeler.CHEXBERT)
                expected[key] = report[f"{average} avg"][column]
    per_observation = reported["f1chexbert_label_scores_f1"]["f1chexbert_all"]
    for observation in OBSERVATIONS:
        expected[PerSubject.CHEXBERT_F1.key(observation)] = per_observation[observation]

    assert {k: values[k] for k in expected} == pytest.approx(expected, rel=1e-6, abs=1e-9)
    headline = [expected[k] for k in SPECS["chexbert"].metrics]
    assert all(0 < value < 1 for value in headline)  # neither none nor all agree
    assert len({round(v, 6) for v in per_observation.values()}) > 2
    assert evaluation.info["uncertain_model_labelers"] == "positive"  # as RadEval counts them


def test_sembscore_is_radevals_semantic_embedding_scores(
    folder: Path, scorers: ModelScorers, evaluation: Evaluation
) -> None:
    import importlib

    from radeval.metrics.RadCliQv1.semb_score import (
        mean_semantic_score,
        semantic_embedding_scores,
    )

    f1chexbert = importlib.import_module(F1CHEXBERT_MODULE)
    with pytest.MonkeyPatch.context() as patch, hub_cache(folder):
        patch.setattr(f1chexbert, "CACHE_DIR", str(folder))
        per_sample = semantic_embedding_scores(REFERENCES, GENERATED, device="cpu")

    per_study = scorers.per_study(GENERATED, REFERENCES).scores[SEMB_METRIC]

    assert per_study == pytest.approx(per_sample, rel=1e-6, abs=1e-9)
    assert evaluation.systems["model"][SEMB_METRIC].value == pytest.approx(
        mean_semantic_score(per_sample), rel=1e-6
    )
    assert np.isfinite(per_study).all()
    assert per_study[0] == pytest.approx(1.0, rel=1e-6)  # the identical pair
    assert len(set(np.round(per_study, 6))) > 3  # the other pairs score differently
