"""Text decoders loaded from local Hugging Face folders, LoRA, and the cross-attention baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_models import make_batch, tiny_model
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from cxr.data.tokenizer import load_tokenizer
from cxr.errors import InputError
from cxr.models import DecoderConfig, DecoderKind, LoraSettings, ReportModel


@pytest.fixture
def llama_folder(tokenizer: PreTrainedTokenizerBase, tmp_path: Path) -> Path:
    """A tiny Llama and a tokenizer without a pad token, as a downloaded model folder holds them."""
    folder = tmp_path / "llama"
    without_pad = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    without_pad.save_pretrained(folder)
    torch.manual_seed(5)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def saved_weight(folder: Path, name: str) -> torch.Tensor:
    return LlamaForCausalLM.from_pretrained(folder, local_files_only=True).state_dict()[name]


def test_local_causal_lm_and_tokenizer_load_from_their_folder(
    llama_folder: Path, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(llama_folder)
    model = tiny_model(tokenizer, DecoderConfig(path=str(llama_folder)))
    language_model = model.text_decoder.language_model
    batch = make_batch(tokenizer)

    model(batch).lm_loss.backward()
    name = "model.layers.1.mlp.down_proj.weight"

    assert tokenizer.pad_token is not None
    assert language_model.config.model_type == "llama"
    assert language_model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert torch.equal(language_model.state_dict()[name], saved_weight(llama_folder, name))
    assert len(model.generate(batch, GenerationConfig(max_new_tokens=4))) == 4


def test_saved_model_no_longer_needs_the_decoder_folder(llama_folder: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(llama_folder)
    model = tiny_model(
        tokenizer, DecoderConfig(path=str(llama_folder), lora=LoraSettings(r=4))
    ).eval()
    batch = make_batch(tokenizer)
    model.save_pretrained(tmp_path / "saved")
    for file in llama_folder.iterdir():
        file.unlink()

    loaded = ReportModel.from_pretrained(tmp_path / "saved")

    assert loaded.decoder_config.path is None
    assert torch.equal(loaded(batch).lm_loss, model(batch).lm_loss)
    assert loaded.generate(batch, GenerationConfig(max_new_tokens=6)) == model.generate(
        batch, GenerationConfig(max_new_tokens=6)
    )


def test_lora_trains_only_adapters_in_the_decoder(llama_folder: Path) -> None:
    tokenizer = load_tokenizer(llama_folder)
    model = tiny_model(
        tokenizer, DecoderConfig(path=str(llama_folder), lora=LoraSettings(r=4, alpha=8))
    )
    decoder = model.text_decoder.language_model
    before = {name: p.detach().clone() for name, p in decoder.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)

    model(make_batch(tokenizer)).lm_loss.backward()
    optimizer.step()
    changed = {name for name, p in decoder.named_parameters() if not torch.equal(p, before[name])}

    trainable = {name for name, p in decoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert changed and changed <= trainable
    assert all(p.requires_grad for p in model.connector.parameters())


def test_lora_on_gpt2_built_from_config(tokenizer: PreTrainedTokenizerBase) -> None:
    decoder = DecoderConfig(arch={"n_layer": 2, "n_embd": 64, "n_head": 2}, lora=LoraSettings(r=2))
    model = tiny_model(tokenizer, decoder)

    model(make_batch(tokenizer)).lm_loss.backward()

    trainable = [n for n, p in model.text_decoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert all(
        p.grad is not None for n, p in model.text_decoder.named_parameters() if p.requires_grad
    )


def test_cross_attention_needs_a_decoder_with_cross_attention(llama_folder: Path) -> None:
    tokenizer = load_tokenizer(llama_folder)
    with pytest.raises(InputError, match="cross-attention"):
        tiny_model(
            tokenizer, DecoderConfig(kind=DecoderKind.cross_attention, path=str(llama_folder))
        )


def test_cross_attention_adds_layers_to_a_pretrained_gpt2(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    torch.manual_seed(6)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=2, n_embd=64, n_head=2, n_positions=256)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")

    model = tiny_model(
        tokenizer, DecoderConfig(kind=DecoderKind.cross_attention, path=str(tmp_path / "gpt2"))
    )
    model(make_batch(tokenizer)).lm_loss.backward()

    cross = [p for n, p in model.text_decoder.named_parameters() if ".crossattention." in n]
    assert cross and all(p.grad is not None for p in cross)


def test_missing_decoder_folder_is_an_input_error(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="local folder"):
        tiny_model(tokenizer, DecoderConfig(path=str(tmp_path / "absent")))


def test_gradient_checkpointing_gives_the_same_gradients(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    batch = make_batch(tokenizer)
    no_dropout = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    arch = {"n_layer": 2, "n_embd": 64, "n_head": 2, **no_dropout}
    gradients = []
    for checkpointing in (False, True):
        decoder = DecoderConfig(arch=arch, gradient_checkpointing=checkpointing)
        model = tiny_model(tokenizer, decoder)
        model(batch).lm_loss.backward()
        gradients.append(model.connector.norm.weight.grad)

    assert model.text_decoder.language_model.is_activation_checkpointing
    assert gradients[0] is not None and gradients[1] is not None
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6)


def _lora_model(llama_folder: Path) -> ReportModel:
    """A LoRA model on the tiny Llama whose adapters change its outputs (peft starts them at
    zero)."""
    tokenizer = load_tokenizer(llama_folder)
    model = tiny_model(tokenizer, DecoderConfig(path=str(llama_folder), lora=LoraSettings(r=4)))
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return model.eval()


def test_an_adapter_folder_loads_with_peft_onto_the_base_and_back_into_cxr(
    llama_folder: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from safetensors import safe_open

    model = _lora_model(llama_folder)
    batch = make_batch(model.tokenizer)
    folder = model.save_adapter_folder(tmp_path / "adapter", llama_folder)

    adapter = folder / "decoder_adapter"
    assert {p.name for p in adapter.iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    language_model = [k for k in names if k.startswith("text_decoder.language_model.")]
    assert all("embed" in k or "lm_head" in k for k in language_model)  # no layer weights

    # peft's own loading on the base model gives cxr's decoder outputs (the base's vocabulary).
    base = AutoModelForCausalLM.from_pretrained(llama_folder)
    with_adapters = PeftModel.from_pretrained(base, adapter).eval()
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    vocabulary = base.config.vocab_size
    expected = model.text_decoder.language_model(input_ids=ids).logits[..., :vocabulary]
    assert torch.allclose(with_adapters(input_ids=ids).logits, expected, atol=1e-5)

    loaded = ReportModel.from_pretrained(folder)
    assert torch.equal(loaded(batch).lm_loss, model(batch).lm_loss)
    assert loaded.generate(batch, GenerationConfig(max_new_tokens=5)) == model.generate(
        batch, GenerationConfig(max_new_tokens=5)
    )


def test_merged_adapters_give_a_folder_without_peft(llama_folder: Path, tmp_path: Path) -> None:
    from cxr.models.report_model import is_adapted, merge_adapters

    model = _lora_model(llama_folder)
    batch = make_batch(model.tokenizer)
    before = model(batch).lm_loss
    merge_adapters(model).save_pretrained(tmp_path / "merged")

    loaded = ReportModel.from_pretrained(tmp_path / "merged")
    assert not is_adapted(loaded) and loaded.decoder_config.lora is None
    assert not any("lora_" in name for name in loaded.state_dict())
    assert torch.allclose(loaded(batch).lm_loss, before, atol=1e-5)


def test_an_adapter_folder_needs_a_lora_model_and_the_right_base(
    llama_folder: Path, tmp_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    plain = tiny_model(tokenizer, DecoderConfig(arch={"n_layer": 1, "n_embd": 32, "n_head": 2}))
    with pytest.raises(InputError, match="no LoRA adapters"):
        plain.save_adapter_folder(tmp_path / "a", llama_folder)
    gpt2 = tiny_model(
        tokenizer,
        DecoderConfig(arch={"n_layer": 1, "n_embd": 32, "n_head": 2}, lora=LoraSettings(r=2)),
    )
    with pytest.raises(InputError, match="a llama model; the adapters were trained on gpt2"):
        gpt2.save_adapter_folder(tmp_path / "b", llama_folder)
