"""Natural-language generation metrics, computed by pycocoevalcap's own scorers.

Both texts go through `tokenize_report` first (pycocoevalcap's PTBTokenizer needs Java and is
not used). The point estimates are the values returned by pycocoevalcap's `Bleu(4)`, `Rouge`,
`Cider` and `Meteor` classes on the tokenized texts, one reference per study.

For bootstrap intervals every metric is also recomputed from per-study sufficient statistics
under integer study weights (how often each study is drawn in a resample), which reproduces
the corpus-level definitions exactly:

- BLEU-n: the corpus counts (hypothesis length, closest reference length, n-gram guesses and
  clipped matches) are weighted sums of the per-study counts, combined by the same formula as
  pycocoevalcap's `BleuScorer` (including its `tiny`/`small` constants and brevity penalty).
- ROUGE-L: pycocoevalcap averages per-study scores, so the weighted mean is exact.
- CIDEr (pycocoevalcap's `Cider`, which is CIDEr-D: clipped tf-idf and a Gaussian length
  penalty with sigma 6): the document frequencies and log corpus size are recomputed for every
  resample (a study drawn twice counts twice, as its duplicate would in pycocoevalcap).
- METEOR: the Meteor 1.5 jar aggregates a corpus by summing per-segment statistics, so each
  resample's score is the jar's own `EVAL` of the weighted sum of the per-study statistics.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from scipy import sparse

from cxr.evaluation.metric_keys import BLEU, BLEU_4, CIDER, METEOR, ROUGE_L

if TYPE_CHECKING:
    from pycocoevalcap.meteor.meteor import Meteor

log = logging.getLogger(__name__)

_ENUMERATION = re.compile(r"(^|\s)\d{1,2}[.)]\s")
_JOINING = re.compile(r"['\-/\\\"]")
_TOKEN = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+|\.")
_NGRAM_ORDER = 4
_CIDER_SIGMA = 6.0
# pycocoevalcap's BleuScorer constants.
_BLEU_TINY = 1e-15
_BLEU_SMALL = 1e-9


def tokenize_report(text: str) -> str:
    """Lower-cased, space-separated tokens of a report, in the R2Gen style used by the field.

    Steps: lower-case; drop list numbering ("1. ", "2) "); delete apostrophes, hyphens,
    slashes, backslashes and double quotes (so "x-ray" -> "xray", as R2Gen's cleaning does);
    keep decimal numbers whole ("2.5"); every other period becomes the token "." and repeated
    periods collapse to one; all other punctuation is dropped. Empty text gives "".
    """
    lowered = _ENUMERATION.sub(r"\1", text.lower())
    tokens = _TOKEN.findall(_JOINING.sub("", lowered))
    collapsed = [t for i, t in enumerate(tokens) if t != "." or i == 0 or tokens[i - 1] != "."]
    if collapsed[:1] == ["."]:
        collapsed = collapsed[1:]
    return " ".join(collapsed)


def java_available() -> bool:
    """Whether METEOR (a Java program) can run here."""
    return shutil.which("java") is not None


def _as_coco(texts: Sequence[str]) -> dict[str, list[str]]:
    return {str(i): [t] for i, t in enumerate(texts)}


def nlg_scores(
    hypotheses: Sequence[str], references: Sequence[str], meteor: bool | None = None
) -> dict[str, float]:
    """Corpus metrics of tokenized hypotheses against one tokenized reference each.

    Args:
        hypotheses: tokenized generated texts (see `tokenize_report`), one per study.
        references: tokenized reference texts, aligned with `hypotheses`.
        meteor: compute METEOR; None means "when java is on PATH". METEOR is absent from the
            result when not computed.
    """
    if not hypotheses:
        return {}
    gts, res = _as_coco(references), _as_coco(hypotheses)
    bleu, _ = Bleu(_NGRAM_ORDER).compute_score(gts, res, verbose=0)
    scores = dict(zip(BLEU, (float(b) for b in bleu), strict=True))
    scores[ROUGE_L] = float(Rouge().compute_score(gts, res)[0])
    scores[CIDER] = float(Cider().compute_score(gts, res)[0])
    if meteor or (meteor is None and java_available()):
        scores[METEOR] = float(shared_meteor().compute_score(gts, res)[0])
    return scores


def per_study_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """pycocoevalcap's own per-study ROUGE-L and BLEU-4 of tokenized texts (BLEU-4 of one
    study is sentence-level, often 0); a study with an empty text (which pycocoevalcap's
    scorers reject) scores 0."""
    rouge, bleu = np.zeros(len(hypotheses)), np.zeros(len(hypotheses))
    scored = [i for i, (h, r) in enumerate(zip(hypotheses, references, strict=True)) if h and r]
    if scored:
        gts = _as_coco([references[i] for i in scored])
        res = _as_coco([hypotheses[i] for i in scored])
        rouge[scored] = Rouge().compute_score(gts, res)[1]
        bleu[scored] = Bleu(_NGRAM_ORDER).compute_score(gts, res, verbose=0)[1][3]
    return {ROUGE_L: rouge, BLEU_4: bleu}


@functools.lru_cache(maxsize=1)
def shared_meteor() -> Meteor:
    """One running Meteor 1.5 jar (pycocoevalcap's `Meteor`) per process; starting it takes seconds."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def _ngrams(tokens: list[str], order: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + order]) for i in range(len(tokens) - order + 1))


@dataclass
class _CiderStatistics:
    """Sparse per-study terms of pycocoevalcap's CIDEr-D, one set per n-gram order."""

    reference_presence: sparse.csr_matrix  # studies x ngrams, 1 where the reference has it
    matches: list[sparse.csr_matrix]  # per order: min(tf_hyp, tf_ref) * tf_ref
    hypothesis_squares: list[sparse.csr_matrix]  # per order: tf_hyp ** 2
    reference_squares: list[sparse.csr_matrix]  # per order: tf_ref ** 2
    length_penalty: np.ndarray  # studies: exp(-(len_hyp - len_ref)^2 / (2 sigma^2))


def _cider_statistics(hypotheses: list[list[str]], references: list[list[str]]) -> _CiderStatistics:
    vocabulary: dict[tuple[str, ...], int] = {}
    rows: dict[str, list[list[tuple[int, int, float]]]] = {
        key: [[] for _ in range(_NGRAM_ORDER)] for key in ("match", "hyp", "ref")
    }
    presence: list[tuple[int, int]] = []
    for study, (hyp, ref) in enumerate(zip(hypotheses, references, strict=True)):
        for order in range(1, _NGRAM_ORDER + 1):
            hyp_counts, ref_counts = _ngrams(hyp, order), _ngrams(ref, order)
            for gram in hyp_counts.keys() | ref_counts.keys():
                column = vocabulary.setdefault(gram, len(vocabulary))
                h, r = hyp_counts.get(gram, 0), ref_counts.get(gram, 0)
                rows["match"][order - 1].append((study, column, min(h, r) * r))
                rows["hyp"][order - 1].append((study, column, h * h))
                rows["ref"][order - 1].append((study, column, r * r))
                if r:
                    presence.append((study, column))
    shape = (len(hypotheses), len(vocabulary))

    def build(entries: list[tuple[int, int, float]]) -> sparse.csr_matrix:
        if not entries:
            return sparse.csr_matrix(shape)
        r, c, v = zip(*entries, strict=True)
        return sparse.csr_matrix((np.asarray(v, float), (r, c)), shape=shape)

    # pycocoevalcap's CIDEr measures a text's length by its number of bigrams.
    lengths = np.array(
        [
            max(0, len(h) - 1) - max(0, len(r) - 1)
            for h, r in zip(hypotheses, references, strict=True)
        ],
        float,
    )
    return _CiderStatistics(
        reference_presence=build([(s, c, 1.0) for s, c in presence]),
        matches=[build(e) for e in rows["match"]],
        hypothesis_squares=[build(e) for e in rows["hyp"]],
        reference_squares=[build(e) for e in rows["ref"]],
        length_penalty=np.exp(-(lengths**2) / (2 * _CIDER_SIGMA**2)),
    )


def _bleu_statistics(hypotheses: list[list[str]], references: list[list[str]]) -> np.ndarray:
    """Per study: [hyp length, ref length, guesses 1..4, clipped matches 1..4]."""
    stats = np.zeros((len(hypotheses), 2 + 2 * _NGRAM_ORDER))
    for study, (hyp, ref) in enumerate(zip(hypotheses, references, strict=True)):
        stats[study, 0], stats[study, 1] = len(hyp), len(ref)
        for order in range(1, _NGRAM_ORDER + 1):
            hyp_counts, ref_counts = _ngrams(hyp, order), _ngrams(ref, order)
            stats[study, 1 + order] = max(0, len(hyp) - order + 1)
            stats[study, 1 + _NGRAM_ORDER + order] = sum(
                min(c, ref_counts.get(g, 0)) for g, c in hyp_counts.items()
            )
    return stats


def _rouge_scores(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    _, per_study = Rouge().compute_score(_as_coco(references), _as_coco(hypotheses))
    return np.asarray(per_study, float)


class NlgStatistics:
    """Per-study sufficient statistics of the NLG metrics, for weighted (bootstrap) recomputation.

    `official` holds `nlg_scores` of the texts (pycocoevalcap's own output); `scores(weights)`
    recomputes every metric for each row of study multiplicities, and `scores(np.ones((1, n)))`
    equals `official` to rounding (tests/evaluation/test_nlg.py checks 1e-9).
    """

    def __init__(
        self, hypotheses: Sequence[str], references: Sequence[str], meteor: bool | None = None
    ) -> None:
        """Args:
        hypotheses: tokenized generated texts, one per study.
        references: tokenized reference texts, aligned with `hypotheses`.
        meteor: include METEOR; None means "when java is on PATH".
        """
        hyp_tokens = [h.split() for h in hypotheses]
        ref_tokens = [r.split() for r in references]
        self.n_studies = len(hyp_tokens)
        self._bleu = _bleu_statistics(hyp_tokens, ref_tokens)
        self._rouge = _rouge_scores(hypotheses, references)
        self._cider = _cider_statistics(hyp_tokens, ref_tokens)
        self._meteor: MeteorStatistics | None = None
        use_meteor = bool(meteor or (meteor is None and java_available()))
        if use_meteor:
            self._meteor = MeteorStatistics(hypotheses, references)
        self.official = nlg_scores(hypotheses, references, meteor=use_meteor)
        """The point values as pycocoevalcap's scorer classes return them."""

    def scores(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric per row of `weights` (resamples x studies, study multiplicities)."""
        weights = np.atleast_2d(np.asarray(weights, float))
        result = self._bleu_scores(weights)
        result[ROUGE_L] = weights @ self._rouge / weights.sum(axis=1)
        result[CIDER] = self._cider_scores(weights)
        if self._meteor is not None:
            result[METEOR] = self._meteor.scores(weights)
        return result

    def _bleu_scores(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        totals = weights @ self._bleu
        test_length, ref_length = totals[:, 0], totals[:, 1]
        guesses, matches = totals[:, 2 : 2 + _NGRAM_ORDER], totals[:, 2 + _NGRAM_ORDER :]
        precisions = np.cumprod((matches + _BLEU_TINY) / (guesses + _BLEU_SMALL), axis=1)
        bleu = precisions ** (1.0 / np.arange(1, _NGRAM_ORDER + 1))
        ratio = (test_length + _BLEU_TINY) / (ref_length + _BLEU_SMALL)
        with np.errstate(divide="ignore", over="ignore"):
            penalty = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
        bleu = bleu * penalty[:, None]
        return {name: bleu[:, k] for k, name in enumerate(BLEU)}

    def _cider_scores(self, weights: np.ndarray, chunk: int = 64) -> np.ndarray:
        stats = self._cider
        out = np.empty(len(weights))
        for start in range(0, len(weights), chunk):
            block = weights[start : start + chunk]  # b x studies
            n_corpus = block.sum(axis=1)  # b
            document_frequency = stats.reference_presence.T @ block.T  # ngrams x b
            idf = np.log(n_corpus)[None, :] - np.log(np.maximum(1.0, document_frequency))
            idf_squared = idf**2
            per_study = np.zeros((self.n_studies, len(block)))
            for order in range(_NGRAM_ORDER):
                numerator = stats.matches[order] @ idf_squared
                norm = np.sqrt(stats.hypothesis_squares[order] @ idf_squared) * np.sqrt(
                    stats.reference_squares[order] @ idf_squared
                )
                safe = np.where(norm != 0, norm, 1.0)
                per_study += numerator / safe
            per_study *= stats.length_penalty[:, None] * (10.0 / _NGRAM_ORDER)
            out[start : start + chunk] = np.einsum("bs,sb->b", block, per_study) / n_corpus
        return out


def _without_perfect_chunks(statistics: np.ndarray) -> np.ndarray:
    """Zeroes the chunk count of segments matched completely in one chunk.

    The jar adds up segments' statistics but counts no chunk for such a segment (it carries no
    fragmentation penalty); found by comparing summed statistics with the jar's EVAL of the
    segments themselves, and kept under test (tests/evaluation/test_nlg.py).
    """
    if statistics.size == 0:
        return statistics
    test_length, ref_length = statistics[:, 0], statistics[:, 1]
    chunks, test_matched, ref_matched = statistics[:, 20], statistics[:, 21], statistics[:, 22]
    perfect = (chunks == 1) & (test_matched == test_length) & (ref_matched == ref_length)
    adjusted = statistics.copy()
    adjusted[perfect, 20] = 0.0
    return adjusted


class MeteorStatistics:
    """Per-study Meteor 1.5 statistics, aggregated by the jar itself for any study weights.

    Uses the running jar of pycocoevalcap's `Meteor` class: its `_stat` gives a study's
    statistics line (23 numbers: lengths, function words, matches per stage, chunks, matched
    words), and an `EVAL` line with the weighted sum of those statistics gives the corpus
    score, which is how the jar aggregates a corpus (see `_without_perfect_chunks`).
    """

    def __init__(self, hypotheses: Sequence[str], references: Sequence[str]) -> None:
        self._meteor = shared_meteor()
        with self._meteor.lock:
            lines = [
                self._meteor._stat(h, [r]) for h, r in zip(hypotheses, references, strict=True)
            ]
        statistics = np.array([[float(v) for v in line.split()] for line in lines])
        self.statistics = _without_perfect_chunks(statistics.reshape(len(lines), -1))

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """Corpus METEOR per row of study multiplicities."""
        totals = np.atleast_2d(weights) @ self.statistics
        process = self._meteor.meteor_p
        assert process.stdin is not None and process.stdout is not None
        out = np.empty(len(totals))
        with self._meteor.lock:
            for b, row in enumerate(totals):
                line = "EVAL ||| " + " ".join(repr(float(v)) for v in row)
                process.stdin.write(f"{line}\n".encode())
                process.stdin.flush()
                process.stdout.readline()  # the single segment's score
                out[b] = float(process.stdout.readline().strip())
        return out
