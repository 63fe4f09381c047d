"""cxr.models.decoding: no sentence written twice, no empty list item, inside `generate`."""

from __future__ import annotations

import re

import pytest
import torch
from tiny_models import tiny_decoder
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LogitsProcessor,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from cxr.models.config import DecoderKind
from cxr.models.decoders import CausalLMDecoder, CrossAttentionDecoder, TextDecoder, build_decoder
from cxr.models.decoding import (
    NoEmptyListItemLogitsProcessor,
    NoRepeatedSentenceLogitsProcessor,
    ReportVocabulary,
    sentence_constraints,
)

BANNED = float("-inf")


def ids_of(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> torch.Tensor:
    """Token ids of `texts` left-padded to one length, as generated rows are (the processors
    skip special tokens such as pad wherever they are)."""
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    return batch.input_ids


def banned_after(
    processor: LogitsProcessor, tokenizer: PreTrainedTokenizerBase, texts: list[str]
) -> list[set[str]]:
    """Per text, the decoded tokens the processor bans as the next token (eos as "</s>")."""
    scores = torch.zeros(len(texts), len(tokenizer))
    processed = processor(ids_of(tokenizer, texts), scores)
    assert torch.all((processed == 0) | (processed == BANNED))
    return [
        set(tokenizer.convert_ids_to_tokens(torch.nonzero(row == BANNED).flatten().tolist()))
        for row in processed
    ]


def token(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    (piece,) = tokenizer.tokenize(text)
    return piece


def sentences(text: str) -> list[str]:
    """The sentences a reader sees, compared without case and final dot (independent of
    cxr.models.decoding's own splitting)."""
    return [s.strip().rstrip(".").casefold() for s in re.split(r"(?<=[.!?])\s+", text) if s]


@pytest.fixture(scope="module")
def repeats(tokenizer: PreTrainedTokenizerBase) -> NoRepeatedSentenceLogitsProcessor:
    return NoRepeatedSentenceLogitsProcessor(ReportVocabulary.of(tokenizer))


@pytest.fixture(scope="module")
def list_items(tokenizer: PreTrainedTokenizerBase) -> NoEmptyListItemLogitsProcessor:
    return NoEmptyListItemLogitsProcessor(ReportVocabulary.of(tokenizer))


# --- the vocabulary ------------------------------------------------------------------------


def test_vocabulary_finds_the_end_marks_line_break_and_eos(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    vocabulary = ReportVocabulary.of(tokenizer)
    assert sorted(vocabulary.sentence_enders.values()) == ["\n", "!", ".", "?"]
    assert list(vocabulary.list_number_parts.values()) == ["."]
    assert vocabulary.eos_ids == (tokenizer.eos_token_id,)


# --- no sentence written twice -------------------------------------------------------------


def test_completing_an_earlier_sentence_is_banned_only_in_its_own_row(
    tokenizer: PreTrainedTokenizerBase, repeats: NoRepeatedSentenceLogitsProcessor
) -> None:
    repeated, different = banned_after(
        repeats,
        tokenizer,
        ["Lungs are clear. Lungs are clear", "Heart size is normal. Lungs are clear"],
    )
    # Every way to end the sentence here: an end mark, a line break, or the end of the report.
    assert repeated == {".", "!", "?", "\u010a", "</s>"}
    assert different == set()


def test_sentences_are_compared_without_header_list_number_case_or_spacing(
    tokenizer: PreTrainedTokenizerBase, repeats: NoRepeatedSentenceLogitsProcessor
) -> None:
    rows = banned_after(
        repeats,
        tokenizer,
        [
            "FINDINGS: Lungs are clear.\nIMPRESSION: lungs are  clear",
            "IMPRESSION: 1. No pneumothorax. 2. No pneumothorax",
            "Lungs are clear. Lungs are clear ",
        ],
    )
    assert all("." in banned for banned in rows)


def test_a_shared_phrase_is_not_banned_where_an_ngram_ban_would_be(
    tokenizer: PreTrainedTokenizerBase, repeats: NoRepeatedSentenceLogitsProcessor
) -> None:
    text = "There is a small effusion. There is a"
    (ours,) = banned_after(repeats, tokenizer, [text])
    ngrams = NoRepeatNGramLogitsProcessor(4)
    (hugging_face,) = banned_after(ngrams, tokenizer, [text])
    continuation = tokenizer.tokenize(text + " small")[len(tokenizer.tokenize(text))]
    assert ours == set()
    assert continuation in hugging_face
    # A different sentence that begins the same way may end.
    assert banned_after(repeats, tokenizer, [text + " small"]) == [set()]


def test_a_decimal_point_does_not_end_a_sentence(
    tokenizer: PreTrainedTokenizerBase, repeats: NoRepeatedSentenceLogitsProcessor
) -> None:
    # Had "4." after "ETT tip" ended a sentence, "ETT tip 4." would be a repeat.
    assert banned_after(repeats, tokenizer, ["ETT tip 4.5 cm above carina. ETT tip 4"]) == [set()]


def test_nothing_is_banned_before_the_first_sentence_is_complete(
    tokenizer: PreTrainedTokenizerBase, repeats: NoRepeatedSentenceLogitsProcessor
) -> None:
    scores = torch.zeros(2, len(tokenizer))
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert torch.equal(repeats(empty, scores), scores)
    assert banned_after(repeats, tokenizer, ["Lungs are clear. Lungs are clear."]) != [set()]
    assert banned_after(repeats, tokenizer, ["Lungs are clear"]) == [set()]


# --- no empty list item --------------------------------------------------------------------


def test_a_list_number_cannot_end_the_report_or_be_followed_by_another(
    tokenizer: PreTrainedTokenizerBase, list_items: NoEmptyListItemLogitsProcessor
) -> None:
    rows = banned_after(
        list_items,
        tokenizer,
        ["IMPRESSION: 1.", "IMPRESSION: 1. ", "IMPRESSION: 1. 2", "IMPRESSION:\n1. 12"],
    )
    assert rows == [{"</s>"}, {"</s>"}, {"."}, {"."}]


def test_numbers_that_are_not_empty_list_items_are_allowed(
    tokenizer: PreTrainedTokenizerBase, list_items: NoEmptyListItemLogitsProcessor
) -> None:
    rows = banned_after(
        list_items,
        tokenizer,
        [
            "IMPRESSION: 1. No effusion. 2",
            "IMPRESSION: 1. No",
            "ETT tip 4.5",
            "ETT tip at T4.",
            "Heart size is normal.",
        ],
    )
    assert rows == [set()] * 5


def test_a_list_number_far_back_in_a_long_report_is_read_from_its_tail(
    tokenizer: PreTrainedTokenizerBase, list_items: NoEmptyListItemLogitsProcessor
) -> None:
    findings = "FINDINGS: " + "Heart size is normal. " * 5 + "\nIMPRESSION: 1."
    assert banned_after(list_items, tokenizer, [findings]) == [{"</s>"}]
    # "T4." then 14 spaces: the last 16 tokens read "4." and spaces, but "4." is no list number.
    space = tokenizer.convert_tokens_to_ids(token(tokenizer, " "))
    row = tokenizer.encode("ETT tip at T4.", add_special_tokens=False) + [space] * 14
    assert tokenizer.decode(row[-16:]).startswith("4.")
    scores = torch.zeros(1, len(tokenizer))
    assert torch.equal(list_items(torch.tensor([row]), scores), scores)


# --- a tokenizer with whole words as tokens ------------------------------------------------


@pytest.fixture(scope="module")
def word_tokenizer() -> PreTrainedTokenizerFast:
    """Whole words with their punctuation are tokens ("clear.", "2."), unlike cxr's BPE."""
    words = ["<pad>", "<s>", "</s>", "<unk>", "IMPRESSION:", "1.", "2.", "Lungs", "are"]
    words += ["clear.", "clear", "Heart", "is", "normal."]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def test_end_marks_and_list_numbers_inside_word_tokens_are_found(
    word_tokenizer: PreTrainedTokenizerFast,
) -> None:
    repeats, list_items = sentence_constraints(word_tokenizer)
    rows = banned_after(repeats, word_tokenizer, ["Lungs are clear. Lungs are"])
    assert rows == [{"clear."}]
    rows = banned_after(list_items, word_tokenizer, ["IMPRESSION: 1.", "IMPRESSION: 1. Lungs"])
    assert rows == [{"</s>", "1.", "2."}, set()]


# --- inside generate -----------------------------------------------------------------------


class WritesScript(LogitsProcessor):
    """Makes a decoder write `script` token by token (then eos), wherever it stands: the
    stand-in for a trained model's preference. The random model decides what comes where
    the script's token is banned."""

    def __init__(self, script: list[int], eos_token_id: int) -> None:
        self.script = [*script, eos_token_id]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        step = min(input_ids.shape[1], len(self.script) - 1)
        return scores + 1000 * torch.nn.functional.one_hot(
            torch.tensor(self.script[step]), scores.shape[-1]
        )


class RecordsInputIds(LogitsProcessor):
    def __init__(self) -> None:
        self.calls: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        self.calls.append(input_ids.clone())
        return scores


def tiny_gpt2(tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=1,
        n_embd=32,
        n_head=2,
        n_positions=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval()


def generated_texts(
    decoder: TextDecoder, tokenizer: PreTrainedTokenizerBase, num_beams: int, max_new_tokens: int
) -> list[str]:
    """Reports of a two-study batch whose prompts differ in length (one is left-padded)."""
    prompt = ids_of(tokenizer, ["<s>", "<s>INDICATION: line placement."])
    torch.manual_seed(1)
    visual = torch.randn(2, 4, decoder.hidden_size)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=num_beams,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.no_grad():
        ids = decoder.generate_ids(
            decoder.embed(prompt), (prompt != tokenizer.pad_token_id).long(), visual, config
        )
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_a_model_that_repeats_a_sentence_does_not_under_the_constraints(
    tokenizer: PreTrainedTokenizerBase, num_beams: int
) -> None:
    script_text = "Lungs are clear. Lungs are clear. Heart size is normal."
    script = tokenizer.encode(script_text, add_special_tokens=False)
    writes = WritesScript(script, tokenizer.eos_token_id)
    language_model = tiny_gpt2(tokenizer)
    free = CausalLMDecoder(language_model, LogitsProcessorList([writes]))
    constrained = CausalLMDecoder(
        language_model, LogitsProcessorList([writes, *sentence_constraints(tokenizer)])
    )
    budget = len(script) + 4

    assert generated_texts(free, tokenizer, num_beams, budget) == [script_text] * 2
    for text in generated_texts(constrained, tokenizer, num_beams, budget):
        assert len(set(sentences(text))) == len(sentences(text)), text
        assert text.endswith(" Heart size is normal.")
        if num_beams == 1:
            # Greedy keeps the script up to the banned end of the repeat. Beam search may
            # instead change the first sentence, which loses the script just once too.
            assert text.startswith("Lungs are clear. Lungs are clear"), text
            assert len(sentences(text)) == 2, text


def test_a_model_that_writes_an_empty_list_item_does_not_under_the_constraints(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    script_text = "IMPRESSION: 1. 2. No pneumothorax."
    script = tokenizer.encode(script_text, add_special_tokens=False)
    writes = WritesScript(script, tokenizer.eos_token_id)
    language_model = tiny_gpt2(tokenizer)
    free = CausalLMDecoder(language_model, LogitsProcessorList([writes]))
    constrained = CausalLMDecoder(
        language_model, LogitsProcessorList([writes, *sentence_constraints(tokenizer)])
    )

    assert generated_texts(free, tokenizer, 1, len(script) + 4) == [script_text] * 2
    for text in generated_texts(constrained, tokenizer, 1, len(script) + 4):
        assert text.startswith("IMPRESSION: 1. 2")
        assert not re.search(r"\d\.\s+\d+\.", text), text
        assert text.endswith(" No pneumothorax.")


@pytest.mark.parametrize("kind", list(DecoderKind))
@pytest.mark.parametrize("num_beams", [1, 2])
def test_processors_see_only_the_report_being_generated(
    tokenizer: PreTrainedTokenizerBase, kind: DecoderKind, num_beams: int
) -> None:
    """With the prompt and visual tokens given as inputs_embeds, `generate` passes the
    processors the new tokens only: no column at the first step, one more at each next."""
    language_model = build_decoder(tiny_decoder(kind, layers=1), tokenizer).language_model
    records = RecordsInputIds()
    decoder_class = (
        CrossAttentionDecoder if kind == DecoderKind.cross_attention else CausalLMDecoder
    )
    decoder = decoder_class(language_model, LogitsProcessorList([records]))
    texts = generated_texts(decoder, tokenizer, num_beams, max_new_tokens=3)

    assert [tuple(ids.shape) for ids in records.calls] == [(2 * num_beams, n) for n in range(3)]
    assert len(texts) == 2


@pytest.mark.parametrize("kind", list(DecoderKind))
def test_build_decoder_constrains_decoding_as_the_config_says(
    tokenizer: PreTrainedTokenizerBase, kind: DecoderKind
) -> None:
    constrained = build_decoder(tiny_decoder(kind, layers=1), tokenizer)
    free = build_decoder(tiny_decoder(kind, layers=1, constrained_decoding=False), tokenizer)
    assert [type(p) for p in constrained.constraints] == [
        NoRepeatedSentenceLogitsProcessor,
        NoEmptyListItemLogitsProcessor,
    ]
    assert list(free.constraints) == []
