"""Gemma3 (MedGemma) and Qwen2.5-VL (Lingshu) folders as the image encoder and text decoder of a
ReportModel (cxr.models.vlm), on the tiny random folders of tests/vlm_folders.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from tiny_models import IMAGE_SIZE, make_batch, total_loss
from transformers import (
    AutoImageProcessor,
    AutoModelForImageTextToText,
    GenerationConfig,
    PreTrainedTokenizerBase,
)
from vlm_folders import build_gemma3_folder, build_qwen2_5_vl_folder

from cxr.data.tokenizer import load_tokenizer
from cxr.errors import CxrError, InputError
from cxr.models import (
    ConnectorConfig,
    ConnectorKind,
    DecoderConfig,
    EncoderConfig,
    FreezeMode,
    HeadsConfig,
    LoraSettings,
    ReportModel,
    vlm,
)
from cxr.models.encoders import ImageEncoder

# family -> (builder, the tower's input side: Gemma3's native 28 px, Qwen's 56 px = 2 x 28)
FAMILIES = {"gemma3": (build_gemma3_folder, 28), "qwen2_5_vl": (build_qwen2_5_vl_folder, 56)}


def with_random_projector(folder: Path) -> Path:
    """A random Gemma3 starts with an all-zero projection (as Hugging Face initialises it), whose
    image tokens are zeros whatever the image: give it random values, as a trained one has."""
    weights = folder / "model.safetensors"
    tensors = safetensors.torch.load_file(str(weights))
    names = [name for name in tensors if name.endswith("mm_input_projection_weight")]
    assert len(names) == 1, sorted(tensors)
    generator = torch.Generator().manual_seed(0)
    tensors[names[0]] = torch.randn(tensors[names[0]].shape, generator=generator) * 0.5
    safetensors.torch.save_file(tensors, str(weights), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    builder, _ = FAMILIES[request.param]
    built = builder(tmp_path_factory.mktemp(request.param) / "model")
    return with_random_projector(built) if request.param == "gemma3" else built


def tower_side(folder: Path) -> int:
    return FAMILIES[json.loads((folder / "config.json").read_text())["model_type"]][1]


def vlm_model(folder: Path, **encoder: Any) -> ReportModel:
    """A report model on the folder: its tower (last layer and projector train) and its language
    model with LoRA on every linear layer."""
    torch.manual_seed(0)
    encoder_options = {"freeze": FreezeMode.last_n, "trainable_blocks": 1, **encoder}
    return ReportModel(
        encoder=EncoderConfig(
            hf_path=str(folder), image_size=tower_side(folder), **encoder_options
        ),
        connector=ConnectorConfig(kind=ConnectorKind.mlp),
        decoder=DecoderConfig(
            path=str(folder), lora=LoraSettings(r=4, alpha=8, target_modules="all-linear")
        ),
        heads=HeadsConfig(hidden=32, num_heads=2),
        tokenizer=load_tokenizer(folder),
    )


def vlm_batch(tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    prompts = [bos, f"{bos}Indication: line placement.", bos, f"{bos}Comparison: prior."]
    reports = [
        f"Lungs are clear.{eos}",
        f"Endotracheal tube tip 4 cm above the carina.{eos}",
        "",
        f"Small left pleural effusion.{eos}",
    ]
    return make_batch(tokenizer, prompts, reports)


def grey_image(side: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(seed))


def test_tower_tokens_are_the_vision_language_models_image_features(folder: Path) -> None:
    """The encoder's tokens of a grey image are what the model's own image pipeline gives for
    that image as RGB: the same normalisation, patch layout and projector/merger."""
    side = tower_side(folder)
    image = grey_image(side)
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    rgb = image[0].expand(3, -1, -1).permute(1, 2, 0).numpy().astype(np.float32)
    inputs = processor(images=[rgb], do_rescale=False, do_resize=False, return_tensors="pt")
    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    grid = {"image_grid_thw": inputs["image_grid_thw"]} if "image_grid_thw" in inputs else {}
    with torch.no_grad():
        expected = model.get_image_features(inputs["pixel_values"], **grid).pooler_output
        tokens = ImageEncoder(EncoderConfig(hf_path=str(folder), image_size=side)).eval()(image)

    expected = torch.cat(list(expected)) if isinstance(expected, tuple) else expected
    assert expected.abs().min() > 0
    assert tokens.shape == (1, 4, model.config.text_config.hidden_size)
    torch.testing.assert_close(tokens.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)


def test_qwen_patches_are_laid_out_as_its_image_processor_lays_them(tmp_path: Path) -> None:
    folder = build_qwen2_5_vl_folder(tmp_path / "qwen")
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    images = torch.rand(2, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    encoder = ImageEncoder(EncoderConfig(hf_path=str(folder), image_size=56))
    tower = encoder.backbone
    assert isinstance(tower, vlm.Qwen2_5_VLTower)

    arrays = [image.permute(1, 2, 0).numpy() for image in images]
    inputs = processor(images=arrays, do_rescale=False, do_resize=False, return_tensors="pt")
    normalised = (images - encoder.pixel_mean) / encoder.pixel_std
    patches, grid = tower.patches(normalised)

    assert grid.tolist() == inputs["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 4]]
    torch.testing.assert_close(patches, inputs["pixel_values"], rtol=1e-5, atol=1e-6)


def test_normalisation_is_the_folders_image_processors(folder: Path) -> None:
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    encoder = ImageEncoder(EncoderConfig(hf_path=str(folder), pixel_mean=0.1, pixel_std=0.9))

    assert encoder.config.pixel_mean == pytest.approx(list(processor.image_mean))
    assert encoder.config.pixel_std == pytest.approx(list(processor.image_std))
    assert encoder.pixel_mean.flatten().tolist() == pytest.approx(list(processor.image_mean))


def test_language_model_computes_what_the_vision_language_model_computes(folder: Path) -> None:
    """On text alone the causal LM cxr drives gives the logits of the whole model (for Qwen2.5-VL
    a Qwen2 model: its multimodal RoPE on text positions is Qwen2's)."""
    hf_config = vlm.read_vlm_config(folder)
    assert hf_config is not None
    language_model = vlm.load_language_model(folder, hf_config, {}).eval()
    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    input_ids = torch.tensor([[5, 17, 30, 41, 9, 12], [0, 0, 8, 19, 23, 7]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
        logits = language_model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions
        ).logits

    assert type(language_model).__name__ in {"Gemma3ForCausalLM", "Qwen2ForCausalLM"}
    torch.testing.assert_close(logits[mask.bool()], expected[mask.bool()], rtol=1e-4, atol=1e-5)


def test_one_training_step_reaches_heads_lora_and_the_towers_tail_only(folder: Path) -> None:
    model = vlm_model(folder).train()
    batch = vlm_batch(model.tokenizer)

    loss = total_loss(model, batch)
    loss.backward()

    assert torch.isfinite(loss)
    grads = {name: p.grad for name, p in model.named_parameters()}
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert {name for name, grad in grads.items() if grad is not None} == trained
    # LoRA's B starts at zero, so A's first gradient is zero: every other trained weight moves.
    moved = {name for name in trained if grads[name].abs().sum() > 0}  # type: ignore[union-attr]
    assert trained - moved == {name for name in trained if "lora_A" in name}
    for part in ("tube_line_head.", "findings_head.", "change_head.", "connector."):
        assert any(name.startswith(part) for name in moved), part
    language_model = {n for n in grads if n.startswith("text_decoder.language_model.")}
    assert language_model & trained == {n for n in language_model if "lora_" in n}
    assert any("lora_B" in n for n in moved)
    tower = {n for n in grads if n.startswith("image_encoder.backbone.")}
    assert tower - trained and tower & moved  # the last block and what follows it train
    assert not any("patch_embed" in n or ".embeddings." in n for n in tower & trained)


def test_save_then_load_without_the_original_folder_gives_identical_outputs(
    folder: Path, tmp_path: Path
) -> None:
    copy = shutil.copytree(folder, tmp_path / "original")
    model = vlm_model(copy).eval()
    batch = vlm_batch(model.tokenizer)
    model.save_pretrained(tmp_path / "exported")
    shutil.rmtree(copy)  # the export must not need it any more

    loaded = ReportModel.from_pretrained(tmp_path / "exported")
    before, after = model(batch), loaded(batch)
    generation = GenerationConfig(max_new_tokens=6)

    assert str(copy) not in (tmp_path / "exported" / "config.json").read_text()
    preprocessor = json.loads((tmp_path / "exported" / "preprocessor_config.json").read_text())
    assert preprocessor["normalisation"]["channels"] == 3
    assert preprocessor["normalisation"]["pixel_mean"] == model.encoder_config.pixel_mean
    assert torch.equal(before.lm_loss, after.lm_loss)
    assert torch.equal(before.tube_line_logits, after.tube_line_logits)
    assert torch.equal(before.observation_logits, after.observation_logits)
    assert torch.equal(before.change_logits, after.change_logits)
    assert loaded.generate(batch, generation) == model.generate(batch, generation)
    assert loaded.encoder_config.pixel_mean == model.encoder_config.pixel_mean


def test_gemma3_without_its_projector_gives_siglip_patch_tokens(tmp_path: Path) -> None:
    folder = build_gemma3_folder(tmp_path / "gemma3")
    encoder = ImageEncoder(EncoderConfig(hf_path=str(folder), vlm_projector=False))

    tokens = encoder(grey_image(IMAGE_SIZE))

    assert tokens.shape == (1, 16, 32)  # 28 px / 7 px patches, SigLIP's width


def test_qwen_without_its_merger_is_refused(tmp_path: Path) -> None:
    folder = build_qwen2_5_vl_folder(tmp_path / "qwen")
    with pytest.raises(CxrError, match="vlm_projector"):
        ImageEncoder(EncoderConfig(hf_path=str(folder), vlm_projector=False))


def test_another_vision_language_family_is_refused_with_the_supported_ones(
    tmp_path: Path,
) -> None:
    from vlm_folders import build_llava_folder

    folder = build_llava_folder(tmp_path / "llava")
    with pytest.raises(InputError, match="gemma3 and qwen2_5_vl"):
        ImageEncoder(EncoderConfig(hf_path=str(folder)))


def test_adapter_folder_loads_its_language_model_from_the_vision_language_model(
    folder: Path, tmp_path: Path
) -> None:
    model = vlm_model(folder).eval()
    batch = vlm_batch(model.tokenizer)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:  # trained adapters, so that loading them back shows
                parameter.normal_(std=0.1)
    model.save_adapter_folder(tmp_path / "adapter", base_model=folder)

    loaded = ReportModel.from_pretrained(tmp_path / "adapter")

    assert (tmp_path / "adapter" / "decoder_adapter" / "adapter_model.safetensors").is_file()
    assert torch.equal(model(batch).lm_loss, loaded(batch).lm_loss)


def test_a_folder_without_its_image_processor_names_what_is_missing(
    folder: Path, tmp_path: Path
) -> None:
    copy = shutil.copytree(folder, tmp_path / "model")
    for name in ("processor_config.json", "preprocessor_config.json"):
        (copy / name).unlink(missing_ok=True)

    with pytest.raises(InputError, match="image processor") as error:
        ImageEncoder(EncoderConfig(hf_path=str(copy)))
    assert error.value.path == str(copy)


def test_a_bfloat16_checkpoints_tower_is_float32_and_its_decoder_as_configured(
    tmp_path: Path,
) -> None:
    folder = build_qwen2_5_vl_folder(tmp_path / "qwen")
    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
    model.to(torch.bfloat16).save_pretrained(folder)

    encoder = ImageEncoder(EncoderConfig(hf_path=str(folder), image_size=56))
    decoder = DecoderConfig(path=str(folder), dtype="bfloat16")
    report_model = ReportModel(
        encoder=encoder.config, decoder=decoder, tokenizer=load_tokenizer(folder)
    )

    assert {p.dtype for p in encoder.parameters()} == {torch.float32}
    assert {p.dtype for p in report_model.text_decoder.parameters()} == {torch.bfloat16}
