"""A tiny random RadGraph model in the package's own format, written into a hub cache.

What the real archive holds. `radgraph.tar.gz` and `radgraph-xl.tar.gz` of the hub repo
StanfordAIMI/RRG_scorers are AllenNLP model archives of DyGIE++ trained on RadGraph
(`MODEL_MAPPING` in radeval/metrics/radgraph/_vendor/core.py; `RadGraph.__init__` extracts
one into `<model_cache_dir>/<model_type>/` and reads, at its top level):
- `config.json`: the AllenNLP training config. Loading reads `dataset_reader.max_span_width`,
  `dataset_reader.token_indexers.bert.{model_name, max_length}`,
  `model.embedder.token_embedders.bert.{model_name, max_length}`, optionally `vocabulary`, and
  passes the rest of `model` (without `type`, `embedder`, `initializer`,
  `module_initializer`) to `DyGIE(...)`: `modules` (ner, relation, coref, events),
  `feature_size`, `max_span_width`, `target_task`, `feedforward_params`, `loss_weights`.
- `vocabulary/`: AllenNLP's `Vocabulary.save_to_files` output: `non_padded_namespaces.txt`
  and one file per label namespace, named after the dataset ("radgraph" / "radgraph-xl",
  which `preprocess_reports` sets as each document's dataset): `<dataset>__ner_labels.txt`
  (the null label "" first, then ANAT-DP, OBS-DP, OBS-U, OBS-DA) and
  `<dataset>__relation_labels.txt` (located_at, modify, suggestive_of).
- `weights.th`: the DyGIE state dict, loaded strictly, including the BERT encoder's
  weights (`_embedder.token_embedder_bert._matched_embedder.transformer_model.*`); the
  encoder itself is built from the config of the hub id config.json names
  (`AutoModel.from_config`), and the tokenizer from that repo's config.json and vocab.txt.
This is what the loading code reads; the real archives were not opened here (no network).
Their label names are RadGraph's schema, and the BERT id (`TRANSFORMERS` of the runner) is
PubMedBERT, the encoder of the RadGraph DyGIE++ configs, unconfirmed against the archives.

Here every size is tiny (a 2-layer BERT of width 32, span features of 8, feed-forwards of
16) and the weights are random with a fixed seed; the BERT config and a WordPiece vocabulary
(letters, word pieces and a few report words, so every report tokenizes) are saved under the
real hub id, and the model is built with the package's own vendored classes, as
`RadGraph.__init__` builds it, so loading runs the package's loading path unchanged. With
`SEEDS` and `OUTPUT_BIASES` the models find entities and relations in short radiology
sentences (the tests check that they do, and that reports score differently). The two model
types get different seeds, so RadGraph's and RadGraph-XL's scores differ.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import string
import tarfile
from pathlib import Path
from typing import Any

from cxr.evaluation.hub_cache import hub_cache
from cxr.evaluation.runners.radgraph import (
    ARCHIVE_REPO,
    ARCHIVES,
    TRANSFORMERS,
    vendored_core,
)
from evaluation.runners.hub_folders import save_to_hub_cache

SEEDS = {"radgraph": 0, "radgraph-xl": 3}  # two different models, so their scores differ
# The biases of the output layers of the NER, mention-pruning and relation scorers ({dataset}:
# the model type). Against the null label's fixed score 0 they make some spans and span pairs
# null, so that the entities and relations found differ by report.
OUTPUT_BIASES = {
    "_ner._ner_scorers.{dataset}__ner_labels.1._module.bias": -0.1,
    "_relation._mention_pruners.{dataset}__relation_labels._scorer.1._module.bias": 0.0,
    "_relation._relation_scorers.{dataset}__relation_labels.bias": -0.1,
}
ENCODER = "_embedder.token_embedder_bert._matched_embedder.transformer_model"
ENTITY_LABELS = ("ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA")
RELATION_LABELS = ("located_at", "modify", "suggestive_of")
MAX_LENGTH = 512
REPORT_WORDS = (
    "no",
    "acute",
    "cardiopulmonary",
    "process",
    "heart",
    "size",
    "is",
    "normal",
    "and",
    "the",
    "lungs",
    "are",
    "clear",
    "small",
    "left",
    "right",
    "pleural",
    "effusion",
    "with",
    "adjacent",
    "atelectasis",
    "mild",
    "moderate",
    "pulmonary",
    "edema",
    "cardiomegaly",
    "pneumothorax",
    "endotracheal",
    "tube",
    "in",
    "standard",
    "position",
    "lower",
    "lobe",
    "opacity",
    "may",
    "represent",
    "pneumonia",
    "possible",
    "consolidation",
    "enlarged",
    "without",
    ").split(",
)


def _wordpiece_vocab() -> list[str]:
    """[PAD] first (id 0), the specials, characters and their ##-pieces, then whole words."""
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    return [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *characters,
        *(f"##{c}" for c in characters),
        *REPORT_WORDS,
    ]


def _save_transformer(cache: Path, model_id: str) -> None:
    """config.json and vocab.txt of a tiny uncased BERT, the files the real repo serves."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=len(_wordpiece_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        initializer_range=0.5,  # wide enough that the spans' embeddings differ
    )

    def save(snapshot: Path) -> None:
        config.save_pretrained(snapshot)
        (snapshot / "vocab.txt").write_text("\n".join(_wordpiece_vocab()) + "\n")

    save_to_hub_cache(cache, model_id, save)


def _config(model_type: str) -> dict[str, Any]:
    """The archive's config.json: DyGIE++'s training config shape with tiny sizes."""
    bert = {
        "type": "pretrained_transformer_mismatched",
        "model_name": TRANSFORMERS[model_type],
        "max_length": MAX_LENGTH,
    }
    return {
        "dataset_reader": {
            "type": "dygie",
            "max_span_width": 4,
            "token_indexers": {"bert": dict(bert)},
        },
        "model": {
            "type": "dygie",
            "embedder": {"token_embedders": {"bert": dict(bert)}},
            "initializer": {"regexes": []},
            "module_initializer": {"regexes": []},
            "feature_size": 8,
            "max_span_width": 4,
            "target_task": "relation",
            "feedforward_params": {"num_layers": 2, "hidden_dims": 16, "dropout": 0.4},
            "loss_weights": {"ner": 0.2, "relation": 1.0, "coref": 0.0, "events": 0.0},
            "modules": {
                "coref": {"spans_per_word": 0.3, "max_antecedents": 100, "coref_prop": 0},
                "ner": {},
                "relation": {"spans_per_word": 0.5},
                "events": {
                    "trigger_spans_per_word": 0.3,
                    "argument_spans_per_word": 0.8,
                    "loss_weights": {"trigger": 0.2, "arguments": 1.0},
                },
            },
        },
    }


def _vocabulary(model_type: str) -> Any:
    """The label namespaces of dataset `model_type`, the null entity label first."""
    from radeval.metrics.radgraph._vendor.allennlp.data import Vocabulary

    vocabulary = Vocabulary()
    vocabulary.add_token_to_namespace("", f"{model_type}__ner_labels")
    for label in ENTITY_LABELS:
        vocabulary.add_token_to_namespace(label, f"{model_type}__ner_labels")
    for label in RELATION_LABELS:
        vocabulary.add_token_to_namespace(label, f"{model_type}__relation_labels")
    return vocabulary


def _dygie_state(model_type: str, config: dict[str, Any], vocabulary: Any) -> dict[str, Any]:
    """The weights of a DyGIE built as `RadGraph.__init__` builds it (inside the hub cache).

    The vendored embedder reuses a process-wide copy of the encoder per hub id
    (`cached_transformers`), so the encoder's weights are drawn afresh here from the seed:
    the model is the same whatever ran before in the process."""
    import torch
    from radeval.metrics.radgraph._vendor.allennlp.modules import (
        text_field_embedders,
        token_embedders,
    )
    from radeval.metrics.radgraph._vendor.dygie.models import dygie
    from transformers import AutoConfig, AutoModel

    bert = config["model"]["embedder"]["token_embedders"]["bert"]
    embedder = text_field_embedders.BasicTextFieldEmbedder(
        {
            "bert": token_embedders.PretrainedTransformerMismatchedEmbedder(
                model_name=bert["model_name"], max_length=bert["max_length"]
            )
        }
    )
    dygie_args = {  # a copy: DyGIE pops its `modules` entries
        k: copy.deepcopy(v)
        for k, v in config["model"].items()
        if k not in ("type", "embedder", "initializer", "module_initializer")
    }
    torch.manual_seed(SEEDS[model_type])
    state = dygie.DyGIE(vocab=vocabulary, embedder=embedder, **dygie_args).state_dict()
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(bert["model_name"])).state_dict()
    encoder_keys = {f"{ENCODER}.{key}" for key in encoder}
    assert encoder_keys == {key for key in state if key.startswith(f"{ENCODER}.")}
    state |= {f"{ENCODER}.{key}": value for key, value in encoder.items()}
    for template, bias in OUTPUT_BIASES.items():
        key = template.format(dataset=model_type)
        state[key] = torch.full_like(state[key], bias)
    return state


def _archive(config: dict[str, Any], vocabulary: Any, state: dict[str, Any], path: Path) -> None:
    """An archive of config.json, vocabulary/ and weights.th at its top level."""
    import torch

    staging = path.parent / f"{path.name}.contents"
    staging.mkdir()
    (staging / "config.json").write_text(json.dumps(config, indent=2))
    vocabulary.save_to_files(str(staging / "vocabulary"))
    (staging / "vocabulary" / ".lock").unlink(missing_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (staging / "weights.th").write_bytes(buffer.getvalue())
    with tarfile.open(path, "w:gz") as tar:
        for member in sorted(staging.iterdir()):
            tar.add(member, arcname=member.name)
    shutil.rmtree(staging)


def save_tiny_radgraph(cache: Path, model_type: str = "radgraph") -> None:
    """Writes a tiny RadGraph `model_type` into the hub cache `cache`: its archive in
    StanfordAIMI/RRG_scorers and its BERT's config.json and vocab.txt under the real id."""
    vendored_core()  # makes the vendored package importable (see the runner's docstring)
    _save_transformer(cache, TRANSFORMERS[model_type])
    config = _config(model_type)
    vocabulary = _vocabulary(model_type)
    with hub_cache(cache):
        state = _dygie_state(model_type, config, vocabulary)
    save_to_hub_cache(
        cache,
        ARCHIVE_REPO,
        lambda snapshot: _archive(config, vocabulary, state, snapshot / ARCHIVES[model_type]),
    )
