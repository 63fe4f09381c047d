"""ReportModel end to end on tiny sizes: losses, gradients, missing slots, generation, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_models import make_batch, select, tiny_decoder, tiny_model, total_loss
from transformers import GenerationConfig, PreTrainedTokenizerBase

from cxr.errors import InputError
from cxr.models import ConnectorKind, DecoderKind, ReportModel
from cxr.models.report_model import default_generation_config

DECODER_KINDS = list(DecoderKind)
CONNECTOR_KINDS = list(ConnectorKind)


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
@pytest.mark.parametrize("connector_kind", CONNECTOR_KINDS)
def test_backward_reaches_every_trainable_parameter(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind, connector_kind: ConnectorKind
) -> None:
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind), connector_kind)
    batch = make_batch(tokenizer)

    output = model(batch)
    total_loss(model, batch).backward()

    assert output.tube_line_logits.shape == (4, 11)
    assert output.change_logits.shape == (4, 5, 3)
    assert output.change_available.tolist() == [True, False, True, False]
    assert torch.isfinite(output.lm_loss)
    unreached = [
        name
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
        and (parameter.grad is None or not bool(parameter.grad.abs().sum() > 0))
    ]
    assert unreached == []


def test_lm_loss_counts_only_report_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    output = model(batch)
    changed = dict(batch)
    # Padding and the report of the study without one (row 2) must not matter.
    changed["report_ids"] = batch["report_ids"].masked_fill(batch["report_mask"] == 0, 7)

    assert output.report_token_count == batch["report_mask"].sum()
    assert torch.allclose(model(changed).lm_loss, output.lm_loss)


def test_lm_loss_is_mean_over_tokens_of_the_batch(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    parts = [model(select(batch, [row])) for row in (0, 1, 3)]

    pooled = sum(p.lm_loss * p.report_token_count for p in parts) / sum(
        p.report_token_count for p in parts
    )

    assert torch.allclose(model(batch).lm_loss, pooled, atol=1e-5)


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
def test_batch_without_reports_gives_zero_lm_loss_with_graph(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind
) -> None:
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind))
    batch = make_batch(tokenizer, reports=["", "", "", ""])

    output = model(batch)
    output.lm_loss.backward()

    assert output.lm_loss.item() == 0.0
    assert output.report_token_count.item() == 0
    assert all(p.grad is not None for p in model.text_decoder.parameters() if p.requires_grad)


def test_absent_slot_pixels_are_ignored(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    noisy = dict(batch)
    absent = ~batch["image_present"]
    noisy["images"] = (
        batch["images"] + torch.rand_like(batch["images"]) * absent[:, :, None, None, None]
    )

    first, second = model(batch), model(noisy)

    assert torch.equal(first.tube_line_logits, second.tube_line_logits)
    assert torch.equal(first.change_logits, second.change_logits)
    assert torch.equal(first.lm_loss, second.lm_loss)


def test_missing_token_differs_from_a_black_image(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    black_prior = dict(batch)
    black_prior["image_present"] = batch["image_present"].clone()
    black_prior["image_present"][1, 2] = True  # study 1's prior: zeros, but now "present"

    missing, black = model.predict_labels(batch), model.predict_labels(black_prior)

    assert torch.isnan(missing.change[1]).all()
    assert torch.isfinite(black.change[1]).all()
    assert torch.equal(missing.tube_line[0], black.tube_line[0])


def test_predict_labels_are_probabilities(tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_model(tokenizer).eval()
    labels = model.predict_labels(make_batch(tokenizer))
    tube_line_probs, change_probs = labels.tube_line, labels.change

    assert tube_line_probs.shape == (4, 11)
    assert ((tube_line_probs > 0) & (tube_line_probs < 1)).all()
    assert labels.observations.shape == (4, 14)
    assert ((labels.observations > 0) & (labels.observations < 1)).all()
    assert torch.allclose(change_probs[[0, 2]].sum(-1), torch.ones(2, 5))
    assert torch.isnan(change_probs[[1, 3]]).all()
    assert model.tube_line_thresholds.tolist() == [0.5] * 11


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
def test_greedy_report_does_not_depend_on_the_batch(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind
) -> None:
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind)).eval()
    with torch.no_grad():  # make positions matter as much as after training
        model.text_decoder.language_model.transformer.wpe.weight.mul_(50)
    batch = make_batch(tokenizer)

    together = model.generate_ids(batch, GenerationConfig(max_new_tokens=12))
    alone = [
        model.generate_ids(select(batch, [row]), GenerationConfig(max_new_tokens=12))[0]
        for row in range(4)
    ]

    for row in range(4):
        length = alone[row].shape[0]
        assert together[row, :length].tolist() == alone[row].tolist()
        assert (together[row, length:] == tokenizer.pad_token_id).all()


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
def test_generate_decodes_texts_with_every_strategy(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind
) -> None:
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind))
    batch = make_batch(tokenizer)

    greedy = model.generate(batch, GenerationConfig(max_new_tokens=6))
    beams = model.generate(
        batch, GenerationConfig(max_new_tokens=6, num_beams=2, repetition_penalty=1.2)
    )
    torch.manual_seed(1)
    sampled = model.generate(
        batch, GenerationConfig(max_new_tokens=6, do_sample=True, temperature=0.8, top_p=0.9)
    )
    no_cache = model.generate(batch, GenerationConfig(max_new_tokens=6, use_cache=False))

    assert model.training  # generate restores the mode it found
    assert all(
        len(texts) == 4 and all(isinstance(t, str) for t in texts) for texts in (beams, sampled)
    )
    assert no_cache == greedy


def test_generation_learns_a_report(tokenizer: PreTrainedTokenizerBase) -> None:
    """A few dozen steps on one study make greedy decoding reproduce its report."""
    model = tiny_model(tokenizer)
    batch = make_batch(
        tokenizer, prompts=["<s>"], reports=["Lungs are clear.</s>"], present=[[1, 0, 0]]
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        model(batch).lm_loss.backward()
        optimizer.step()

    assert model.generate(batch, GenerationConfig(max_new_tokens=10)) == ["Lungs are clear."]


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
def test_save_then_load_gives_identical_outputs(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind, tmp_path: Path
) -> None:
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind), ConnectorKind.attention_pool).eval()
    model.heads_config.tube_line_thresholds[3] = 0.3
    batch = make_batch(tokenizer)

    model.save_pretrained(tmp_path / "model")
    loaded = ReportModel.from_pretrained(tmp_path / "model")
    before, after = model(batch), loaded(batch)

    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json",
        "configuration_cxr.py",
        "generation_config.json",
        "model.safetensors",
        "modeling_cxr.py",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert not loaded.training
    assert torch.equal(before.lm_loss, after.lm_loss)
    assert torch.equal(before.tube_line_logits, after.tube_line_logits)
    assert torch.equal(before.change_logits, after.change_logits)
    assert loaded.generate(batch, GenerationConfig(max_new_tokens=8)) == model.generate(
        batch, GenerationConfig(max_new_tokens=8)
    )
    assert loaded.tube_line_thresholds[3].item() == pytest.approx(0.3)


def test_saved_folder_holds_the_decoding_defaults_and_loads_them_back(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    model = tiny_model(tokenizer)
    model.save_pretrained(tmp_path / "defaults")
    model.generation_config.max_new_tokens = 7
    model.save_pretrained(tmp_path / "seven")

    saved = json.loads((tmp_path / "defaults" / "generation_config.json").read_text())
    defaults = ReportModel.from_pretrained(tmp_path / "defaults").generation_config
    seven = ReportModel.from_pretrained(tmp_path / "seven").generation_config

    # Greedy, one beam, no penalty, 160 new tokens, with the KV cache: the documented defaults.
    assert saved["max_new_tokens"] == 160 and saved["num_beams"] == 1
    assert saved["do_sample"] is False and saved["use_cache"] is True
    assert saved["repetition_penalty"] == 1.0
    # Token ids are the tokenizer's, filled in at generate time, not a second copy in the file.
    assert "pad_token_id" not in saved and "eos_token_id" not in saved
    assert defaults == default_generation_config()
    assert seven.max_new_tokens == 7 and seven.num_beams == 1


def test_a_folder_without_generation_config_decodes_with_the_defaults(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    model = tiny_model(tokenizer)
    model.generation_config.max_new_tokens = 7
    model.save_pretrained(tmp_path / "model")
    # As written before models had a generation config.
    (tmp_path / "model" / "generation_config.json").unlink()

    loaded = ReportModel.from_pretrained(tmp_path / "model")

    assert loaded.generation_config == default_generation_config()
    assert loaded.generation_config.max_new_tokens == 160


def test_generate_without_a_config_decodes_as_the_model_folder_says(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    model = tiny_model(tokenizer)
    model.generation_config.max_new_tokens = 5
    model.generation_config.repetition_penalty = 1.3
    model.save_pretrained(tmp_path / "model")
    loaded = ReportModel.from_pretrained(tmp_path / "model")
    folder_config = GenerationConfig.from_pretrained(tmp_path / "model")
    batch = make_batch(tokenizer)

    own = loaded.generate_ids(batch)
    shorter = loaded.generate_ids(batch, GenerationConfig(max_new_tokens=3))
    resolved = loaded.resolve_generation_config(GenerationConfig(max_new_tokens=3, pad_token_id=9))

    # The untrained model never ends a report early, so every report is cut at the folder's 5.
    assert own.shape == (4, 5)
    assert torch.equal(own, loaded.generate_ids(batch, folder_config))
    assert loaded.generate(batch) == loaded.generate(batch, folder_config)
    # A config that sets one field replaces only that one: greedy, so a prefix of the 5.
    assert torch.equal(shorter, own[:, :3])
    assert (resolved.max_new_tokens, resolved.repetition_penalty) == (3, 1.3)
    assert resolved.pad_token_id == tokenizer.pad_token_id


def test_from_pretrained_refuses_a_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"config\.json"):
        ReportModel.from_pretrained(tmp_path)


def test_from_pretrained_names_an_unusable_generation_config(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    tiny_model(tokenizer).save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "generation_config.json").write_text('{"max_new_tokens": 0}')

    with pytest.raises(InputError, match=r"generation_config\.json.*max_new_tokens"):
        ReportModel.from_pretrained(tmp_path / "model")


def test_model_needs_a_tokenizer() -> None:
    with pytest.raises(ValueError, match="tokenizer"):
        ReportModel()


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
def test_bf16_autocast_forward_backward_and_generate(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind
) -> None:
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind))
    batch = make_batch(tokenizer)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(batch)
        texts = model.generate(batch, GenerationConfig(max_new_tokens=3))
    output.lm_loss.backward()

    assert output.tube_line_logits.dtype == torch.bfloat16
    assert torch.isfinite(output.lm_loss)
    assert len(texts) == 4


def side_batch(tokenizer: PreTrainedTokenizerBase, sides: list[int]) -> dict[str, torch.Tensor]:
    """Frontal images with a bright square on the left (1) or right (0), and matching reports."""
    reports = [
        "Nasogastric tube tip in the stomach.</s>" if side else "Lungs are clear.</s>"
        for side in sides
    ]
    batch = make_batch(
        tokenizer, prompts=["<s>"] * len(sides), reports=reports, present=[[1, 0, 0]] * len(sides)
    )
    batch["images"] = torch.zeros_like(batch["images"])
    for row, side in enumerate(sides):
        column = 8 if side else 40
        batch["images"][row, 0, 0, 8:24, column : column + 16] = 1.0
    return batch


@pytest.mark.parametrize("decoder_kind", DECODER_KINDS)
def test_report_depends_on_the_image(
    tokenizer: PreTrainedTokenizerBase, decoder_kind: DecoderKind
) -> None:
    """Visual tokens reach the decoder: two images with one prompt get their own reports."""
    torch.manual_seed(0)  # the initial weights and dropout must not depend on earlier tests
    model = tiny_model(tokenizer, tiny_decoder(decoder_kind))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        batch = side_batch(tokenizer, torch.randint(0, 2, (8,), generator=generator).tolist())
        optimizer.zero_grad()
        model(batch).lm_loss.backward()
        optimizer.step()

    texts = model.generate(side_batch(tokenizer, [0, 1]), GenerationConfig(max_new_tokens=32))

    assert texts == ["Lungs are clear.", "Nasogastric tube tip in the stomach."]


def test_other_image_sizes_and_studies_without_any_image(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    model = tiny_model(tokenizer).eval()
    batch = make_batch(tokenizer)
    larger = dict(
        batch, images=torch.nn.functional.interpolate(batch["images"].flatten(1, 2), size=96)
    )
    larger["images"] = larger["images"].unsqueeze(2)
    no_images = dict(batch, image_present=torch.zeros(4, 3, dtype=torch.bool))

    assert model(larger).tube_line_logits.shape == (4, 11)
    blind = model(no_images).tube_line_logits
    assert torch.allclose(blind, blind[0].expand(4, -1))  # the same missing tokens for all
