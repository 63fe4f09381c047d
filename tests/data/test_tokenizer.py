"""Report tokenizer: byte-level BPE training, save/load round trip, pad added when missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from cxr.data.tokenizer import load_tokenizer, train_report_tokenizer
from cxr.errors import InputError

REPORTS = [
    "Endotracheal tube tip 4 cm above the carina.",
    "No pneumothorax. Small left pleural effusion.",
    "Heart size is normal. Lungs are clear.",
] * 10


def test_trained_tokenizer_has_special_tokens_and_vocabulary_size() -> None:
    tokenizer = train_report_tokenizer(REPORTS, vocab_size=300)

    assert len(tokenizer) == 300
    assert [
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.unk_token_id,
    ] == [0, 1, 2, 3]
    assert tokenizer("Lungs are clear.").input_ids[-1] != tokenizer.eos_token_id  # callers add eos


def test_frequent_words_become_single_tokens() -> None:
    tokenizer = train_report_tokenizer(REPORTS, vocab_size=400)

    # Byte-level BPE keeps the leading space with the word, as in the reports.
    assert len(tokenizer("No pneumothorax.").input_ids) <= 3
    assert len(tokenizer("No pneumothorax.").input_ids) < len(tokenizer("Xq zvbwkjyfgh.").input_ids)


@pytest.mark.parametrize(
    "text", ["Lungs are clear.", "Unseen: µ-opacity, 5 mm → 7 mm.\nSecond line."]
)
def test_any_text_round_trips(text: str) -> None:
    tokenizer = train_report_tokenizer(REPORTS, vocab_size=300)

    ids = tokenizer(text).input_ids

    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_special_tokens_in_text_are_single_ids_and_skipped_when_decoding() -> None:
    tokenizer = train_report_tokenizer(REPORTS, vocab_size=300)

    ids = tokenizer("<s>Lungs are clear.</s>").input_ids

    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Lungs are clear."


def test_save_and_load_give_the_same_encoding(tmp_path: Path) -> None:
    tokenizer = train_report_tokenizer(REPORTS, vocab_size=300)
    tokenizer.save_pretrained(tmp_path / "tokenizer")

    loaded = load_tokenizer(tmp_path / "tokenizer")

    text = "Small left pleural effusion, no pneumothorax."
    assert loaded(text).input_ids == tokenizer(text).input_ids
    assert loaded.pad_token_id == tokenizer.pad_token_id
    assert len(loaded) == len(tokenizer)


def test_load_adds_a_pad_token_when_missing(tmp_path: Path) -> None:
    trained = train_report_tokenizer(REPORTS, vocab_size=300)
    without_pad = PreTrainedTokenizerFast(
        tokenizer_object=trained.backend_tokenizer, eos_token="</s>"
    )
    without_pad.save_pretrained(tmp_path / "tokenizer")

    loaded = load_tokenizer(tmp_path / "tokenizer")

    assert loaded.pad_token is not None
    assert loaded.pad_token_id != loaded.eos_token_id


def test_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="tokenizer folder not found"):
        load_tokenizer(tmp_path / "absent")
