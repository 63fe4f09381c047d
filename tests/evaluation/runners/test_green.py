"""The GREEN runner (cxr/evaluation/runners/green.py) gives RadEval's own GREEN numbers.

The tiny StanfordAIMI/GREEN-radllama2-7b built here has the real repo's layout (sharded
safetensors with their index, a SentencePiece tokenizer.model with added_tokens.json and
special_tokens_map.json, no tokenizer.json) and weights set by hand so that greedy decoding gives
a valid GREEN answer that depends on the reports: layer 0 attends uniformly and carries how
often the token "effusion" occurs in the prompt, and the output layer maps that count to one of
three whole answers (added tokens) scoring 1, 1/2 and 1/3, then to end-of-sequence.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxr.errors import InputError
from cxr.evaluation.hub_cache import hub_cache, require
from cxr.evaluation.runners.green import METRIC, REPO_ID, SCORERS
from cxr.evaluation.scorers import ScorerOptions, load_scorers
from evaluation.runners.hub_folders import evaluate_reports, save_to_hub_cache, snapshot

SPEC = SCORERS[0]

# (reference, generated); "effusion" occurs 2, 0, 3, 1, 0, 2 times in the two together.
REPORTS = [
    ("No pleural effusion or pneumothorax.", "No effusion. Heart size is normal."),
    ("Heart size is normal. The lungs are clear.", "The lungs are clear."),
    ("Small left pleural effusion.", "Small left effusion. No right effusion."),
    ("Mild pulmonary edema.", "Mild edema, no effusion."),
    ("No acute cardiopulmonary process.", ""),
    ("Right pleural effusion.", "Right effusion, unchanged."),
]
# Answers by the number of "effusion" tokens: none, one or two, three or more.
ANSWERS = (
    "[Matched Findings]:\n2. heart; lungs",
    "[Clinically Significant Errors]:\n"
    "(a) False report of a finding in the candidate: 1. effusion\n\n"
    "[Matched Findings]:\n1. lungs",
    "[Clinically Significant Errors]:\n"
    "(a) False report of a finding in the candidate: 1. effusion\n"
    "(b) Missing a finding present in the reference: 1. edema\n\n"
    "[Matched Findings]:\n1. heart",
)
EXPECTED = [1 / 2, 1.0, 1 / 3, 1 / 2, 1.0, 1 / 2]
ROLE_TOKENS = ("<|user|>", "<|assistant|>", "<|system|>")


def write_tokenizer(folder: Path) -> dict[str, int]:
    """A SentencePiece Llama tokenizer trained on GREEN's prompts, in the repo's file layout;
    returns the ids the weights need."""
    import sentencepiece as spm
    from radeval.metrics.green_score.utils import make_prompt

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([make_prompt(r, h) for r, h in REPORTS]),
        model_writer=proto,
        model_type="bpe",
        vocab_size=400,
        hard_vocab_limit=False,
        user_defined_symbols=["effusion"],
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    (folder / "tokenizer.model").write_bytes(proto.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    added = {token: pieces.get_piece_size() + i for i, token in enumerate(ROLE_TOKENS + ANSWERS)}
    (folder / "added_tokens.json").write_text(json.dumps(added))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
    )
    decoder = {
        str(i): dict(
            content=token,
            lstrip=False,
            normalized=False,
            rstrip=False,
            single_word=False,
            special=False,
        )
        for token, i in added.items()
    }
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            dict(
                tokenizer_class="LlamaTokenizer",
                add_bos_token=True,
                add_eos_token=False,
                legacy=False,
                added_tokens_decoder=decoder,
            )
        )
    )
    # The real repo's tokenizer class; never imported, as this tokenizer_config has no auto_map.
    (folder / "tokenization_chexagent.py").write_text('"""Unused by the tiny test tokenizer."""\n')
    return {
        "vocab": pieces.get_piece_size() + len(added),
        "effusion": pieces.piece_to_id("effusion"),
        "eos": pieces.eos_id(),
        **{f"answer{k}": added[answer] for k, answer in enumerate(ANSWERS)},
    }


def write_model(folder: Path, ids: dict[str, int]) -> None:
    """A 2-layer Llama (hidden 32) whose greedy answer is ANSWERS[k] then end-of-sequence."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=ids["vocab"], hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
        bos_token_id=1, eos_token_id=ids["eos"], tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    answers = [ids[f"answer{k}"] for k in range(len(ANSWERS))]
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "norm" not in name:
                weight.zero_()  # zero queries: uniform attention; zero MLPs: identity
        embedding = model.model.embed_tokens.weight
        embedding[:, 0] = 1.0  # a constant feature on every prompt token
        embedding[ids["effusion"], 1] = 1.0
        embedding[answers, 0] = 0.0
        embedding[answers, 2] = 1000.0  # an answer was just written
        attention = model.model.layers[0].self_attn
        attention.v_proj.weight[0, 1] = 1.0
        attention.o_proj.weight[1, 0] = 150.0  # ~1 per "effusion" over a ~550-token prompt
        head = model.lm_head.weight
        head[answers[0], 0] = 10.0
        head[answers[1], 1] = 20.0
        head[answers[2], 1], head[answers[2], 0] = 40.0, -50.0
        head[ids["eos"], 2] = 1.0
    # About 190 kB in three shards, named as the real repo's.
    model.save_pretrained(folder, max_shard_size="80KB")


def build_green_cache(cache: Path) -> Path:
    """The tiny GREEN repo in the hub cache `cache`; returns its snapshot folder."""
    return save_to_hub_cache(
        cache, REPO_ID, lambda folder: write_model(folder, write_tokenizer(folder))
    )


@pytest.fixture(scope="module")
def green_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("green-cache")
    build_green_cache(cache)
    return cache


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(folder, copy)
    return copy


def test_the_tiny_repo_has_every_needed_file_and_a_missing_one_is_named(
    green_folder: Path, tmp_path: Path
) -> None:
    require(SPEC.name, green_folder, SPEC.needs)
    copy = _copy(green_folder, tmp_path)
    (snapshot(copy, REPO_ID) / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(InputError, match=re.escape("model-00002-of-00003.safetensors")):
        load_scorers({SPEC.name: copy})


def test_a_repo_declaring_custom_code_is_refused(green_folder: Path, tmp_path: Path) -> None:
    copy = _copy(green_folder, tmp_path)
    config_path = snapshot(copy, REPO_ID) / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoTokenizer": ["tokenization_chexagent.CheXagentTokenizer", None]}
    config_path.write_text(json.dumps(config))
    with pytest.raises(InputError, match=re.escape("tokenization_chexagent.CheXagentTokenizer")):
        load_scorers({SPEC.name: copy}, ScorerOptions(progress=False))


def test_cxr_green_equals_radeval_green(green_folder: Path) -> None:
    import radeval

    references = [r for r, _ in REPORTS]
    generated = [h for _, h in REPORTS]
    with hub_cache(green_folder):
        per_sample = radeval.RadEval(metrics=["green"], per_sample=True, show_progress=False)
        expected = per_sample(refs=references, hyps=generated)["green"]
        corpus = radeval.RadEval(metrics=["green"], show_progress=False)
        expected_corpus = corpus(refs=references, hyps=generated)["green"]
    assert expected == pytest.approx(EXPECTED)  # the weights work as designed

    scorers = load_scorers({SPEC.name: green_folder}, ScorerOptions(progress=False))
    evaluation = evaluate_reports(generated, references, scorers)
    assert evaluation.systems["model"][METRIC].value == pytest.approx(np.mean(expected), rel=1e-9)
    assert evaluation.systems["model"][METRIC].value == pytest.approx(expected_corpus, abs=5e-5)
    per_study = scorers.per_study(generated, references).scores[METRIC]
    np.testing.assert_allclose(per_study, expected, rtol=1e-9)
