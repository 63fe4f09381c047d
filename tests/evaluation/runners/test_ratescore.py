"""RaTEScore runner: cxr's RaTEScore equals RadEval's "ratescore" metric, per study and as a
corpus mean, and a report without a sentence scores 0.5 without shifting the other studies.

The weights are tiny random models in the real repos' formats and file names: a DeBERTa-v2
tagger with the real id2label (its classifier scaled up so that it tags many entities of
several types) and a sentencepiece tokenizer, and an MPNet entity encoder with a WordPiece
vocab.txt (BioLORD-2023-C serves no tokenizer.json)."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cxr.errors import InputError
from cxr.evaluation.hub_cache import hub_cache, require
from cxr.evaluation.runners.ratescore import (
    ENTITY_ENCODER,
    METRIC,
    NER_MODEL,
    NO_ENTITY_SCORE,
    SCORERS,
)
from cxr.evaluation.scorers import ScorerOptions, load_scorers
from evaluation.runners.hub_folders import evaluate_reports, save_to_hub_cache

SPEC = SCORERS[0]
TAGS = [
    "B-ABNORMALITY",
    "I-ABNORMALITY",
    "B-NON-ABNORMALITY",
    "I-NON-ABNORMALITY",
    "B-DISEASE",
    "I-DISEASE",
    "B-NON-DISEASE",
    "I-NON-DISEASE",
    "B-ANATOMY",
    "I-ANATOMY",
    "O",
]  # RaTE-NER-Deberta's id2label, in its order
REFERENCES = [
    "No acute cardiopulmonary process.",
    "Small left pleural effusion.",
    "Mild pulmonary edema. Heart size is enlarged.",
    "Right lower lobe pneumonia.",
    "No pneumothorax.",
    "Lungs are clear.",
]
GENERATED = [
    "No acute cardiopulmonary process.",
    "Small right pleural effusion with atelectasis.",
    "Moderate cardiomegaly without edema.",
    "Right lower lobe opacity.",
    "Endotracheal tube in standard position.",
    "Heart size is normal and the lungs are clear.",
]
VOCABULARY_TEXT = [*REFERENCES, *GENERATED]
SPECIAL_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token")
SPECIAL_ROLES += ("mask_token",)


@pytest.fixture(scope="module", autouse=True)
def _only_this_scorer() -> Iterator[None]:
    """The registry holds just this runner's spec, whatever other runner modules exist."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cxr.evaluation.scorers.known_scorers", lambda: {SPEC.name: SPEC})
        yield


@pytest.fixture(scope="module")
def rate_score_importable() -> None:
    """RadEval's RaTEScore imports spaCy, which needs a numpy its compiled parts were built for."""
    try:
        import radeval.metrics.RaTEScore.scorer  # noqa: F401
    except ValueError as error:
        pytest.skip(f"RadEval's RaTEScore does not import here (spaCy/thinc vs numpy): {error}")


def _save_tagger(snapshot: Path, tmp: Path) -> None:
    import sentencepiece
    import torch
    from transformers import DebertaV2Config, DebertaV2ForTokenClassification, DebertaV2Tokenizer

    model_file = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(VOCABULARY_TEXT * 4),
        model_writer=model_file,
        vocab_size=150,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="[PAD]",
        unk_piece="[UNK]",
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2,
    )
    (tmp / "spm.model").write_bytes(model_file.getvalue())
    tokenizer = DebertaV2Tokenizer.from_pretrained(str(tmp))
    tokenizer.save_pretrained(snapshot)  # tokenizer.json, tokenizer_config.json
    shutil.copy(tmp / "spm.model", snapshot / "spm.model")
    (snapshot / "added_tokens.json").write_text(json.dumps({"[MASK]": tokenizer.mask_token_id}))
    (snapshot / "special_tokens_map.json").write_text(
        json.dumps({role: getattr(tokenizer, role) for role in SPECIAL_ROLES})
    )
    torch.manual_seed(0)
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=0,
        relative_attention=True,  # as deberta-v3-base, which the tagger was tuned from
        position_buckets=256,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        max_relative_positions=-1,
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(TAGS)),
        label2id={tag: i for i, tag in enumerate(TAGS)},
    )
    tagger = DebertaV2ForTokenClassification(config).eval()
    with torch.no_grad():
        tagger.classifier.weight.normal_(0.0, 2.0)  # token-dependent tags, not all one
    tagger.save_pretrained(snapshot)


def _save_encoder(snapshot: Path, tmp: Path) -> None:
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    words = sorted({w.strip(".,").lower() for text in VOCABULARY_TEXT for w in text.split()})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>", ".", ",", *words, *letters]
    vocab += [f"##{letter}" for letter in letters]
    (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = MPNetTokenizer.from_pretrained(str(tmp))
    tokenizer.save_pretrained(snapshot)
    (snapshot / "tokenizer.json").unlink()  # as the real repo: built from vocab.txt
    shutil.copy(tmp / "vocab.txt", snapshot / "vocab.txt")
    (snapshot / "special_tokens_map.json").write_text(
        json.dumps({role: getattr(tokenizer, role) for role in SPECIAL_ROLES})
    )
    torch.manual_seed(1)
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.5,  # entity embeddings far enough apart to score differently
    )
    MPNetModel(config).eval().save_pretrained(snapshot)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache holding tiny versions of both repos, in their real file names."""
    cache = tmp_path_factory.mktemp("ratescore-hub")
    save_to_hub_cache(
        cache, NER_MODEL, lambda snapshot: _save_tagger(snapshot, tmp_path_factory.mktemp("spm"))
    )
    save_to_hub_cache(
        cache,
        ENTITY_ENCODER,
        lambda snapshot: _save_encoder(snapshot, tmp_path_factory.mktemp("wordpiece")),
    )
    return cache


def _radeval(hypotheses: list[str], references: list[str], per_sample: bool) -> Any:
    from radeval import RadEval

    evaluator = RadEval(metrics=["ratescore"], per_sample=per_sample, show_progress=False)
    return evaluator(refs=references, hyps=hypotheses)["ratescore"]


def test_the_folder_holds_every_needed_file_and_a_missing_one_is_named(
    folder: Path, tmp_path: Path
) -> None:
    require(SPEC.name, folder, SPEC.needs)
    assert {need.repo_id for need in SPEC.needs} == {NER_MODEL, ENTITY_ENCODER}
    broken = tmp_path / "hub"
    shutil.copytree(folder, broken)
    repo = broken / "models--FremyCompany--BioLORD-2023-C" / "snapshots"
    (next(repo.iterdir()) / "vocab.txt").unlink()
    with pytest.raises(InputError, match=r"hf download FremyCompany/BioLORD-2023-C vocab\.txt"):
        load_scorers({SPEC.name: broken}, ScorerOptions(progress=False))


def test_cxr_gives_radeval_ratescore_per_study_and_as_the_corpus_mean(
    folder: Path, rate_score_importable: None
) -> None:
    with hub_cache(folder):
        per_sample = _radeval(GENERATED, REFERENCES, per_sample=True)
        rounded_corpus = _radeval(GENERATED, REFERENCES, per_sample=False)

    scorers = load_scorers({SPEC.name: folder}, ScorerOptions(progress=False, batch_size=4))
    assert scorers.notes() == {SPEC.name: "ran"}
    per_study = scorers.per_study(GENERATED, REFERENCES).scores[METRIC]
    evaluation = evaluate_reports(GENERATED, REFERENCES, scorers)
    corpus = evaluation.systems["model"][METRIC].value

    assert per_study == pytest.approx(per_sample, rel=1e-6, abs=1e-9)
    assert corpus == pytest.approx(np.mean(per_sample), rel=1e-6)
    assert corpus == pytest.approx(rounded_corpus, abs=5e-5)  # RadEval rounds to 4 places
    assert len(set(np.round(per_study, 6))) > 2  # the reports do score differently
    assert NO_ENTITY_SCORE not in per_study  # the tagger found entities in every report


def test_a_report_without_a_sentence_scores_half_and_shifts_no_other_study(
    folder: Path, rate_score_importable: None
) -> None:
    generated = [*GENERATED[:2], "", *GENERATED[3:]]
    with hub_cache(folder):
        # RadEval drops the empty report, so its per-sample list comes out one short
        assert len(_radeval(generated, REFERENCES, per_sample=True)) == len(REFERENCES) - 1
        others = [i for i in range(len(REFERENCES)) if i != 2]
        expected = _radeval(
            [generated[i] for i in others], [REFERENCES[i] for i in others], per_sample=True
        )

    scorers = load_scorers({SPEC.name: folder}, ScorerOptions(progress=False))
    per_study = scorers.per_study(generated, REFERENCES).scores[METRIC]
    assert per_study[2] == NO_ENTITY_SCORE
    assert per_study[others] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_where_its_package_does_not_import_ratescore_is_unavailable_with_the_reason(
    folder: Path,
) -> None:
    try:
        import radeval.metrics.RaTEScore.scorer  # noqa: F401
    except ValueError:
        pass
    else:
        pytest.skip("RaTEScore imports here: the parity tests above run instead")
    scorers = load_scorers({SPEC.name: folder}, ScorerOptions(progress=False))
    note = scorers.notes()[SPEC.name]
    assert note.startswith("unavailable: RadEval's RaTEScore needs spaCy")
    assert "numpy < 2" in note
    assert scorers.unavailable_metrics() == {METRIC: note}
