"""Report tokenizers: a byte-level BPE trained on the training reports, or a local HF tokenizer.

The tokenizer adds no special tokens on its own when encoding: callers put eos after a
report (and a bos-like start in the prompt) themselves, so training and generation see
exactly the same sequences.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from cxr.errors import InputError

log = logging.getLogger(__name__)

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)


def train_report_tokenizer(
    texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Trains a byte-level BPE on report texts.

    Byte-level means every text encodes (no unknown characters); the special tokens
    <pad>, <s>, </s>, <unk> take ids 0-3.

    Args:
        texts: Report texts (findings and impressions) of the training split only.
        vocab_size: Size of the vocabulary, special tokens and the 256 bytes included.
        min_frequency: Pairs seen fewer times are not merged.
    """
    backend = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
    )
    log.info("trained a byte-level BPE of %d tokens", len(tokenizer))
    return tokenizer


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Loads a Hugging Face tokenizer from a local folder; adds pad/eos tokens it lacks and
    takes its eos token as bos when it has none.

    Args:
        path: Folder written by `save_pretrained` (or of a downloaded model).
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "tokenizer folder not found")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot load a tokenizer: {error}") from error
    missing: dict[str, Any] = {
        name: token
        for name, token in (("pad_token", PAD_TOKEN), ("eos_token", EOS_TOKEN))
        if getattr(tokenizer, name) is None
    }
    if missing:
        tokenizer.add_special_tokens(missing)
        log.info("tokenizer %s: added %s", path, ", ".join(missing))
    if tokenizer.bos_token is None:
        # Prompts start with bos. A tokenizer without one (Qwen's) starts them with its eos,
        # as GPT-2's does, rather than with a new token the model never saw.
        tokenizer.add_special_tokens({"bos_token": tokenizer.eos_token})
        log.info("tokenizer %s: bos is its eos token %s", path, tokenizer.eos_token)
    return tokenizer
