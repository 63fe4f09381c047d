"""The label heads and the grounded decoder: what each head sees, which calls the decoder reads."""

from __future__ import annotations

import pytest
import torch
from tiny_models import make_batch, tiny_decoder, tiny_model
from transformers import GenerationConfig, PreTrainedTokenizerBase

from cxr.models.config import ChangeHeadKind, HeadsConfig
from cxr.models.grounding import (
    CALL_TOKENS,
    CHANGE_NOT_ASSESSED,
    Calls,
    mixed_calls,
    predicted_calls,
    reference_calls,
)
from cxr.models.heads import ChangeHead, PooledChangeHead, build_change_head
from cxr.tube_line import DEVICE_STATUSES
from cxr.types import CHANGE_FINDINGS, OBSERVATIONS


def test_reference_calls_follow_the_labels_and_mark_unknowns(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    batch = make_batch(tokenizer)
    batch["tube_line"][1] = float("nan")
    batch["tube_line"][2] = 0.0  # every device absent
    batch["change"][2, 0] = -1
    available = torch.tensor([True, False, True, True])

    calls = reference_calls(batch, available)

    assert calls.observations[0, :3].tolist() == [-1, -1, -1]  # NaN in make_batch
    assert calls.observations[1].tolist() == batch["observations"][1].long().tolist()
    assert calls.devices[1].tolist() == [-1] * 4
    absent = [len(statuses) - 1 for statuses in DEVICE_STATUSES.values()]
    assert calls.devices[2].tolist() == absent
    assert calls.changes[1].tolist() == [CHANGE_NOT_ASSESSED] * len(CHANGE_FINDINGS)
    assert calls.changes[2, 0] == -1
    assert calls.changes[0].tolist() == batch["change"][0].tolist()


def _calls(value: int, rows: int = 3) -> Calls:
    return Calls(
        observations=torch.full((rows, len(OBSERVATIONS)), value),
        devices=torch.full((rows, 4), value),
        changes=torch.full((rows, len(CHANGE_FINDINGS)), value),
    )


def test_mixed_calls_take_references_where_known_and_replace_them_as_scheduled() -> None:
    reference, predicted = _calls(1), _calls(0)
    reference.observations[0, 0] = -1

    kept = mixed_calls(reference, predicted, replace_probability=0.0)
    replaced = mixed_calls(reference, predicted, replace_probability=1.0)
    half = mixed_calls(
        _calls(1, rows=400), _calls(0, rows=400), 0.5, torch.Generator().manual_seed(0)
    )

    assert kept.observations[0, 0] == 0  # unknown reference: the head's call
    assert kept.observations.sum() == kept.observations.numel() - 1
    assert kept.devices.eq(1).all() and kept.changes.eq(1).all()
    assert replaced.observations.eq(0).all() and replaced.devices.eq(0).all()
    assert 0.45 < half.observations.float().mean() < 0.55


def test_predicted_calls_threshold_the_heads(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    slot_tokens = model.encode_images(batch["images"], batch["image_present"])
    heads = model.head_logits(slot_tokens, batch["image_present"])
    heads.observations = torch.full_like(heads.observations, -3.0)
    heads.observations[:, OBSERVATIONS.index("Cardiomegaly")] = 3.0
    heads.tube_line = torch.full_like(heads.tube_line, -3.0)
    heads.tube_line[:, 2] = 3.0  # ETT - Normal

    calls = predicted_calls(heads, model.tube_line_thresholds)

    assert calls.observations.sum(dim=1).tolist() == [1, 1, 1, 1]
    assert calls.observations[:, OBSERVATIONS.index("Cardiomegaly")].eq(1).all()
    assert calls.devices[:, 0].eq(DEVICE_STATUSES["ETT"].index("Normal")).all()
    assert calls.devices[:, 1].eq(DEVICE_STATUSES["NGT"].index("absent")).all()
    # Studies 1 and 3 have no prior or no frontal: change is not assessed.
    assert calls.changes[[1, 3]].eq(CHANGE_NOT_ASSESSED).all()
    assert calls.changes[[0, 2]].lt(CHANGE_NOT_ASSESSED).all()


def test_the_decoder_reads_the_call_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    slot_tokens = model.encode_images(batch["images"], batch["image_present"])

    inputs = model.decoder_inputs(
        slot_tokens,
        predicted_calls(
            model.head_logits(slot_tokens, batch["image_present"]), model.tube_line_thresholds
        ),
    )
    plain = tiny_model(tokenizer, tiny_decoder(grounded=False)).eval()

    assert inputs.shape[1] == model.visual_tokens(slot_tokens).shape[1] + CALL_TOKENS
    assert plain.call_tokens is None
    assert plain.decoder_inputs(slot_tokens).shape[1] == plain.visual_tokens(slot_tokens).shape[1]


def test_training_reads_reference_calls_until_they_are_replaced(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    flipped = dict(batch)
    flipped["observations"] = 1.0 - batch["observations"]

    def lm_loss(b: dict[str, torch.Tensor], p: float) -> float:
        return float(model(b, replace_probability=p).lm_loss.detach())

    # Teacher forcing: the report loss depends on the reference labels...
    assert lm_loss(batch, 0.0) != pytest.approx(lm_loss(flipped, 0.0), abs=1e-7)
    # ...and with every call replaced by the heads' own, it no longer does.
    assert lm_loss(batch, 1.0) == pytest.approx(lm_loss(flipped, 1.0), abs=1e-7)


def test_inference_reads_the_heads_calls_never_the_references(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    other_labels = dict(batch)
    other_labels["observations"] = 1.0 - batch["observations"]
    other_labels["tube_line"] = 1.0 - batch["tube_line"]
    other_labels["change"] = (batch["change"] + 1) % 3
    config = GenerationConfig(max_new_tokens=8)

    assert torch.equal(model.generate_ids(batch, config), model.generate_ids(other_labels, config))
    # The heads' calls do reach the text: other call tokens, other greedy tokens' scores.
    slot_tokens = model.encode_images(batch["images"], batch["image_present"])
    heads = model.head_logits(slot_tokens, batch["image_present"])
    calls = predicted_calls(heads, model.tube_line_thresholds)
    flipped_calls = Calls(1 - calls.observations, calls.devices, calls.changes)
    assert not torch.equal(
        model.decoder_inputs(slot_tokens, calls), model.decoder_inputs(slot_tokens, flipped_calls)
    )


def test_predict_gives_the_reports_and_labels_of_one_pass(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    config = GenerationConfig(max_new_tokens=6)

    texts, labels = model.predict(batch, config)

    assert texts == model.generate(batch, config)
    alone = model.predict_labels(batch)
    assert torch.equal(labels.observations, alone.observations)
    assert torch.equal(labels.tube_line, alone.tube_line)


def test_the_comparing_change_head_sees_where_the_prior_differs() -> None:
    torch.manual_seed(0)
    head = ChangeHead(HeadsConfig(hidden=16, num_heads=2, dropout=0.0), feature_dim=8).eval()
    current = torch.randn(1, 6, 8)
    prior = current.clone()
    moved = current.clone()
    moved[0, 2] += torch.randn(8)  # one token of the prior differs

    same, changed = head(current, prior), head(current, moved)

    assert same.shape == (1, len(CHANGE_FINDINGS), 3)
    assert not torch.allclose(same, changed)


def test_the_change_head_is_chosen_by_config() -> None:
    assert isinstance(build_change_head(HeadsConfig(), 16), ChangeHead)
    pooled = HeadsConfig(change=ChangeHeadKind.pooled)
    assert isinstance(build_change_head(pooled, 16), PooledChangeHead)
