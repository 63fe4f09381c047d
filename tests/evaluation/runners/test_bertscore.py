"""BERTScore runner: cxr's BERTScore-F1 equals RadEval's BertScore with ReXrank's settings
(distilroberta-base, layer 5, rescaled, no IDF), per study and as a corpus mean.

The weights are a tiny random RoBERTa saved as "distilroberta-base" with a byte-level BPE
tokenizer trained on a few report sentences, in the files the real hub repo serves. Rescaling
uses the real model's baseline (package data), so the numbers mean nothing; the test checks
that cxr's path gives the package's own numbers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr.errors import InputError
from cxr.evaluation.hub_cache import hub_cache, require
from cxr.evaluation.runners.bertscore import LAYER, METRIC, MODEL, SCORERS
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec, load_scorers
from evaluation.runners.hub_folders import evaluate_reports, save_tiny_distilroberta

SPEC = SCORERS[0]
SENTENCES = [
    "No acute cardiopulmonary process.",
    "Heart size is normal and the lungs are clear.",
    "Small left pleural effusion with adjacent atelectasis.",
    "Mild pulmonary edema and moderate cardiomegaly.",
    "No pneumothorax. Endotracheal tube in standard position.",
    "Right lower lobe opacity may represent pneumonia.",
]
REFERENCES = [
    "No acute cardiopulmonary process.",
    "Small left pleural effusion.",
    "Mild pulmonary edema. Heart size is enlarged.",
    "Right lower lobe pneumonia.",
    "No pneumothorax.",
    "Lungs are clear.",
]
GENERATED = [
    "No acute cardiopulmonary process.",
    "Small right pleural effusion with atelectasis.",
    "Moderate cardiomegaly without edema.",
    "Right lower lobe opacity.",
    "",  # an empty report scores the rescaled zero, not NaN
    "Heart size is normal and the lungs are clear.",
]


@pytest.fixture(scope="module", autouse=True)
def _only_this_scorer() -> Iterator[None]:
    """The registry holds just this runner's spec, whatever other runner modules exist."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cxr.evaluation.scorers.known_scorers", lambda: {SPEC.name: SPEC})
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache holding a tiny "distilroberta-base" in the real repo's file names."""
    cache = tmp_path_factory.mktemp("bertscore-hub")
    save_tiny_distilroberta(cache, SENTENCES)
    return cache


def test_the_folder_holds_every_needed_file_and_a_missing_one_is_named(
    folder: Path, tmp_path: Path
) -> None:
    require(SPEC.name, folder, SPEC.needs)
    assert {need.repo_id for need in SPEC.needs} == {MODEL}
    broken = tmp_path / "hub"
    shutil.copytree(folder, broken)
    snapshot = next((broken / "models--distilroberta-base" / "snapshots").iterdir())
    (snapshot / "merges.txt").unlink()
    with pytest.raises(InputError, match=r"hf download distilroberta-base merges\.txt"):
        load_scorers({SPEC.name: broken}, ScorerOptions(progress=False))


def test_cxr_gives_radeval_bertscore_per_study_and_as_the_corpus_mean(folder: Path) -> None:
    from radeval.metrics.bertscore.bertscore import BertScore

    options = ScorerOptions(progress=False, batch_size=4)  # two batches of the package's loop
    with hub_cache(folder):
        package = BertScore(
            model_type=MODEL,
            num_layers=LAYER,
            rescale_with_baseline=True,
            idf=False,
            batch_size=options.batch_size,
        )
        corpus, per_sample = package(refs=REFERENCES, hyps=GENERATED)

    scorers = load_scorers({SPEC.name: folder}, options)
    assert scorers.notes() == {SPEC.name: "ran"}
    per_study = scorers.per_study(GENERATED, REFERENCES).scores[METRIC]
    evaluation = evaluate_reports(GENERATED, REFERENCES, scorers)

    assert per_study == pytest.approx(per_sample, rel=1e-6, abs=1e-9)
    assert evaluation.systems["model"][METRIC].value == pytest.approx(corpus, rel=1e-6)
    assert np.isfinite(per_study).all()
    assert len(set(np.round(per_study, 6))) > 2  # the reports do score differently


def test_cxr_evaluate_with_the_weights_folder_shows_the_number_and_the_rest_unavailable(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cxr.cli import main

    ids = [f"s{i}" for i in range(len(REFERENCES))]
    for name, texts in (("refs", REFERENCES), ("preds", GENERATED)):
        pd.DataFrame({"study_id": ids, "findings": texts}).to_json(
            tmp_path / f"{name}.jsonl", orient="records", lines=True
        )
    other = ScorerSpec(**{**vars(SPEC), "name": "other", "metrics": ("Other-F1",)})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "cxr.evaluation.scorers.known_scorers", lambda: {SPEC.name: SPEC, "other": other}
        )
        code = main(
            [
                "evaluate",
                "--predictions", str(tmp_path / "preds.jsonl"),
                "--references", str(tmp_path / "refs.jsonl"),
                "-o", str(tmp_path / "out"),
                "--bootstrap", "20",
                "--meteor", "false",
                "--plots", "false",
                "--scorer", f"bertscore={folder}",
                "--scorer_cache", str(tmp_path / "cache"),
            ]
        )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert np.isfinite(metrics[METRIC]["value"])
    assert metrics[METRIC]["ci_low"] <= metrics[METRIC]["value"] <= metrics[METRIC]["ci_high"]
    assert metrics["Other-F1"]["value"] is None
    assert "bertscore: ran" in table
    assert "other: unavailable: no weights folder given (--scorer other=DIR)" in table
    assert (tmp_path / "cache" / "scores.sqlite").is_file()
