"""The report model: images + prompt -> report text, tube/line, findings and change logits.

Data flow for one batch (see `cxr.data` for how batches are made):

    images [B, 3, 1, H, W] (frontal, lateral, prior_frontal)
      -> shared ImageEncoder on the present images only -> tokens [B, 3, T, C]
      -> absent slots replaced by a learned per-slot "missing" token
      -> label heads: TubeLineHead on the frontal slot's tokens, FindingsHead on the frontal
         and lateral slots', ChangeHead comparing the frontal and prior slots'
      -> + role embedding per slot -> Connector -> visual tokens [B, V, D]
      -> grounded decoders: + the heads' calls as 23 tokens (cxr.models.grounding)
      -> TextDecoder: [prompt][visual][calls][report] (causal_lm) or cross-attention baseline

`save_pretrained` writes a folder Hugging Face tools load: config.json (cxr's own sections
plus `model_type`, `architectures` and an `auto_map` naming the folder's configuration_cxr.py and
modeling_cxr.py, copied from cxr.models.hf_remote), generation_config.json, model.safetensors
(ReportModel's own state dict names), the tokenizer files at the root (`AutoTokenizer` reads
them), and preprocessor_config.json (cxr.models.preprocessor). `from_pretrained` takes a local
folder or a Hub repo id (cxr.models.hub), rebuilds the architecture from config.json alone (no
pretrained paths are needed any more) and loads the weights with safetensors, so loading never
unpickles. A folder written before the tokenizer moved to the root (tokenizer/) still loads.
generation_config.json holds the model's decoding defaults (a Hugging Face `GenerationConfig`,
starting from `default_generation_config()`); a folder written before it existed decodes with
those defaults.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig
from transformers.utils import GENERATION_CONFIG_NAME

from cxr.data.tokenizer import load_tokenizer
from cxr.errors import InputError
from cxr.models import hf_remote, vlm
from cxr.models.config import (
    ConnectorConfig,
    DecoderConfig,
    EncoderConfig,
    HeadsConfig,
)
from cxr.models.connectors import Connector
from cxr.models.decoders import build_decoder
from cxr.models.encoders import ImageEncoder
from cxr.models.grounding import (
    CallTokens,
    HeadLogits,
    mixed_calls,
    predicted_calls,
    reference_calls,
)
from cxr.models.heads import FindingsHead, TubeLineHead, build_change_head
from cxr.models.hub import resolve_model_folder
from cxr.models.preprocessor import PREPROCESSOR_CONFIG_FILE, preprocessor_config
from cxr.types import IMAGE_SLOTS, TUBE_LINE_LABELS

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = GENERATION_CONFIG_NAME
WEIGHTS_FILE = "model.safetensors"
ADAPTER_DIR = "decoder_adapter"  # peft's adapter folder of an adapter-only model folder
LANGUAGE_MODEL_PREFIX = "text_decoder.language_model."
# Where folders written before the tokenizer moved to the root keep it.
LEGACY_TOKENIZER_DIR = "tokenizer"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
FORMAT = "cxr-report-model"
# Version 2: findings head, comparing change head, grounded decoder.
FORMAT_VERSION = 2

_FRONTAL = IMAGE_SLOTS.index("frontal")
_LATERAL = IMAGE_SLOTS.index("lateral")
_PRIOR = IMAGE_SLOTS.index("prior_frontal")


def default_generation_config() -> GenerationConfig:
    """The decoding defaults of a report model: greedy, at most 160 new tokens, KV cache on.

    The one place these are decided: a new model starts with them, `save_pretrained` writes
    them to generation_config.json, and a folder without that file decodes with them.
    Sampling settings are neutral (temperature and top_p 1.0) until `do_sample` is true.
    """
    return GenerationConfig(
        max_new_tokens=160,
        do_sample=False,
        num_beams=1,
        temperature=1.0,
        top_p=1.0,
        repetition_penalty=1.0,
        use_cache=True,
    )


def given_fields(generation_config: GenerationConfig | None) -> dict[str, object]:
    """The decoding fields a GenerationConfig sets (those it leaves None are unset): what
    replaces a model folder's own settings, for cxr's models and every other backend."""
    if generation_config is None:
        return {}
    return {
        name: value
        for name, value in generation_config.to_diff_dict().items()
        if name != "transformers_version" and not name.startswith("_")
    }


@dataclass
class ReportModelOutput:
    """What one forward pass gives.

    Attributes:
        lm_loss: Mean cross-entropy over the report tokens of the batch (0 with a graph
            when no study has a report).
        tube_line_logits: [B, 11] in TUBE_LINE_LABELS order.
        observation_logits: [B, 14] in OBSERVATIONS order.
        change_logits: [B, 5, 3]: CHANGE_FINDINGS x (improving, stable, worsening).
        change_available: [B] bool, the study has both a current frontal and a prior.
        report_token_count: Number of report tokens lm_loss averages over.
    """

    lm_loss: torch.Tensor
    tube_line_logits: torch.Tensor
    observation_logits: torch.Tensor
    change_logits: torch.Tensor
    change_available: torch.Tensor
    report_token_count: torch.Tensor


@dataclass
class LabelPredictions:
    """The label heads' probabilities for a batch.

    Attributes:
        tube_line: [B, 11] in TUBE_LINE_LABELS order.
        observations: [B, 14] in OBSERVATIONS order.
        change: [B, 5, 3] (CHANGE_FINDINGS x Change), NaN for studies without a prior (or
            without a frontal image).
    """

    tube_line: torch.Tensor
    observations: torch.Tensor
    change: torch.Tensor


class ReportModel(nn.Module):
    """Writes the report, judges tube/line placement, calls findings and detects change.

    Args:
        encoder: Image encoder settings (timm model, local weights, freezing).
        connector: How image tokens become the decoder's visual tokens.
        decoder: Text decoder settings (built from config or loaded from a local path).
        heads: Tube/line, findings and change head settings.
        tokenizer: The report tokenizer (a Hugging Face tokenizer with pad and eos tokens);
            injected by the caller, it is saved with the model.

    Attributes:
        generation_config: The decoding defaults that `generate` uses for every field a caller
            leaves unset; saved as generation_config.json. Starts as
            `default_generation_config()`.
    """

    def __init__(
        self,
        encoder: EncoderConfig | None = None,
        connector: ConnectorConfig | None = None,
        decoder: DecoderConfig | None = None,
        heads: HeadsConfig | None = None,
        tokenizer: Any = None,
    ) -> None:
        super().__init__()
        if tokenizer is None:
            raise ValueError(
                "ReportModel needs a tokenizer (see cxr.data.tokenizer.load_tokenizer)"
            )
        self.encoder_config = encoder or EncoderConfig()
        self.connector_config = connector or ConnectorConfig()
        self.decoder_config = decoder or DecoderConfig()
        self.heads_config = heads or HeadsConfig()
        if len(self.heads_config.tube_line_thresholds) != len(TUBE_LINE_LABELS):
            raise ValueError(f"heads.tube_line_thresholds needs {len(TUBE_LINE_LABELS)} values")
        self.tokenizer = tokenizer
        self.generation_config = default_generation_config()
        self.image_encoder = ImageEncoder(self.encoder_config)
        # As built: a vision-language model's tower brings its own pixel normalisation.
        self.encoder_config = self.image_encoder.config
        self.text_decoder = build_decoder(self.decoder_config, tokenizer)
        feature_dim = self.image_encoder.feature_dim
        self.role_embedding = nn.Parameter(torch.randn(len(IMAGE_SLOTS), feature_dim) * 0.02)
        self.missing_image = nn.Parameter(torch.randn(len(IMAGE_SLOTS), feature_dim) * 0.02)
        self.connector = Connector(
            self.connector_config, feature_dim, self.text_decoder.hidden_size
        )
        self.tube_line_head = TubeLineHead(self.heads_config, feature_dim)
        self.findings_head = FindingsHead(self.heads_config, feature_dim)
        self.change_head = build_change_head(self.heads_config, feature_dim)
        self.call_tokens = (
            CallTokens(self.text_decoder.hidden_size) if self.decoder_config.grounded else None
        )

    # ----------------------------------------------------------------- images

    def encode_images(self, images: torch.Tensor, image_present: torch.Tensor) -> torch.Tensor:
        """Tokens [B, 3, T, C] of every slot; absent slots hold their learned missing token."""
        batch_size, slots = images.shape[:2]
        flat_images = images.flatten(0, 1)
        present = image_present.bool().flatten()
        if bool(present.any()):
            # Only present images go through the encoder; absent slots are filled below.
            encoded = self.image_encoder(flat_images[present])
            tokens = encoded.new_zeros(batch_size * slots, *encoded.shape[1:])
            tokens = tokens.index_put((present.nonzero().squeeze(1),), encoded)
        else:
            encoder = self.image_encoder
            tokens = self.missing_image.new_zeros(
                batch_size * slots, encoder.num_tokens, encoder.feature_dim
            )
        num_tokens, feature_dim = tokens.shape[1:]
        missing = self.missing_image.repeat(batch_size, 1).unsqueeze(1).to(tokens.dtype)
        tokens = torch.where(present[:, None, None], tokens, missing)
        return tokens.view(batch_size, slots, num_tokens, feature_dim)

    def visual_tokens(self, slot_tokens: torch.Tensor) -> torch.Tensor:
        """Decoder-width visual tokens [B, V, D] of the slot tokens [B, 3, T, C]."""
        with_roles = slot_tokens + self.role_embedding[None, :, None, :].to(slot_tokens.dtype)
        return self.connector(with_roles.flatten(1, 2))

    def head_logits(self, slot_tokens: torch.Tensor, image_present: torch.Tensor) -> HeadLogits:
        """The label heads' logits of slot tokens [B, 3, T, C] (from `encode_images`)."""
        frontal, prior = slot_tokens[:, _FRONTAL], slot_tokens[:, _PRIOR]
        study = torch.cat([frontal, slot_tokens[:, _LATERAL]], dim=1)
        present = image_present.bool()
        return HeadLogits(
            tube_line=self.tube_line_head(frontal),
            observations=self.findings_head(study),
            change=self.change_head(frontal, prior),
            change_available=present[:, _FRONTAL] & present[:, _PRIOR],
        )

    def decoder_inputs(self, slot_tokens: torch.Tensor, calls: Any = None) -> torch.Tensor:
        """What the decoder reads besides the text: visual tokens [B, V, D], then, for a
        grounded decoder, the `calls`' tokens (cxr.models.grounding)."""
        visual = self.visual_tokens(slot_tokens)
        if self.call_tokens is None:
            return visual
        return torch.cat([visual, self.call_tokens(calls).to(visual.dtype)], dim=1)

    # ------------------------------------------------------------------ train

    def forward(self, batch: Batch, replace_probability: float = 0.0) -> ReportModelOutput:
        """Report LM loss and label logits of a collated batch (see cxr.data.collate).

        A grounded decoder reads the reference calls where labels are known, each replaced
        by the heads' own call with `replace_probability`, and the heads' calls elsewhere
        (see cxr.models.grounding).
        """
        slot_tokens = self.encode_images(batch["images"], batch["image_present"])
        heads = self.head_logits(slot_tokens, batch["image_present"])
        calls = None
        if self.call_tokens is not None:
            calls = mixed_calls(
                reference_calls(batch, heads.change_available),
                predicted_calls(heads, self.tube_line_thresholds),
                replace_probability,
            )
        lm_loss, token_count = self._report_loss(batch, self.decoder_inputs(slot_tokens, calls))
        return ReportModelOutput(
            lm_loss=lm_loss,
            tube_line_logits=heads.tube_line,
            observation_logits=heads.observations,
            change_logits=heads.change,
            change_available=heads.change_available,
            report_token_count=token_count,
        )

    def _report_loss(self, batch: Batch, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over report tokens whose mask is 1, and their count."""
        report_mask = batch["report_mask"]
        rows = report_mask.bool().any(dim=1).nonzero().squeeze(1)
        if rows.numel() == 0:
            # Keep the decoder in the graph (DDP expects every parameter to get a gradient).
            rows = rows.new_zeros(1)
        prompt_ids, prompt_mask = _trim_left_padding(
            batch["prompt_ids"][rows], batch["prompt_mask"][rows]
        )
        report_ids, report_mask = _trim_right_padding(batch["report_ids"][rows], report_mask[rows])
        logits = self.text_decoder.report_logits(
            self.text_decoder.embed(prompt_ids),
            prompt_mask,
            visual[rows],
            self.text_decoder.embed(report_ids),
            report_mask,
        )
        token_loss = F.cross_entropy(
            logits.float().flatten(0, 1), report_ids.flatten(), reduction="none"
        )
        weights = report_mask.flatten().to(token_loss.dtype)
        token_count = weights.sum()
        return (token_loss * weights).sum() / token_count.clamp(min=1.0), token_count

    # -------------------------------------------------------------- inference

    @torch.no_grad()
    def predict_labels(
        self, batch: Batch, slot_tokens: torch.Tensor | None = None
    ) -> LabelPredictions:
        """The label heads' probabilities, without the decoder.

        Change probabilities of studies without a prior (or without a frontal) are NaN.
        `slot_tokens` (from `encode_images`) saves encoding the images again.
        """
        if slot_tokens is None:
            slot_tokens = self.encode_images(batch["images"], batch["image_present"])
        return _probabilities(self.head_logits(slot_tokens, batch["image_present"]))

    @property
    def tube_line_thresholds(self) -> torch.Tensor:
        """Per-label probability thresholds [11] from the heads config."""
        return torch.tensor(self.heads_config.tube_line_thresholds)

    @torch.no_grad()
    def generate_ids(
        self,
        batch: Batch,
        generation_config: GenerationConfig | None = None,
        slot_tokens: torch.Tensor | None = None,
        heads: HeadLogits | None = None,
    ) -> torch.Tensor:
        """Generated report token ids [B, n] (padded with the pad token after eos).

        `generation_config` is resolved by `resolve_generation_config`: None decodes with the
        model's own defaults. `slot_tokens` (from `encode_images`) and `heads` (from
        `head_logits`) save computing them again. A grounded decoder reads the heads' own
        calls, never references.
        """
        resolved = self.resolve_generation_config(generation_config)
        was_training = self.training
        self.eval()
        try:
            if slot_tokens is None:
                slot_tokens = self.encode_images(batch["images"], batch["image_present"])
            calls = None
            if self.call_tokens is not None:
                if heads is None:
                    heads = self.head_logits(slot_tokens, batch["image_present"])
                calls = predicted_calls(heads, self.tube_line_thresholds)
            prompt_ids, prompt_mask = _trim_left_padding(batch["prompt_ids"], batch["prompt_mask"])
            return self.text_decoder.generate_ids(
                self.text_decoder.embed(prompt_ids),
                prompt_mask,
                self.decoder_inputs(slot_tokens, calls),
                resolved,
            )
        finally:
            self.train(was_training)

    def generate(
        self,
        batch: Batch,
        generation_config: GenerationConfig | None = None,
        slot_tokens: torch.Tensor | None = None,
    ) -> list[str]:
        """Report texts of a batch, decoded as `generation_config` says (see `generate_ids`).

        With the default settings decoding is greedy, and a study's report does not depend on
        which other studies share the batch.
        """
        return self._decode(self.generate_ids(batch, generation_config, slot_tokens))

    @torch.no_grad()
    def predict(
        self, batch: Batch, generation_config: GenerationConfig | None = None
    ) -> tuple[list[str], LabelPredictions]:
        """Report texts and label probabilities of a batch, the images encoded and the heads
        run once for both (the reports of a grounded decoder follow these very heads)."""
        was_training = self.training
        self.eval()
        try:
            slot_tokens = self.encode_images(batch["images"], batch["image_present"])
            heads = self.head_logits(slot_tokens, batch["image_present"])
            token_ids = self.generate_ids(batch, generation_config, slot_tokens, heads)
            return self._decode(token_ids), _probabilities(heads)
        finally:
            self.train(was_training)

    def _decode(self, token_ids: torch.Tensor) -> list[str]:
        texts = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
        return [text.strip() for text in texts]

    def resolve_generation_config(
        self, generation_config: GenerationConfig | None = None
    ) -> GenerationConfig:
        """The complete decoding settings `generate` uses for `generation_config`.

        The fields `generation_config` sets replace the model's own (`self.generation_config`);
        the fields it leaves unset (None) keep them, as Hugging Face `generate` does with a
        model's generation_config.json. The pad, eos and bos token ids are always the
        tokenizer's: they are facts of the vocabulary, not decoding options.
        """
        resolved = copy.deepcopy(self.generation_config)
        resolved.update(**given_fields(generation_config))
        resolved.update(
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        return resolved

    # ------------------------------------------------------------ persistence

    def config_dict(self) -> dict[str, Any]:
        """The JSON-ready configuration that rebuilds this architecture without external files."""
        encoder = replace(self.encoder_config, weights=None, hf_path=None)
        hf_encoder_config = self.image_encoder.hf_config
        if hf_encoder_config is not None:
            encoder = replace(
                encoder,
                hf_model_type=hf_encoder_config.model_type,
                hf_arch=_hf_arch(hf_encoder_config),
            )
        language_model_config = self.text_decoder.language_model.config
        decoder = replace(
            self.decoder_config,
            path=None,
            model_type=language_model_config.model_type,
            arch=_hf_arch(language_model_config),
        )
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "encoder": _jsonable(asdict(encoder)),
            "connector": _jsonable(asdict(self.connector_config)),
            "decoder": _jsonable(asdict(decoder)),
            "heads": _jsonable(asdict(self.heads_config)),
        }

    def save_pretrained(self, directory: str | Path) -> Path:
        """Writes config.json, generation_config.json, model.safetensors, the tokenizer files,
        preprocessor_config.json and the Hugging Face remote code (see the module docstring).

        Hugging Face refuses to write a generation config whose settings contradict each
        other (e.g. a temperature without `do_sample`), so a saved folder decodes as it says.
        """
        return self._save(Path(directory), self.config_dict(), adapter_base=None)

    def save_adapter_folder(self, directory: str | Path, base_model: str | Path) -> Path:
        """Writes the folder of `save_pretrained` without the language model's own weights:
        its LoRA adapters go to decoder_adapter/ as peft writes them (adapter_config.json +
        adapter_model.safetensors, loadable with `PeftModel.from_pretrained` onto the base
        model), model.safetensors holds the rest (encoder, connector, heads), and config.json
        names `base_model`, the local folder of the base language model, which loading reads
        (for a vision-language model's language model, that model's folder).
        """
        base_model = Path(base_model)
        if not is_adapted(self):
            raise InputError("--adapter_only", "the model's decoder has no LoRA adapters")
        base_config = base_model / CONFIG_FILE
        if not base_config.is_file():
            raise InputError(base_model, "not a Hugging Face model folder (no config.json)")
        expected = self.text_decoder.language_model.config.model_type
        found = json.loads(base_config.read_text()).get("model_type")
        if vlm.language_model_type(found) != expected:
            raise InputError(
                base_model, f"a {found} model; the adapters were trained on {expected}"
            )
        config = self.config_dict()
        config["decoder"] = {**config["decoder"], "path": str(base_model.resolve())}
        return self._save(Path(directory), config, adapter_base=base_model.resolve())

    def _save(self, directory: Path, record: dict[str, Any], adapter_base: Path | None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        config = {**hf_remote.hub_config_fields(), **record}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        self.generation_config.save_pretrained(directory)
        if adapter_base is None:
            safetensors.torch.save_model(self, str(directory / WEIGHTS_FILE))
        else:
            language_model = self.text_decoder.language_model
            language_model.peft_config["default"].base_model_name_or_path = str(adapter_base)
            language_model.save_pretrained(str(directory / ADAPTER_DIR))
            # The embeddings stay with the rest: cxr may have grown them for its tokenizer
            # (a pad token the base lacks), which the base folder's weights do not hold.
            embeddings = {
                id(module.weight)
                for module in (
                    language_model.get_input_embeddings(),
                    language_model.get_output_embeddings(),
                )
                if module is not None
            }
            rest: dict[str, torch.Tensor] = {}
            seen: set[int] = set()  # a tied output embedding is the input one: saved once
            for name, tensor in self.state_dict(keep_vars=True).items():
                kept = not name.startswith(LANGUAGE_MODEL_PREFIX) or id(tensor) in embeddings
                if kept and id(tensor) not in seen:
                    seen.add(id(tensor))
                    rest[name] = tensor.detach().contiguous()
            safetensors.torch.save_file(rest, str(directory / WEIGHTS_FILE))
        self.tokenizer.save_pretrained(str(directory))
        preprocessor = preprocessor_config(self.encoder_config)
        (directory / PREPROCESSOR_CONFIG_FILE).write_text(json.dumps(preprocessor, indent=2) + "\n")
        hf_remote.write_remote_code(directory)
        log.info("model saved to %s", directory)
        return directory

    @staticmethod
    def tokenizer_folder(directory: Path) -> Path:
        """Where a saved folder keeps its tokenizer: the root, or tokenizer/ in older folders."""
        if (directory / TOKENIZER_CONFIG_FILE).is_file():
            return directory
        return directory / LEGACY_TOKENIZER_DIR

    @classmethod
    def from_config(
        cls, config: dict[str, Any], tokenizer: Any, source: str | Path = "config"
    ) -> ReportModel:
        """A model with random weights from a `config_dict()` record; `source` names it in errors."""
        source = Path(source)
        if config.get("format") != FORMAT:
            raise InputError(source, f"expected format {FORMAT} version {FORMAT_VERSION}")
        if config.get("version") != FORMAT_VERSION:
            raise InputError(
                source,
                f"a {FORMAT} version {config.get('version')} folder; this cxr reads version "
                f"{FORMAT_VERSION} (its model has a findings head and a grounded decoder): "
                "train again, or generate with the cxr release that wrote the folder",
            )
        return cls(
            encoder=_dataclass_from_dict(EncoderConfig, config["encoder"], source),
            connector=_dataclass_from_dict(ConnectorConfig, config["connector"], source),
            decoder=_dataclass_from_dict(DecoderConfig, config["decoder"], source),
            heads=_dataclass_from_dict(HeadsConfig, config["heads"], source),
            tokenizer=tokenizer,
        )

    @classmethod
    def from_pretrained(
        cls, source: str | Path, device: str | torch.device = "cpu", revision: str | None = None
    ) -> ReportModel:
        """Loads a `save_pretrained` folder (never unpickles); the model is in eval mode.

        Args:
            source: A local folder, or a Hugging Face Hub repo id (`org/name`), resolved by
                `huggingface_hub.snapshot_download` (offline: from the local hub cache).
            device: Torch device the weights load onto.
            revision: Branch, tag or commit of a Hub repo id.

        A folder without generation_config.json (written before models had one) gets
        `default_generation_config()`.
        """
        directory = resolve_model_folder(source, revision)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise InputError(directory, f"not a saved report model (no {CONFIG_FILE})")
        config = json.loads(config_path.read_text())
        tokenizer = load_tokenizer(cls.tokenizer_folder(directory))
        model = cls.from_config(config, tokenizer, config_path)
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise InputError(directory, f"no {WEIGHTS_FILE}")
        if (directory / ADAPTER_DIR).is_dir():
            _load_adapter_folder(model, directory)
        else:
            safetensors.torch.load_model(model, str(weights_path), strict=True, device=str(device))
        if (directory / GENERATION_CONFIG_FILE).is_file():
            model.generation_config = _load_generation_config(directory)
        else:
            log.info("%s has no %s: default decoding settings", directory, GENERATION_CONFIG_FILE)
        return model.to(device).eval()


def is_adapted(model: ReportModel) -> bool:
    """Whether the model's language model carries peft adapters."""
    from peft import PeftModel

    return isinstance(model.text_decoder.language_model, PeftModel)


def merge_adapters(model: ReportModel) -> ReportModel:
    """The model with its LoRA adapters merged into the language model's weights (peft's
    `merge_and_unload`) and no LoRA in its config: its folder loads and runs without peft."""
    if not is_adapted(model):
        raise InputError("--merge_lora", "the model's decoder has no LoRA adapters")
    merged = cast(Any, model.text_decoder.language_model).merge_and_unload()
    model.text_decoder.language_model = merged
    model.decoder_config = replace(model.decoder_config, lora=None)
    return model


def _load_adapter_folder(model: ReportModel, directory: Path) -> None:
    """Weights of a `save_adapter_folder` folder: the base language model came from the folder
    config.json names (built by `from_config`), the adapters from decoder_adapter/, the rest
    from model.safetensors."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    rest = safetensors.torch.load_file(str(directory / WEIGHTS_FILE))
    missing, unexpected = model.load_state_dict(rest, strict=False)
    unloaded = [name for name in missing if not name.startswith(LANGUAGE_MODEL_PREFIX)]
    if unloaded or unexpected:
        raise InputError(
            directory / WEIGHTS_FILE,
            f"weights do not match the model: missing {unloaded[:5]}, unexpected {unexpected[:5]}",
        )
    adapters = load_peft_weights(str(directory / ADAPTER_DIR), device="cpu")
    result = set_peft_model_state_dict(model.text_decoder.language_model, adapters)
    unexpected_adapters = list(getattr(result, "unexpected_keys", []))
    if unexpected_adapters:
        raise InputError(directory / ADAPTER_DIR, f"unexpected weights {unexpected_adapters[:5]}")


def _probabilities(heads: HeadLogits) -> LabelPredictions:
    change = heads.change.float().softmax(dim=-1)
    return LabelPredictions(
        tube_line=heads.tube_line.float().sigmoid(),
        observations=heads.observations.float().sigmoid(),
        change=change.masked_fill(~heads.change_available[:, None, None], float("nan")),
    )


def _load_generation_config(directory: Path) -> GenerationConfig:
    try:
        return GenerationConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as error:
        # OSError: not JSON; ValueError: a value Hugging Face rejects (e.g. max_new_tokens 0).
        raise InputError(directory / GENERATION_CONFIG_FILE, str(error)) from error


def _trim_left_padding(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drops leading columns that are padding in every row (keeps at least one column)."""
    used = mask.bool().any(dim=0)
    first = int(used.float().argmax()) if bool(used.any()) else ids.shape[1] - 1
    return ids[:, first:], mask[:, first:]


def _trim_right_padding(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drops trailing columns that are padding in every row (keeps at least one column)."""
    used = mask.bool().any(dim=0)
    last = int(used.nonzero().max()) if bool(used.any()) else 0
    return ids[:, : last + 1], mask[:, : last + 1]


_HF_BOOKKEEPING = (
    "model_type",
    "transformers_version",
    "architectures",
    "_name_or_path",
    "dtype",
    "torch_dtype",
)


def _hf_arch(hf_config: Any) -> dict[str, Any]:
    """The fields of a Hugging Face config that differ from its defaults, minus bookkeeping."""
    arch = hf_config.to_diff_dict()
    return {key: value for key, value in arch.items() if key not in _HF_BOOKKEEPING}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _dataclass_from_dict(cls: type, data: dict[str, Any], path: Path) -> Any:
    """Builds config dataclass `cls` from saved JSON, turning strings back into Enums."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(path, f"unknown {cls.__name__} fields {sorted(unknown)}")
    return cls(**{name: _typed(hints[name], value, path) for name, value in data.items()})


def _typed(hint: Any, value: Any, path: Path) -> Any:
    if value is None:
        return None
    if get_origin(hint) is Union or type(hint).__name__ == "UnionType":
        for option in get_args(hint):
            if option is not type(None):
                return _typed(option, value, path)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and is_dataclass(hint):
        return _dataclass_from_dict(hint, value, path)
    return value
