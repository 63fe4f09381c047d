"""NLG metrics: tokenization, parity with pycocoevalcap, and exact bootstrap recomputation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge

from cxr.cli import main
from cxr.evaluation import nlg
from cxr.evaluation.nlg import NlgStatistics, nlg_scores, tokenize_report


def _iu_test_split(shared_data: Path) -> tuple[list[str], list[str]]:
    annotation = json.loads(
        (shared_data / "iu-xray-reports" / "annotation_r2gen_split.json").read_text()
    )
    entries = annotation["    "]
    ids = [e["id"] for e in entries]
    reports = [e["report"] for e in entries]
    return ids, reports


def _pycocoevalcap(hyps: list[str], refs: list[str], meteor: bool) -> dict[str, float]:
    gts = {i: [r] for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"BLEU-{k + 1}": b for k, b in enumerate(bleu)}
    scores["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
    scores["CIDEr"] = Cider().compute_score(gts, res)[0]
    if meteor:
        scores["METEOR"] = Meteor().compute_score(gts, res)[0]
    return scores


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Heart size normal. No effusion.", "heart size normal . no effusion ."),
        ("1. Stable cardiomegaly. 2. Clear lungs..", "stable cardiomegaly . clear lungs ."),
        ("A 2.5 cm nodule, right x-ray; patient's", "a 2.5 cm nodule right xray patients"),
        ("", ""),
        ("...", ""),
    ],
)
def test_tokenize_report(text: str, tokens: str) -> None:
    assert tokenize_report(text) == tokens


@pytest.mark.slow
def test_parity_with_pycocoevalcap_on_iu_test_split(shared_data: Path, tmp_path: Path) -> None:
    """Test split as references, shuffled reports as predictions, through `cxr evaluate`."""
    ids, reports = _iu_test_split(shared_data)
    shuffled = reports[:]
    random.Random(0).shuffle(shuffled)
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"study_id": i, "report": r}) + "\n"
            for i, r in zip(ids, shuffled, strict=True)
        )
    )
    out = tmp_path / "out"
    annotation = str(shared_data / "iu-xray-reports" / "annotation_r2gen_split.json")
    code = main(
        [
            "evaluate",
            "--predictions",
            str(predictions),
            "--references",
            annotation,
            "-o",
            str(out),
            "--bootstrap",
            "20",
            "--plots",
            "false",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    expected = _pycocoevalcap(
        [tokenize_report(s) for s in shuffled], [tokenize_report(r) for r in reports], meteor=True
    )
    for name, value in expected.items():
        assert metrics[name]["value"] == pytest.approx(value, abs=1e-9), name
        assert metrics[name]["ci_low"] <= value <= metrics[name]["ci_high"], name
    assert 0.05 < metrics["BLEU-4"]["value"] < 0.2  # shuffled IU reports are similar, not equal


def test_sufficient_statistics_equal_pycocoevalcap(shared_data: Path) -> None:
    """The vectorised recomputation (unit weights) reproduces pycocoevalcap to 1e-9."""
    _, reports = _iu_test_split(shared_data)
    refs = [tokenize_report(r) for r in reports[:200]]
    hyps = [*refs[1:], ""]  # includes an empty hypothesis
    stats = NlgStatistics(hyps, refs, meteor=False)
    recomputed = stats.scores(np.ones((1, len(refs))))
    expected = _pycocoevalcap(hyps, refs, meteor=False)
    for name, value in expected.items():
        assert recomputed[name][0] == pytest.approx(value, abs=1e-9), name
        assert stats.official[name] == value, name


@pytest.mark.slow
def test_resample_equals_pycocoevalcap_on_repeated_corpus(shared_data: Path) -> None:
    """A bootstrap resample is scored as pycocoevalcap scores the corpus with studies repeated."""
    _, reports = _iu_test_split(shared_data)
    refs = [tokenize_report(r) for r in reports[:60]]
    hyps = refs[::-1]
    hyps[5] = refs[5]  # a perfect match: the Meteor aggregation special case
    weights = np.random.default_rng(3).multinomial(
        len(refs), np.full(len(refs), 1 / len(refs)), size=2
    )
    stats = NlgStatistics(hyps, refs, meteor=True)
    scores = stats.scores(weights.astype(float))
    for row in range(2):
        repeated = np.repeat(np.arange(len(refs)), weights[row])
        expected = _pycocoevalcap(
            [hyps[i] for i in repeated], [refs[i] for i in repeated], meteor=True
        )
        for name, value in expected.items():
            assert scores[name][row] == pytest.approx(value, abs=1e-9), name


def test_meteor_unavailable_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlg.shutil, "which", lambda name: None)
    assert not nlg.java_available()
    scores = nlg_scores(["no effusion ."], ["no pleural effusion ."])
    assert "METEOR" not in scores
    assert "BLEU-1" in scores
    assert "METEOR" not in NlgStatistics(["a b"], ["a c"]).scores(np.ones((1, 1)))
