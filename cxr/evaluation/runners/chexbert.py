"""CheXbert (Smit et al., 2020): the 14 CheXpert observation labels of each report, and
SembScore, the cosine similarity of the CheXbert embeddings of a generated report and its
reference (Yu et al., 2023, the semantic part of RadCliQ).

Both go through RadEval's `radeval.metrics.f1chexbert.F1CheXbert`, which builds the CheXbert
labeler (bert-base-uncased with 13 four-way heads and one two-way "No Finding" head) from the
checkpoint `chexbert.pth` of StanfordAIMI/RRG_scorers and the config and tokenizer of
bert-base-uncased.

- `chexbert` (a LabelRunner): `F1CheXbert.get_labels(mode="classification")`, whose classes
  are 1 positive, -1 uncertain and 0 negative or not mentioned (radeval/metrics/
  _chexbert_base.py, `get_labels`), reordered from RadEval's `TARGET_NAMES` to
  cxr.types.OBSERVATIONS by name. cxr counts them with uncertain as positive, which is what
  RadEval's own F1 does (`get_labels(mode="rrg")` maps the classes {1, 3} to 1 before
  sklearn's `classification_report` in `forward`): CheXbert-F1-micro-14 and -macro-14 are the
  report's "micro avg" and "macro avg" over all 14, the -5 keys those over RadEval's `TOP5`
  (cxr's COMMON_OBSERVATIONS).
- `sembscore` (a PairRunner): RadEval's `radeval.metrics.RadCliQv1.semb_score.
  semantic_embedding_scores`, the cosine of the two reports' [CLS] embeddings per study (0
  where an embedding has norm 0). Its corpus value, `mean_semantic_score`, is their plain
  mean, as cxr reports it. An empty report still embeds ([CLS] [SEP]), so no score is NaN.

What cxr sets around RadEval, and why:
- `F1CheXbert` downloads the checkpoint with an explicit `cache_dir` taken from the module
  constant `radeval.metrics.f1chexbert.f1chexbert.CACHE_DIR` (appdirs' user cache), which
  `hub_cache` does not redirect; cxr points that constant at the weights folder while the
  labeler loads and restores it afterwards.
- `semantic_embedding_scores` builds a new `F1CheXbert` (batch size 64) on every call; cxr
  hands it the labeler loaded once, with ScorerOptions' device and batch size, by replacing
  the name `F1CheXbert` in that module during the call. It calls the function once per batch
  of pairs, which runs the same batches the function would, to show progress.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr.evaluation.hub_cache import HubFile
from cxr.evaluation.metric_keys import Labeler, clinical_key
from cxr.evaluation.runners import replaced
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec
from cxr.types import COMMON_OBSERVATIONS, OBSERVATIONS

MODEL = "bert-base-uncased"  # the hub id RadEval loads the config and tokenizer from
CHECKPOINT = HubFile("StanfordAIMI/RRG_scorers", "chexbert.pth")
NEEDS = (
    HubFile(MODEL, "config.json"),
    HubFile(MODEL, "vocab.txt"),
    HubFile(MODEL, "tokenizer.json"),
    HubFile(MODEL, "tokenizer_config.json"),
    CHECKPOINT,
)
LABEL_MODE = "classification"  # get_labels' mode that keeps uncertain mentions apart
LABEL_METRICS = tuple(
    clinical_key(statistic, n_observations, Labeler.CHEXBERT)
    for n_observations in (len(OBSERVATIONS), len(COMMON_OBSERVATIONS))
    for statistic in ("F1-micro", "F1-macro")
)
SEMB_METRIC = "SembScore"
F1CHEXBERT_MODULE = "radeval.metrics.f1chexbert.f1chexbert"
SEMB_MODULE = "radeval.metrics.RadCliQv1.semb_score"


def _radeval_version() -> str:
    return f"RadEval {importlib.metadata.version('RadEval')}"


def load_labeler(folder: Path, options: ScorerOptions) -> Any:
    """RadEval's F1CheXbert, its checkpoint read from `folder` (see the module docstring)."""
    f1chexbert = importlib.import_module(F1CHEXBERT_MODULE)
    with replaced(f1chexbert, "CACHE_DIR", str(folder)):
        return f1chexbert.F1CheXbert(device=options.device, batch_size=options.batch_size)


class CheXbertLabelRunner:
    """The 14 CheXpert labels of each report by RadEval's F1CheXbert, in OBSERVATIONS order."""

    def __init__(self, labeler: Any, options: ScorerOptions) -> None:
        names = list(labeler.TARGET_NAMES)
        unknown = sorted(set(OBSERVATIONS) - set(names))
        if unknown:
            raise ValueError(f"RadEval's CheXbert labels lack observations {unknown}")
        self._labeler = labeler
        self._columns = [names.index(observation) for observation in OBSERVATIONS]
        self._n_names = len(names)
        self._progress = options.progress
        self.version = f"{_radeval_version()} F1CheXbert {LABEL_MODE} labels"

    def labels(self, texts: Sequence[str]) -> np.ndarray:
        from tqdm import tqdm

        batches = math.ceil(len(texts) / self._labeler.batch_size)
        with tqdm(total=batches, desc="CheXbert", unit="batch", disable=not self._progress) as bar:
            rows = self._labeler.get_labels(list(texts), mode=LABEL_MODE, on_batch_done=bar.update)
        labels = np.asarray(rows, dtype=float).reshape(len(texts), self._n_names)
        return labels[:, self._columns]


class SembScoreRunner:
    """RadEval's semantic_embedding_scores with one loaded CheXbert labeler."""

    corpus_dependent = False  # a study's score depends on its own pair only

    def __init__(self, labeler: Any, options: ScorerOptions) -> None:
        self._labeler = labeler
        self._options = options
        self.version = f"{_radeval_version()} semantic_embedding_scores CheXbert CLS cosine"

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        from tqdm import tqdm

        semb_score = importlib.import_module(SEMB_MODULE)
        size = self._labeler.batch_size
        scores = [np.zeros(0)]
        with (
            replaced(semb_score, "F1CheXbert", lambda device: self._labeler),
            tqdm(
                total=math.ceil(len(hypotheses) / size),
                desc=SEMB_METRIC,
                unit="batch",
                disable=not self._options.progress,
            ) as bar,
        ):
            for start in range(0, len(hypotheses), size):
                scores.append(
                    semb_score.semantic_embedding_scores(
                        list(references[start : start + size]),
                        list(hypotheses[start : start + size]),
                        device=self._options.device,
                    )
                )
                bar.update()
        return {SEMB_METRIC: np.concatenate(scores).astype(float)}


def load_labels(folder: Path, options: ScorerOptions) -> CheXbertLabelRunner:
    """The CheXbert labeler from `folder` (the hub cache)."""
    return CheXbertLabelRunner(load_labeler(folder, options), options)


def load_semb(folder: Path, options: ScorerOptions) -> SembScoreRunner:
    """The CheXbert labeler from `folder` (the hub cache), for its embeddings."""
    return SembScoreRunner(load_labeler(folder, options), options)


SCORERS: tuple[ScorerSpec, ...] = (
    ScorerSpec(
        name="chexbert",
        summary="CheXbert-F1: the 14 CheXpert observations CheXbert finds in the generated "
        "report against those in the reference (uncertain counted as positive)",
        package="RadEval (radeval.metrics.f1chexbert.F1CheXbert)",
        needs=NEEDS,
        metrics=LABEL_METRICS,
        parity_test="tests/evaluation/runners/test_chexbert.py",
        load=load_labels,
    ),
    ScorerSpec(
        name="sembscore",
        summary="SembScore: cosine similarity of the CheXbert embeddings of the generated "
        "report and the reference",
        package="RadEval (radeval.metrics.RadCliQv1.semb_score.semantic_embedding_scores)",
        needs=NEEDS,
        metrics=(SEMB_METRIC,),
        parity_test="tests/evaluation/runners/test_chexbert.py",
        load=load_semb,
    ),
)
