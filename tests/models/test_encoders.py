"""ImageEncoder: timm models, local weights in every supported format, HF vision models, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from tiny_models import IMAGE_SIZE, make_batch, tiny_encoder, tiny_model
from transformers import PreTrainedTokenizerBase, ViTConfig, ViTModel

from cxr.errors import CxrError, InputError
from cxr.models import EncoderConfig, FreezeMode, ReportModel
from cxr.models.encoders import ImageEncoder


def rgb_timm_state(name: str = "test_resnet") -> dict[str, torch.Tensor]:
    """A 3-channel timm checkpoint with its classifier, as published weights come."""
    torch.manual_seed(3)
    return timm.create_model(name, pretrained=False, num_classes=10).state_dict()


def assert_loaded(encoder: ImageEncoder, state: dict[str, torch.Tensor]) -> None:
    own = encoder.backbone.state_dict()
    assert torch.allclose(own["conv1.0.weight"], state["conv1.0.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(own["layer2.0.conv2.weight"], state["layer2.0.conv2.weight"])
    assert "fc.weight" not in own


def test_timm_tokens_are_flattened_feature_maps() -> None:
    encoder = ImageEncoder(tiny_encoder())
    tokens = encoder(torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE))

    assert tokens.shape == (2, encoder.num_tokens, encoder.feature_dim)
    assert encoder.num_tokens == (IMAGE_SIZE // 32) ** 2
    assert (
        encoder(torch.rand(2, 1, 2 * IMAGE_SIZE, 2 * IMAGE_SIZE)).shape[1] == 4 * encoder.num_tokens
    )


def test_vit_tokens_come_from_forward_features() -> None:
    encoder = ImageEncoder(
        EncoderConfig(name="test_vit", image_size=64, timm_kwargs={"img_size": 64})
    )

    assert encoder(torch.rand(1, 1, 64, 64)).shape == (1, encoder.num_tokens, encoder.feature_dim)
    assert encoder.spatial_position is None


def test_weights_from_safetensors_file_are_adapted_to_one_channel(tmp_path: Path) -> None:
    state = rgb_timm_state()
    safetensors.torch.save_file(state, str(tmp_path / "weights.safetensors"))

    encoder = ImageEncoder(tiny_encoder(weights=str(tmp_path / "weights.safetensors")))

    assert_loaded(encoder, state)


def test_weights_from_timm_pth_file(tmp_path: Path) -> None:
    state = rgb_timm_state()
    torch.save({"state_dict": state}, tmp_path / "checkpoint.pth")

    assert_loaded(ImageEncoder(tiny_encoder(weights=str(tmp_path / "checkpoint.pth"))), state)


def test_weights_from_hugging_face_style_folder(tmp_path: Path) -> None:
    state = rgb_timm_state()
    safetensors.torch.save_file(state, str(tmp_path / "model.safetensors"))

    assert_loaded(ImageEncoder(tiny_encoder(weights=str(tmp_path))), state)


def test_missing_or_mismatched_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        ImageEncoder(tiny_encoder(weights=str(tmp_path / "absent.safetensors")))
    safetensors.torch.save_file(
        rgb_timm_state("test_efficientnet"), str(tmp_path / "other.safetensors")
    )
    with pytest.raises(InputError, match=r"other\.safetensors"):
        ImageEncoder(tiny_encoder(weights=str(tmp_path / "other.safetensors")))


@pytest.fixture
def hf_vit_folder(tmp_path: Path) -> Path:
    """A tiny 3-channel Hugging Face ViT written with save_pretrained, like RAD-DINO on disk."""
    torch.manual_seed(4)
    config = ViTConfig(
        image_size=IMAGE_SIZE,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    return tmp_path / "vit"


def test_hugging_face_vision_model_from_local_folder(hf_vit_folder: Path) -> None:
    rgb_stem = safetensors.torch.load_file(str(hf_vit_folder / "model.safetensors"))[
        "embeddings.patch_embeddings.projection.weight"
    ]
    encoder = ImageEncoder(EncoderConfig(hf_path=str(hf_vit_folder), image_size=IMAGE_SIZE))
    tokens = encoder(torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE))

    assert tokens.shape == (2, 1 + (IMAGE_SIZE // 16) ** 2, 32)
    stem = encoder.backbone.embeddings.patch_embeddings.projection.weight
    assert torch.allclose(stem, rgb_stem.sum(dim=1, keepdim=True))


def test_model_with_hf_encoder_saves_and_loads_without_the_folder(
    tokenizer: PreTrainedTokenizerBase, hf_vit_folder: Path, tmp_path: Path
) -> None:
    encoder = EncoderConfig(hf_path=str(hf_vit_folder), image_size=IMAGE_SIZE)
    model = tiny_model(tokenizer, encoder=encoder).eval()
    batch = make_batch(tokenizer)
    model.save_pretrained(tmp_path / "saved")
    for file in hf_vit_folder.iterdir():
        file.unlink()

    loaded = ReportModel.from_pretrained(tmp_path / "saved")

    assert torch.equal(loaded(batch).tube_line_logits, model(batch).tube_line_logits)


def trainable(encoder: ImageEncoder) -> set[str]:
    return {name for name, p in encoder.backbone.named_parameters() if p.requires_grad}


def test_frozen_encoder_trains_nothing_and_stays_in_eval_mode() -> None:
    encoder = ImageEncoder(tiny_encoder(freeze=FreezeMode.frozen)).train()

    assert trainable(encoder) == set()
    assert not encoder.backbone.training
    assert encoder.spatial_position is not None and encoder.spatial_position.requires_grad


def test_last_n_trains_the_last_stage_of_a_cnn() -> None:
    encoder = ImageEncoder(tiny_encoder(freeze=FreezeMode.last_n, trainable_blocks=1))

    names = trainable(encoder)
    assert names and all(name.startswith("layer4.") for name in names)
    assert {n for n, _ in encoder.backbone.named_parameters() if n.startswith("layer4.")} == names


def test_last_n_trains_the_last_blocks_and_final_norm_of_a_vit() -> None:
    config = EncoderConfig(
        name="test_vit",
        image_size=64,
        timm_kwargs={"img_size": 64},
        freeze=FreezeMode.last_n,
        trainable_blocks=2,
    )
    encoder = ImageEncoder(config)
    depth = len(encoder.backbone.blocks)

    blocks = {name.split(".")[1] for name in trainable(encoder) if name.startswith("blocks.")}
    assert blocks == {str(depth - 2), str(depth - 1)}
    assert "norm.weight" in trainable(encoder)


def test_last_n_on_a_hugging_face_model(hf_vit_folder: Path) -> None:
    config = EncoderConfig(
        hf_path=str(hf_vit_folder),
        image_size=IMAGE_SIZE,
        freeze=FreezeMode.last_n,
        trainable_blocks=1,
    )
    names = trainable(ImageEncoder(config))

    assert any(name.startswith("layers.1.") for name in names)
    assert not any(name.startswith(("layers.0.", "embeddings.")) for name in names)
    assert "layernorm.weight" in names


def test_space_to_depth_reads_twice_the_side_at_the_cost_of_half() -> None:
    folded = ImageEncoder(tiny_encoder(image_size=2 * IMAGE_SIZE, space_to_depth=2))
    plain = ImageEncoder(tiny_encoder())
    image = torch.zeros(1, 1, 2 * IMAGE_SIZE, 2 * IMAGE_SIZE)
    line = image.clone()
    line[..., :, IMAGE_SIZE : IMAGE_SIZE + 2] = 1.0  # a 2-pixel vertical line

    assert folded.num_tokens == plain.num_tokens
    assert folded(image).shape == (1, plain.num_tokens, plain.feature_dim)
    # The stem sees all four pixels of each 2 x 2 block as channels: nothing is averaged.
    stem_input = torch.nn.functional.pixel_unshuffle(line, 2)
    assert stem_input.shape == (1, 4, IMAGE_SIZE, IMAGE_SIZE)
    assert set(stem_input[0, :, 0, IMAGE_SIZE // 2].tolist()) == {1.0}
    assert not torch.equal(folded(image), folded(line))


def test_space_to_depth_must_divide_the_image_size() -> None:
    with pytest.raises(CxrError, match="space_to_depth"):
        ImageEncoder(tiny_encoder(image_size=65, space_to_depth=2))
