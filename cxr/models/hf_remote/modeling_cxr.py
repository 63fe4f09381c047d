"""The Hugging Face model of a cxr report model folder (`AutoModel`, trust_remote_code).

`ReportModel.save_pretrained` copies this file verbatim into the model folder, where
config.json's `auto_map` names it; it imports the installed `cxr` package and wraps a
`ReportModel`, which stays a plain `nn.Module`.

Why `from_pretrained` delegates to `ReportModel.from_pretrained` instead of letting
transformers load the weights: transformers' loader builds the model on the meta device and
matches the checkpoint's tensor names against the wrapper's own (`report_model.` + ...).
`ReportModel.__init__` needs the folder's tokenizer and runs a probe forward through the image
encoder to size its tokens, and model.safetensors is named by ReportModel's own state dict (what
cxr has always written, and what `cxr generate` reads). Delegating keeps one loader: the same
strict safetensors load (never unpickling), the same generation_config.json handling and the
same old-layout support, so this model's outputs are ReportModel's by construction, and the
file's tensor names stay ReportModel's. `save_pretrained` delegates for the same reason, so a
folder saved from here is a cxr folder again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, PreTrainedModel

from cxr.models.report_model import LabelPredictions, ReportModel, ReportModelOutput

from .configuration_cxr import CxrReportConfig

# Keyword arguments of `AutoModel.from_pretrained` that concern finding the files, which
# ReportModel's own resolution (cxr.models.hub) does, or that carry no meaning for this model.
_HUB_OPTIONS = frozenset(
    {
        "cache_dir",
        "force_download",
        "local_files_only",
        "proxies",
        "token",
        "code_revision",
        "subfolder",
        "trust_remote_code",
        "use_safetensors",
    }
)


class CxrReportModel(PreTrainedModel):
    """A cxr `ReportModel` as a Hugging Face model; every method delegates to `report_model`.

    Args:
        config: The folder's config.json (CxrReportConfig).
        report_model: The loaded ReportModel; None builds one with random weights from
            `config`, the tokenizer read from the folder `config.name_or_path` names.
    """

    config_class = CxrReportConfig
    base_model_prefix = "report_model"
    main_input_name = "images"

    def __init__(self, config: CxrReportConfig, report_model: ReportModel | None = None) -> None:
        super().__init__(config)
        if report_model is None:
            report_model = _random_report_model(config)
        self.report_model = report_model
        self.generation_config = report_model.generation_config

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | Path,
        *model_args: Any,
        config: CxrReportConfig | None = None,
        revision: str | None = None,
        device: str | torch.device = "cpu",
        **kwargs: Any,
    ) -> CxrReportModel:
        """The model of a cxr folder or Hub repo id, loaded by `ReportModel.from_pretrained`."""
        from cxr.models.hub import resolve_model_folder

        # AutoModel passes its PEFT look-up as adapter_kwargs; a found adapter is named there.
        adapter = (kwargs.pop("adapter_kwargs", None) or {}).get("_adapter_model_path")
        if adapter is not None:
            raise TypeError(f"{adapter}: PEFT adapters over a cxr model are not supported")
        unsupported = sorted(k for k in kwargs if k not in _HUB_OPTIONS and not k.startswith("_"))
        if model_args or unsupported:
            raise TypeError(f"{cls.__name__}.from_pretrained does not take {unsupported}")
        folder = resolve_model_folder(pretrained_model_name_or_path, revision)
        if config is None:
            config = CxrReportConfig.from_pretrained(folder)
        report_model = ReportModel.from_pretrained(folder, device=device)
        return cls(config, report_model).eval()

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:  # type: ignore[override]
        """Writes the cxr folder (`ReportModel.save_pretrained`); other options do not apply."""
        self.report_model.save_pretrained(save_directory)

    @property
    def tokenizer(self) -> Any:
        """The report tokenizer."""
        return self.report_model.tokenizer

    def forward(
        self,
        batch: dict[str, torch.Tensor] | None = None,
        replace_probability: float = 0.0,
        **tensors: torch.Tensor,
    ) -> ReportModelOutput:
        """`ReportModel.forward` of a collated batch (as one dict or as keyword tensors)."""
        return self.report_model({**(batch or {}), **tensors}, replace_probability)

    def generate(
        self,
        batch: dict[str, torch.Tensor],
        generation_config: GenerationConfig | None = None,
    ) -> list[str]:
        """Report texts of a batch (`ReportModel.generate`)."""
        return self.report_model.generate(batch, generation_config)

    def generate_ids(
        self,
        batch: dict[str, torch.Tensor],
        generation_config: GenerationConfig | None = None,
    ) -> torch.Tensor:
        """Generated report token ids (`ReportModel.generate_ids`)."""
        return self.report_model.generate_ids(batch, generation_config)

    def predict(
        self,
        batch: dict[str, torch.Tensor],
        generation_config: GenerationConfig | None = None,
    ) -> tuple[list[str], LabelPredictions]:
        """Report texts and label probabilities (`ReportModel.predict`)."""
        return self.report_model.predict(batch, generation_config)

    def predict_labels(self, batch: dict[str, torch.Tensor]) -> LabelPredictions:
        """The label heads' probabilities (`ReportModel.predict_labels`)."""
        return self.report_model.predict_labels(batch)


def _random_report_model(config: CxrReportConfig) -> ReportModel:
    from cxr.data.tokenizer import load_tokenizer
    from cxr.models.hub import resolve_model_folder

    if not config.name_or_path:
        raise ValueError(
            "CxrReportModel(config) needs the config of a model folder (its tokenizer is read "
            "from there): use CxrReportModel.from_pretrained(folder)"
        )
    folder = resolve_model_folder(config.name_or_path)
    tokenizer = load_tokenizer(ReportModel.tokenizer_folder(folder))
    return ReportModel.from_config(config.report_model_config(), tokenizer, folder)
