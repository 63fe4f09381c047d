"""Text decoders: a Hugging Face causal LM that reads visual tokens, built or loaded locally.

`CausalLMDecoder` places the visual tokens in the language model's input sequence:
[prompt][visual tokens][report]. `CrossAttentionDecoder` is the baseline in the style of
`VisionEncoderDecoderModel`: the sequence is [prompt][report] and every layer
cross-attends to the visual tokens. Both compute logits for the report positions only and
generate through Hugging Face `generate` with `inputs_embeds` and the KV cache, under the
sentence constraints of `cxr.models.decoding` when the config asks for them. The language
model of a Gemma3 or Qwen2.5-VL folder is loaded as a standard causal LM (cxr.models.vlm).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationConfig,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

from cxr.errors import InputError
from cxr.models import vlm
from cxr.models.config import DecoderConfig, DecoderKind, LoraSettings
from cxr.models.decoding import sentence_constraints

log = logging.getLogger(__name__)


class TextDecoder(nn.Module):
    """A Hugging Face causal LM with the visual tokens as extra input.

    Args:
        language_model: The causal LM.
        constraints: Logits processors every `generate_ids` call decodes under (built once,
            e.g. by `cxr.models.decoding.sentence_constraints`); None decodes without.
    """

    def __init__(
        self, language_model: PreTrainedModel, constraints: LogitsProcessorList | None = None
    ) -> None:
        super().__init__()
        self.language_model = language_model
        self.constraints = constraints if constraints is not None else LogitsProcessorList()
        parameters = inspect.signature(language_model.forward).parameters
        self._keeps_logits = "logits_to_keep" in parameters

    @property
    def hidden_size(self) -> int:
        return _embeddings(self.language_model).embedding_dim

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings [B, T, D] of token ids [B, T]."""
        return _embeddings(self.language_model)(token_ids)

    def _logits_of_last(self, count: int, **inputs: Any) -> torch.Tensor:
        """Logits of the last `count` positions of the sequence."""
        if self._keeps_logits:
            inputs["logits_to_keep"] = count
        logits = self.language_model(**inputs, use_cache=False).logits
        return logits[:, -count:]

    def report_logits(
        self,
        prompt_embeds: torch.Tensor,
        prompt_mask: torch.Tensor,
        visual_tokens: torch.Tensor,
        report_embeds: torch.Tensor,
        report_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Logits [B, Tr, vocab]; position t predicts report token t."""
        raise NotImplementedError

    def generate_ids(
        self,
        prompt_embeds: torch.Tensor,
        prompt_mask: torch.Tensor,
        visual_tokens: torch.Tensor,
        generation_config: GenerationConfig,
    ) -> torch.Tensor:
        """New token ids [B, n] after the prompt (and visual tokens)."""
        raise NotImplementedError


def _embeddings(language_model: PreTrainedModel) -> nn.Embedding:
    return cast(nn.Embedding, language_model.get_input_embeddings())


def _position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding: the first real token is position 0."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


class CausalLMDecoder(TextDecoder):
    """Sequence [prompt][visual tokens][report] through a decoder-only language model."""

    def report_logits(
        self,
        prompt_embeds: torch.Tensor,
        prompt_mask: torch.Tensor,
        visual_tokens: torch.Tensor,
        report_embeds: torch.Tensor,
        report_mask: torch.Tensor,
    ) -> torch.Tensor:
        visual_mask = prompt_mask.new_ones(visual_tokens.shape[:2])
        embeds = torch.cat(
            [prompt_embeds, visual_tokens.to(prompt_embeds.dtype), report_embeds], dim=1
        )
        mask = torch.cat([prompt_mask, visual_mask, report_mask], dim=1)
        report_length = report_embeds.shape[1]
        logits = self._logits_of_last(
            report_length + 1,
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=_position_ids(mask),
        )
        return logits[:, :-1]

    def generate_ids(
        self,
        prompt_embeds: torch.Tensor,
        prompt_mask: torch.Tensor,
        visual_tokens: torch.Tensor,
        generation_config: GenerationConfig,
    ) -> torch.Tensor:
        visual_mask = prompt_mask.new_ones(visual_tokens.shape[:2])
        embeds = torch.cat([prompt_embeds, visual_tokens.to(prompt_embeds.dtype)], dim=1)
        mask = torch.cat([prompt_mask, visual_mask], dim=1)
        return self.language_model.generate(  # type: ignore[operator]
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=_position_ids(mask),
            generation_config=generation_config,
            logits_processor=self.constraints,
        )


class CrossAttentionDecoder(TextDecoder):
    """Sequence [prompt][report]; every layer cross-attends to the visual tokens."""

    def report_logits(
        self,
        prompt_embeds: torch.Tensor,
        prompt_mask: torch.Tensor,
        visual_tokens: torch.Tensor,
        report_embeds: torch.Tensor,
        report_mask: torch.Tensor,
    ) -> torch.Tensor:
        embeds = torch.cat([prompt_embeds, report_embeds], dim=1)
        mask = torch.cat([prompt_mask, report_mask], dim=1)
        report_length = report_embeds.shape[1]
        logits = self._logits_of_last(
            report_length + 1,
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=_position_ids(mask),
            encoder_hidden_states=visual_tokens.to(prompt_embeds.dtype),
        )
        return logits[:, :-1]

    def generate_ids(
        self,
        prompt_embeds: torch.Tensor,
        prompt_mask: torch.Tensor,
        visual_tokens: torch.Tensor,
        generation_config: GenerationConfig,
    ) -> torch.Tensor:
        return self.language_model.generate(  # type: ignore[operator]
            inputs_embeds=prompt_embeds,
            attention_mask=prompt_mask,
            position_ids=_position_ids(prompt_mask),
            encoder_hidden_states=visual_tokens.to(prompt_embeds.dtype),
            generation_config=generation_config,
            logits_processor=self.constraints,
        )


def build_decoder(config: DecoderConfig, tokenizer: PreTrainedTokenizerBase) -> TextDecoder:
    """The decoder of `config`, with its vocabulary and special tokens matching `tokenizer`."""
    cross_attention = config.kind == DecoderKind.cross_attention
    if config.path is not None:
        language_model = _load_language_model(config, cross_attention)
    else:
        language_model = _build_language_model(config, tokenizer, cross_attention)
    if cross_attention and not _has_cross_attention(language_model):
        raise InputError(
            config.path or config.model_type,
            f"{config.model_type} has no cross-attention layers; use kind causal_lm",
        )
    _match_tokenizer(language_model, tokenizer)
    if config.gradient_checkpointing:
        language_model.activation_checkpointing_enable()
    if config.lora is not None:
        language_model = _add_lora(language_model, config.lora)
    decoder_class = CrossAttentionDecoder if cross_attention else CausalLMDecoder
    constraints = sentence_constraints(tokenizer) if config.constrained_decoding else None
    return decoder_class(language_model, constraints)


def _has_cross_attention(language_model: PreTrainedModel) -> bool:
    accepts = "encoder_hidden_states" in inspect.signature(language_model.forward).parameters
    return accepts and bool(getattr(language_model.config, "add_cross_attention", False))


def _build_language_model(
    config: DecoderConfig, tokenizer: PreTrainedTokenizerBase, cross_attention: bool
) -> PreTrainedModel:
    special = {
        # A pretrained model's table may be larger than its tokenizer (padded for speed).
        "vocab_size": max(len(tokenizer), int(config.arch.get("vocab_size", 0))),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    extra = {"add_cross_attention": True} if cross_attention else {}
    hf_config = AutoConfig.for_model(config.model_type, **{**config.arch, **special, **extra})
    return AutoModelForCausalLM.from_config(hf_config, **_model_options(config))


def _load_language_model(config: DecoderConfig, cross_attention: bool) -> PreTrainedModel:
    path = Path(config.path or "")
    if not path.is_dir():
        raise InputError(
            path, "decoder path must be a local folder holding a Hugging Face causal LM"
        )
    try:
        hf_config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read the decoder's config.json: {error}") from error
    if vlm.is_vlm_config(hf_config):
        vlm_config = vlm.read_vlm_config(path)  # refuses the families cxr does not fine-tune
        if cross_attention or vlm_config is None:
            raise InputError(path, "a vision-language model's language model: use kind causal_lm")
        return vlm.load_language_model(path, vlm_config, _model_options(config))
    if cross_attention:
        # Checked before loading: the weights of a real decoder take long to read.
        forward = getattr(MODEL_FOR_CAUSAL_LM_MAPPING.get(type(hf_config), None), "forward", None)
        if forward is None or "encoder_hidden_states" not in inspect.signature(forward).parameters:
            raise InputError(
                path, f"{hf_config.model_type} has no cross-attention layers; use kind causal_lm"
            )
        hf_config.add_cross_attention = True
    kwargs = {"local_files_only": True, "config": hf_config, **_model_options(config)}
    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot load a causal language model: {error}") from error


def _model_options(config: DecoderConfig) -> dict[str, Any]:
    """The attention implementation and dtype options of `from_pretrained`."""
    options: dict[str, Any] = {}
    if config.attn_implementation is not None:
        options["attn_implementation"] = config.attn_implementation
    if config.dtype is not None:
        options["dtype"] = getattr(torch, config.dtype)
    return options


def _match_tokenizer(language_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Grows the embedding table for tokens the tokenizer added (e.g. a pad token)."""
    if len(tokenizer) > _embeddings(language_model).num_embeddings:
        language_model.resize_token_embeddings(len(tokenizer))
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        if getattr(language_model.config, name, None) is None:
            setattr(language_model.config, name, getattr(tokenizer, name))


def _add_lora(language_model: PreTrainedModel, settings: LoraSettings) -> PreTrainedModel:
    """The language model wrapped by `peft.get_peft_model` with LoRA adapters; afterwards only
    adapter weights train, and `save_pretrained` of the wrapper writes peft's adapter folder
    (adapter_config.json + adapter_model.safetensors) that `PeftModel.from_pretrained` loads
    onto the base model."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers.pytorch_utils import Conv1D

    lora_config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        # GPT-2 style Conv1D layers store their weight transposed.
        fan_in_fan_out=any(isinstance(module, Conv1D) for module in language_model.modules()),
    )
    peft_model = get_peft_model(language_model, lora_config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    log.info("decoder: LoRA r=%d, %d trainable parameters", settings.r, trainable)
    return cast(PreTrainedModel, peft_model)
