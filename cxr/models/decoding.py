"""Decoding constraints on the report text: no sentence written twice, no empty list item.

Two defects of generated reports are ruled out while decoding, so that no report can hold
them whatever the model's weights or decoding settings (greedy, beam search, sampling):

- **No sentence written twice.** A token that would complete a sentence equal to an earlier
  complete sentence of the same report gets the score -inf. A sentence ends at ".", "!" or
  "?" followed by whitespace (so "4.5 cm" does not end one), at a line break, or at the end
  of the text. Sentences are compared as text, after dropping a section header
  ("FINDINGS:", "IMPRESSION:") and a list number, case, extra whitespace and the final
  punctuation. They are not compared as token ids because BPE splits the same sentence
  differently depending on what comes before it (" Lungs" after ". ", "Lungs" after a line
  break). The banned tokens are every token whose text ends with one of those marks (".",
  " clear.", ")." ...), every token that holds a line break, and eos.
- **No empty list item.** Directly after a list number ("1.", however the tokenizer splits
  digits and dot), neither eos nor the token that would complete another list number
  ("1. 2.") may follow. A sentence that ends in a bare number ("the tip is at 4.") looks
  like a list number too, so it cannot be the report's last; the model writes on.

Why here and not by cleaning the text afterwards: a cleaned report is no longer the text the
model scored, and deleting a sentence or a number can leave the rest wrong ("2." with no
"1.", an impression without its finding). Under the constraints the model's next best
continuation is chosen instead, and the text it writes is the text it scored. Hugging Face's
`NoRepeatNGramLogitsProcessor` is not enough: an n-gram ban large enough to stop a repeated
sentence also bans phrases that reports rightly repeat across sentences ("There is a",
"No evidence of", "is in standard position"). An n-gram ban also ignores sentence
boundaries, and it cannot tell an empty list item from a full one.

The processors are Hugging Face `LogitsProcessor`s; `sentence_constraints` builds both for
a tokenizer, and `cxr.models.decoders` passes them to `generate` when
`DecoderConfig.constrained_decoding` is true. They read `input_ids` as the report generated
so far, one row per sequence (per beam in beam search). That is what `generate` passes when
the prompt and the visual tokens are given as `inputs_embeds`, as cxr's decoders do: the
first call sees zero columns. They keep no state between calls, so one instance serves
every call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerBase

from cxr.data.reports import FINDINGS_HEADER, IMPRESSION_HEADER

SENTENCE_END_MARKS = ".!?"

# A sentence boundary: an end mark followed by whitespace, or a line break.
_BOUNDARY = re.compile(rf"(?<=[{re.escape(SENTENCE_END_MARKS)}])\s+|\s*\n\s*")
_HEADER = re.compile(
    rf"^(?:{re.escape(FINDINGS_HEADER)}|{re.escape(IMPRESSION_HEADER)})\s*", re.IGNORECASE
)
_LEADING_LIST_NUMBER = re.compile(r"^\d+\.(?:\s+|$)")
# A list number is digits and a dot at the start of the text, after whitespace or a colon.
_LIST_NUMBER_AT_END = re.compile(r"(?:^|[\s:])\d+\.\s*$")
_LIST_NUMBER_THEN_DIGITS = re.compile(r"(?:^|[\s:])\d+\.\s*\d*$")
_TWO_LIST_NUMBERS_AT_END = re.compile(r"(?:^|[\s:])\d+\.\s+\d+\.\s*$")
_LIST_NUMBER_PART = re.compile(r"\s*\d*\.\s*")
# Tokens read back to find a list number before the next token: enough for "12. 3" split
# into single characters with whitespace tokens between them.
_LIST_TAIL_TOKENS = 16
# Put before a tail cut from a longer text, so that the cut is not taken for its start.
_CUT = "\x00"


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` in order; the last is the one still being written (it may be
    "" when the text ends at a boundary)."""
    return _BOUNDARY.split(text)


def normalize_sentence(sentence: str) -> str:
    """What a sentence is compared by: without a section header, a leading list number, case,
    repeated whitespace and final punctuation ("" for a header or a list number alone)."""
    text = " ".join(sentence.split())
    text = _HEADER.sub("", text)
    text = _LEADING_LIST_NUMBER.sub("", text)
    return text.rstrip(SENTENCE_END_MARKS + " ").casefold()


@dataclass(frozen=True)
class ReportVocabulary:
    """The tokens of a tokenizer the constraints act on, found from their decoded text.

    Attributes:
        tokenizer: Decodes the generated ids, as `ReportModel.generate` does.
        sentence_enders: Text of every token that can complete a sentence: its text ends
            with an end mark or holds a line break (eos is in `eos_ids`).
        joined_sentence_enders: The ids of `sentence_enders` whose text itself holds a
            boundary (". Lungs."), which may complete a sentence whatever came before.
        list_number_parts: Text of every token that can complete a list number: digits or
            nothing, then a dot (".", "2.", " 2.").
        eos_ids: The tokenizer's end-of-sequence id(s).
    """

    tokenizer: PreTrainedTokenizerBase
    sentence_enders: dict[int, str]
    joined_sentence_enders: frozenset[int]
    list_number_parts: dict[int, str]
    eos_ids: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> ReportVocabulary:
        texts = _token_texts(tokenizer)
        enders = {
            token_id: text
            for token_id, text in enumerate(texts)
            if text.rstrip().endswith(tuple(SENTENCE_END_MARKS)) or "\n" in text
        }
        joined = frozenset(
            token_id for token_id, text in enders.items() if _BOUNDARY.search(text.strip())
        )
        parts = {
            token_id: text
            for token_id, text in enumerate(texts)
            if _LIST_NUMBER_PART.fullmatch(text)
        }
        eos = tokenizer.eos_token_id
        eos_ids = () if eos is None else tuple(eos) if isinstance(eos, list) else (int(eos),)
        return cls(tokenizer, enders, joined, parts, eos_ids)

    def decode(self, rows: Iterable[list[int]]) -> list[str]:
        """The texts of token id rows, special tokens (eos, pad) left out."""
        return self.tokenizer.batch_decode(list(rows), skip_special_tokens=True)


def _token_texts(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Each token's text as it reads after another token, with its leading space.

    Decoding a token alone drops that space in SentencePiece tokenizers, so every token is
    decoded after an anchor token and the anchor's own text is cut off.
    """
    ids = range(len(tokenizer))
    alone = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=True)
    anchor = _anchor(tokenizer, alone)
    if anchor is None:
        return alone
    anchor_text = alone[anchor]
    after_anchor = tokenizer.batch_decode([[anchor, i] for i in ids], skip_special_tokens=True)
    return [
        pair[len(anchor_text) :] if pair.startswith(anchor_text) else single
        for pair, single in zip(after_anchor, alone, strict=True)
    ]


def _anchor(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> int | None:
    """A token that is a plain word (not special, not unknown): "a" if the vocabulary has it."""
    special = set(tokenizer.all_special_ids)
    preferred = tokenizer.encode("a", add_special_tokens=False)
    for token_id in [*preferred, *range(len(texts))]:
        if token_id not in special and texts[token_id].isalnum():
            return token_id
    return None


def _banned(scores: torch.Tensor, bans: list[tuple[int, int]]) -> torch.Tensor:
    """`scores` with -inf at each (row, token id) of `bans`."""
    # Ids past the scores' width are tokens the model cannot write.
    bans = [(row, token_id) for row, token_id in bans if token_id < scores.shape[-1]]
    if not bans:
        return scores
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[tuple(torch.tensor(bans, device=scores.device).T)] = True
    return scores.masked_fill(mask, float("-inf"))


class NoRepeatedSentenceLogitsProcessor(LogitsProcessor):
    """Bans the tokens that would complete a sentence the report already holds.

    Args:
        vocabulary: The tokenizer's sentence-ending tokens (`ReportVocabulary.of`).
    """

    def __init__(self, vocabulary: ReportVocabulary) -> None:
        self.vocabulary = vocabulary

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        texts = self.vocabulary.decode(input_ids.tolist())
        bans = [
            (row, token_id) for row, text in enumerate(texts) for token_id in self._repeating(text)
        ]
        return _banned(scores, bans)

    def _repeating(self, text: str) -> list[int]:
        """Ids of the tokens that, written after `text`, would repeat one of its sentences."""
        *complete, partial = split_sentences(text)
        earlier = {normalize_sentence(sentence) for sentence in complete} - {""}
        if not earlier:
            return []
        vocabulary = self.vocabulary
        repeating = [eos for eos in vocabulary.eos_ids if normalize_sentence(partial) in earlier]
        # A token can only complete an earlier sentence if the sentence begins with what is
        # written of it (or, after an end mark, the token may start a sentence of its own).
        stems = {normalize_sentence(partial)}
        if partial.rstrip().endswith(tuple(SENTENCE_END_MARKS)):
            stems.add("")
        if any(sentence.startswith(stem) for sentence in earlier for stem in stems):
            candidates: Iterable[int] = vocabulary.sentence_enders
        else:
            candidates = vocabulary.joined_sentence_enders
        for token_id in candidates:
            written = split_sentences(partial + vocabulary.sentence_enders[token_id])
            if any(normalize_sentence(sentence) in earlier for sentence in written):
                repeating.append(token_id)
        return repeating


class NoEmptyListItemLogitsProcessor(LogitsProcessor):
    """After a list number, bans eos and the tokens that would complete another list number.

    Args:
        vocabulary: The tokenizer's list-number and eos tokens (`ReportVocabulary.of`).
    """

    def __init__(self, vocabulary: ReportVocabulary) -> None:
        self.vocabulary = vocabulary

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        rows = input_ids.tolist()
        tails = self.vocabulary.decode(row[-_LIST_TAIL_TOKENS:] for row in rows)
        bans: list[tuple[int, int]] = []
        for row, (ids, tail) in enumerate(zip(rows, tails, strict=True)):
            if len(ids) > _LIST_TAIL_TOKENS:
                tail = _CUT + tail
            bans.extend((row, token_id) for token_id in self._emptying(tail))
        return _banned(scores, bans)

    def _emptying(self, tail: str) -> list[int]:
        """Ids of the tokens that, written after `tail`, would leave a list item empty."""
        if not _LIST_NUMBER_THEN_DIGITS.search(tail):
            return []
        vocabulary = self.vocabulary
        emptying = list(vocabulary.eos_ids) if _LIST_NUMBER_AT_END.search(tail) else []
        emptying.extend(
            token_id
            for token_id, text in vocabulary.list_number_parts.items()
            if _TWO_LIST_NUMBERS_AT_END.search(tail + text)
        )
        return emptying


def sentence_constraints(tokenizer: PreTrainedTokenizerBase) -> LogitsProcessorList:
    """The decoding constraints of cxr reports for `tokenizer`: no sentence written twice, no
    empty list item. Built once per tokenizer (it decodes the whole vocabulary)."""
    vocabulary = ReportVocabulary.of(tokenizer)
    return LogitsProcessorList(
        [NoRepeatedSentenceLogitsProcessor(vocabulary), NoEmptyListItemLogitsProcessor(vocabulary)]
    )
