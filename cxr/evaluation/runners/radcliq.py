"""RadCliQ-v1 (Yu et al., 2023): a linear combination, fitted to radiologists' error counts, of
four per-study metrics of a generated report against its reference: RadGraph (entity F1 +
relation F1) / 2, BERTScore-F1, SembScore and BLEU-2, each standardised. Lower is better;
ReXrank ranks by 1 / (mean RadCliQ-v1), which cxr reports as `1/RadCliQ-v1`.

Computed by RadEval's `radeval.metrics.RadCliQv1.radcliq.CompositeMetric`, the class RadEval's
"radcliq" metric adapter wraps, whose `predict(refs, hyps)` gives the per-study scores and
1 / their mean, with the scaler and coefficients CXR-Report-Metric fitted (constants of that
module, not hub files). Its parts load from the hub: the "radgraph" model (StanfordAIMI/
RRG_scorers radgraph.tar.gz, as the radgraph runner loads it), CheXbert (as the chexbert
runner) and distilroberta-base for BERTScore.

Two conventions of the package, kept as they are:
- its BERTScore is NOT ReXrank's stand-alone BERTScore (the bertscore runner): it weights tokens
  by IDF computed from the references being scored (distilroberta-base, layer 5, rescaled).
  So a study's score depends on the whole reference corpus; the runner says so
  (`corpus_dependent`), and cxr caches its scores per reference corpus and scores the corpus
  whole. The bootstrap resamples studies with their scores from the full corpus, as
  CXR-Report-Metric's own per-study scores are;
- an empty report is scored as RadEval scores it: RadGraph reads it as "None".

What cxr sets around RadEval, and why:
- `CompositeMetric()` builds its CheXbert with the module's own `F1CheXbert(device=...)`, whose
  checkpoint path comes from a module constant; cxr hands it the labeler the chexbert runner
  loads from the weights folder, with ScorerOptions' device and batch size;
- RadGraph loads from the weights folder, on the device, as in the radgraph runner (by
  replacing the name `RadGraph` in the module while it loads);
- the BERTScorer is built lazily for the reference list it is given (keyed by the list's
  identity); cxr builds it first for the same list, moves it to the device, and passes that
  list to `predict`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr.evaluation.runners import bertscore, chexbert, radgraph, replaced
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec

log = logging.getLogger(__name__)

METRIC = "RadCliQ-v1"
RADCLIQ_MODULE = "radeval.metrics.RadCliQv1.radcliq"
RADGRAPH_MODEL = "radgraph"  # the model CompositeMetric builds
NEEDS = tuple(dict.fromkeys((*radgraph.needs(RADGRAPH_MODEL), *chexbert.NEEDS, *bertscore.NEEDS)))


class RadCliQRunner:
    """RadEval's CompositeMetric, loaded once, scoring a reference corpus and its reports."""

    corpus_dependent = True  # BERTScore's IDF weights come from the references scored

    def __init__(self, folder: Path, options: ScorerOptions) -> None:
        core = radgraph.vendored_core()  # before RadCliQv1, which imports the vendored radgraph
        radcliq = importlib.import_module(RADCLIQ_MODULE)
        labeler = chexbert.load_labeler(folder, options)
        model = functools.partial(core.RadGraph, **radgraph.radgraph_options(folder, options))
        with (
            replaced(radcliq, "RadGraph", model),
            replaced(radcliq, "F1CheXbert", lambda device: labeler),
        ):
            self._metric = radcliq.CompositeMetric()
        self._device = options.device
        self.version = (
            f"RadEval {importlib.metadata.version('RadEval')} CompositeMetric "
            f"{RADGRAPH_MODEL} BERTScore-idf BLEU-2"
        )

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        refs = list(references)
        log.info("RadCliQ-v1: scoring %d studies", len(refs))
        bertscore.move_to(self._bert_scorer(refs), self._device)
        _, scores = self._metric.predict(refs, list(hypotheses))
        return {METRIC: np.asarray(scores, dtype=float)}

    def _bert_scorer(self, refs: list[str]) -> Any:
        """CompositeMetric's BERTScorer for `refs` (built now; `predict` reuses it)."""
        return self._metric._get_bert_scorer(refs)


def load(folder: Path, options: ScorerOptions) -> RadCliQRunner:
    """RadGraph, CheXbert and distilroberta-base from `folder` (the hub cache)."""
    return RadCliQRunner(folder, options)


SCORERS: tuple[ScorerSpec, ...] = (
    ScorerSpec(
        name="radcliq",
        summary="RadCliQ-v1: CXR-Report-Metric's fitted combination of RadGraph, BERTScore "
        "(IDF from the references), SembScore and BLEU-2; lower is better, ReXrank ranks by "
        "1/RadCliQ-v1",
        package="RadEval (radeval.metrics.RadCliQv1.radcliq.CompositeMetric)",
        needs=NEEDS,
        metrics=(METRIC,),
        parity_test="tests/evaluation/runners/test_radcliq.py",
        load=load,
        reciprocals=(METRIC,),
    ),
)
