"""Tiny scorer weights written as a Hugging Face hub cache, the layout `hf download
--cache-dir` writes, so the scorer packages' own loading code finds them; and the evaluation
the parity tests run on their reports."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from cxr.evaluation.evaluate import Evaluation
    from cxr.evaluation.scorers import ModelScorers

COMMIT = "0" * 40


def snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of `repo_id` in `cache` (created, with refs/main)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    folder = repo / "snapshots" / COMMIT
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_to_hub_cache(cache: Path, repo_id: str, save: Callable[[Path], object]) -> Path:
    """Calls `save(folder)` (e.g. `model.save_pretrained`) into the snapshot of `repo_id`."""
    folder = snapshot(cache, repo_id)
    save(folder)
    return folder


def save_tiny_chexbert(cache: Path, texts: Sequence[str], seed: int) -> None:
    """A tiny random CheXbert in RadEval's format: "bert-base-uncased"'s config and a WordPiece
    tokenizer over the words of `texts` (the real repo's files), and StanfordAIMI/RRG_scorers'
    chexbert.pth holding that BERT and the 13 four-way and one two-way heads as a DataParallel
    state dict (the layout `_CheXbertLabeler` loads)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from cxr.evaluation.runners.chexbert import CHECKPOINT, MODEL

    words = sorted({w for text in texts for w in re.findall(r"\w+|\S", text.lower())})
    tokens = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *words,
    ]  # [PAD] is 0, as RadEval assumes
    with tempfile.TemporaryDirectory() as vocab_folder:
        vocab = Path(vocab_folder) / "vocab.txt"
        vocab.write_text("\n".join(tokens) + "\n")
        tokenizer = BertTokenizer.from_pretrained(vocab_folder, model_max_length=512)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            initializer_range=0.2,  # wide enough that the [CLS] vectors of the reports differ
        )

        def save_bert(folder: Path) -> None:
            config.save_pretrained(folder)
            tokenizer.save_pretrained(folder)  # tokenizer.json, tokenizer_config.json
            shutil.copy(vocab, folder / "vocab.txt")

        save_to_hub_cache(cache, MODEL, save_bert)
    torch.manual_seed(seed)
    bert = BertModel(config)
    hidden = bert.config.hidden_size
    heads = [torch.nn.Linear(hidden, 4) for _ in range(13)] + [torch.nn.Linear(hidden, 2)]
    state = {f"module.bert.{k}": v for k, v in bert.state_dict().items()}
    for index, head in enumerate(heads):
        state |= {f"module.linear_heads.{index}.{k}": v for k, v in head.state_dict().items()}
    save_to_hub_cache(
        cache,
        CHECKPOINT.repo_id,
        lambda folder: torch.save({"model_state_dict": state}, folder / CHECKPOINT.filename),
    )


def save_tiny_distilroberta(cache: Path, texts: Sequence[str]) -> None:
    """A tiny random RoBERTa saved as "distilroberta-base" with a byte-level BPE tokenizer
    trained on `texts`, in the files the real hub repo serves (6 layers, as the real model:
    BERTScore keeps the first 5)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    from cxr.evaluation.runners.bertscore import MODEL

    with tempfile.TemporaryDirectory() as bpe_folder:
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(
            list(texts) * 3,
            vocab_size=320,
            min_frequency=1,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        )
        bpe.save_model(bpe_folder)  # vocab.json, merges.txt
        tokenizer = RobertaTokenizer.from_pretrained(bpe_folder, model_max_length=512)
        torch.manual_seed(0)
        config = RobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=6,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=514,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        model = RobertaModel(config).eval()

        def save(folder: Path) -> None:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)  # tokenizer.json, tokenizer_config.json
            for name in ("vocab.json", "merges.txt"):
                shutil.copy(Path(bpe_folder) / name, folder / name)

        save_to_hub_cache(cache, MODEL, save)


def evaluate_reports(
    generated: Sequence[str],
    references: Sequence[str],
    scorers: ModelScorers,
    n_bootstrap: int = 0,
) -> Evaluation:
    """`cxr evaluate`'s computation on report texts: study i is patient i, the reference's
    text its findings, the generated text the system's report."""
    from cxr.evaluation.evaluate import EvaluationOptions, evaluate_systems
    from cxr.evaluation.studies import Section, StudyTable, System, build_references

    ids = [f"s{i}" for i in range(len(references))]
    table = pd.DataFrame({"study_id": ids, "patient_id": ids, "findings": list(references)})
    return evaluate_systems(
        [System("model", StudyTable.text_only(list(generated)))],
        build_references(table, Section.REPORT),
        EvaluationOptions(n_bootstrap=n_bootstrap, meteor=False),
        scorers=scorers,
    )
