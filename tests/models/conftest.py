"""Fixtures of the model tests; the tiny models themselves are in tiny_models.py."""

from __future__ import annotations

import pytest
from tiny_models import train_tokenizer
from transformers import PreTrainedTokenizerBase


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE trained on a few report sentences."""
    return train_tokenizer()
