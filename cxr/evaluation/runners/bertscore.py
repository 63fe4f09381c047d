"""BERTScore-F1 (Zhang et al., 2020): each generated report's tokens are greedily matched to
its reference's by the cosine of their contextual embeddings; F1 of the matched precision and
recall, one number per study.

Computed by RadEval's `radeval.metrics.bertscore.bertscore.BertScore` (its vendored
bert_score 0.3.13) with ReXrank's settings, the convention of CXR-Report-Metric that ReXrank
and RadCliQ use: distilroberta-base, layer 5, rescaled with the baseline, no IDF weighting.
These are NOT the settings of RadEval's own "bertscore" metric adapter
(radeval/metrics/bertscore/adapter.py: distilbert-base-uncased, layer 5), whose numbers are
not comparable with the literature's. The layer is upstream bert_score's `model2layers` default
for distilroberta-base (5); RadEval's vendored copy dropped that table and takes the layer as
an argument (its RadCliQ-v1 passes the same 5, radeval/metrics/RadCliQv1/radcliq.py).

The rescale baseline is package data, not a hub file: the vendored BERTScorer reads
`_vendor/rescale_baseline/en/distilroberta-base.tsv` beside its own code (row 5, its P, R and F
columns) and rescales each score as (score - baseline) / (1 - baseline). The hub files are the
weights and the tokenizer; tokenizer_config.json sets model_max_length 512, the length at which
the vendored code truncates a report.

Conventions of the package, kept as they are: `BertScore.forward` returns the mean of the
per-sample F1 tensor and the per-sample list, so the corpus BERTScore-F1 is the plain mean of
the per-study values cxr reports. An empty (or blank) report on either side has raw precision
and recall set to 0 and F1 to 0 (`greedy_cos_idf`), which rescales to the baseline's negative
(about -5.5), never NaN.

What cxr sets around RadEval, and why: `BertScore` takes no device (its BERTScorer picks CUDA
when available), so the loaded model is moved to `ScorerOptions.device` afterwards.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr.evaluation.hub_cache import HubFile
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec

MODEL = "distilroberta-base"  # the hub id bert_score and ReXrank name; the hub redirects it
LAYER = 5  # bert_score's model2layers default for distilroberta-base
METRIC = "BERTScore-F1"
NEEDS = tuple(
    HubFile(MODEL, filename)
    for filename in (
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",  # model_max_length 512
        "tokenizer.json",
        "vocab.json",
        "merges.txt",
    )
)


class BertScoreRunner:
    """RadEval's BertScore with ReXrank's settings, loaded once, scoring report pairs."""

    corpus_dependent = False  # a study's score depends on its own pair only

    def __init__(self, options: ScorerOptions) -> None:
        from radeval.metrics.bertscore.bertscore import BertScore

        self._scorer = BertScore(
            model_type=MODEL,
            num_layers=LAYER,
            rescale_with_baseline=True,
            idf=False,
            batch_size=options.batch_size,
        )
        move_to(self._scorer.bert_scorer, options.device)
        self._batch_size = options.batch_size
        self._progress = options.progress
        self.version = (
            f"RadEval {importlib.metadata.version('RadEval')} {self._scorer.bert_scorer.hash}"
        )

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        from tqdm import tqdm

        batches = math.ceil(len(hypotheses) / self._batch_size)
        with tqdm(total=batches, desc=METRIC, unit="batch", disable=not self._progress) as bar:
            _, f1 = self._scorer(
                refs=list(references), hyps=list(hypotheses), on_batch_done=bar.update
            )
        return {METRIC: np.asarray(f1, dtype=float)}


def move_to(bert_scorer: Any, device: str) -> None:
    """Puts the vendored BERTScorer's model, and the device it embeds on, on `device`."""
    if str(bert_scorer.device) != device:
        bert_scorer._model.to(device)
        bert_scorer.device = device


def load(folder: Path, options: ScorerOptions) -> BertScoreRunner:
    """distilroberta-base's weights and tokenizer from `folder` (the hub cache)."""
    return BertScoreRunner(options)


SCORERS: tuple[ScorerSpec, ...] = (
    ScorerSpec(
        name="bertscore",
        summary="BERTScore-F1: greedy cosine matching of contextual token embeddings "
        "(distilroberta-base layer 5, rescaled, no IDF: ReXrank's settings)",
        package="RadEval (radeval.metrics.bertscore.bertscore.BertScore)",
        needs=NEEDS,
        metrics=(METRIC,),
        parity_test="tests/evaluation/runners/test_bertscore.py",
        load=load,
    ),
)
