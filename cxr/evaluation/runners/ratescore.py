"""RaTEScore (Zhao et al., 2024): an entity-aware score of a generated report against its
reference. A DeBERTa-v2 tagger finds the medical entities of each sentence (abnormality,
non-abnormality, disease, non-disease, anatomy), BioLORD-2023-C embeds each entity (the first
token's last hidden state), and each entity is matched to its most similar one on the other
side; the cosines, weighted by an affinity of the two entity types and down-weighted for a
negation mismatch, give a precision and a recall whose F1 is the study's score.

Computed by RadEval's `radeval.metrics.RaTEScore.scorer.RaTEScore`, the class RadEval's
"ratescore" metric adapter wraps, with the adapter's settings: the tagger
Angelakeke/RaTE-NER-Deberta (its config's id2label, B-/I- tags of the five entity types and
O), the encoder FremyCompany/BioLORD-2023-C (AutoModel), the "long" affinity matrix (a
constant of RadEval's scorer.py, not a hub file) and medspacy's sentence splitting. A study
whose generated or reference report has no entity scores 0.5 (`RaTEScore.compute_score`).
RadEval's corpus RaTEScore is the plain mean of the per-study scores (the adapter's
sum / len), which is what cxr reports.

What cxr sets around RadEval, and why:
- a report without a sentence (empty, blank, or only pieces shorter than 3 characters) is not
  passed to RaTEScore: its `sentence_split` drops such a report, so every later study's
  entities would be paired with the wrong report and the list of scores would come out short.
  Such a report has no entity, so its study gets the score RaTEScore gives a side without
  entities, 0.5;
- `ScorerOptions.batch_size` sentences are tagged at once (the adapter tags one at a time;
  batching changes only the padding);
- RaTEScore chooses between "cpu" and "cuda" itself, so it is loaded on the CPU and its two
  models are then moved to `ScorerOptions.device`;
- RaTEScore reports no progress for a study that scores 0.5, so the bar is completed after
  the call.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr.evaluation.hub_cache import HubFile
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec, ScorerUnavailable

NER_MODEL = "Angelakeke/RaTE-NER-Deberta"  # as RaTEScore's defaults spell them
ENTITY_ENCODER = "FremyCompany/BioLORD-2023-C"
AFFINITY = "long"  # the adapter's default affinity matrix
NO_ENTITY_SCORE = 0.5  # RaTEScore.compute_score's score when a side has no entity
METRIC = "RaTEScore"
NEEDS = (
    *(
        HubFile(NER_MODEL, filename)
        for filename in (
            "config.json",  # also id2label, the entity tags
            "model.safetensors",
            "tokenizer_config.json",
            "tokenizer.json",
            "spm.model",
            "special_tokens_map.json",
            "added_tokens.json",
        )
    ),
    *(
        HubFile(ENTITY_ENCODER, filename)
        for filename in (
            "config.json",
            "model.safetensors",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",  # the repo has no tokenizer.json: the tokenizer is built from this
        )
    ),
)


class RaTEScoreRunner:
    """RadEval's RaTEScore, loaded once, scoring report pairs."""

    corpus_dependent = False  # a study's score depends on its own pair only

    def __init__(self, options: ScorerOptions) -> None:
        import torch

        rate_score = _rate_score_class()
        self._scorer = rate_score(
            bert_model=NER_MODEL,
            eval_model=ENTITY_ENCODER,
            batch_size=options.batch_size,
            use_gpu=False,
            affinity_matrix=AFFINITY,
        )
        device = torch.device(options.device)
        self._scorer.model.to(device)
        self._scorer.eval_model.to(device)
        self._scorer.device = device
        self._progress = options.progress
        self._has_sentence: dict[str, bool] = {}
        self.version = (
            f"RadEval {importlib.metadata.version('RadEval')} {NER_MODEL} {ENTITY_ENCODER} "
            f"affinity {AFFINITY}"
        )

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        from tqdm import tqdm

        scores = np.full(len(hypotheses), NO_ENTITY_SCORE)
        scored = [
            i
            for i, (hypothesis, reference) in enumerate(zip(hypotheses, references, strict=True))
            if self._splits(hypothesis) and self._splits(reference)
        ]
        with tqdm(total=len(scored), desc=METRIC, disable=not self._progress) as bar:
            if scored:
                rate_scores, _, _ = self._scorer.compute_score(
                    candidate_list=[hypotheses[i] for i in scored],
                    reference_list=[references[i] for i in scored],
                    on_sample_done=bar.update,
                )
                scores[scored] = rate_scores
            bar.update(bar.total - bar.n)
        return {METRIC: scores}

    def _splits(self, text: str) -> bool:
        """Whether RaTEScore's sentence splitting keeps a sentence of `text`."""
        if text not in self._has_sentence:
            from radeval.metrics.RaTEScore.utils import sentence_split

            sentences, _ = sentence_split([text])
            self._has_sentence[text] = bool(sentences)
        return self._has_sentence[text]


def _rate_score_class() -> Any:
    """RadEval's RaTEScore class; importing it loads medspacy, hence spaCy."""
    try:
        from radeval.metrics.RaTEScore.scorer import RaTEScore
    except ValueError as error:  # a compiled spaCy dependency built for another numpy
        raise ScorerUnavailable(
            "RadEval's RaTEScore needs spaCy (through medspacy), which does not import here "
            f"({error}); on Python < 3.12 medspacy requires spacy < 3.8, whose thinc 8.2 "
            "needs numpy < 2"
        ) from error
    return RaTEScore


def load(folder: Path, options: ScorerOptions) -> RaTEScoreRunner:
    """The tagger and the entity encoder from `folder` (the hub cache)."""
    return RaTEScoreRunner(options)


SCORERS: tuple[ScorerSpec, ...] = (
    ScorerSpec(
        name="ratescore",
        summary="RaTEScore: similarity of the reports' medical entities (DeBERTa tagger, "
        "BioLORD embeddings), weighted by entity type and negation",
        package="RadEval (radeval.metrics.RaTEScore.scorer.RaTEScore)",
        needs=NEEDS,
        metrics=(METRIC,),
        parity_test="tests/evaluation/runners/test_ratescore.py",
        load=load,
    ),
)
