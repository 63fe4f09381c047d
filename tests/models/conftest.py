"""Fixtures of the model tests; the tiny models themselves are in tiny_models.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from tiny_models import train_tokenizer
from transformers import PreTrainedTokenizerBase


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE trained on a few report sentences."""
    return train_tokenizer()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; on a busy machine two threads can be 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
