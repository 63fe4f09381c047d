"""The Hugging Face config of a cxr report model folder (`AutoConfig`, trust_remote_code).

`ReportModel.save_pretrained` copies this file verbatim into the model folder, where
config.json's `auto_map` names it. It holds cxr's own config.json sections (format, version,
encoder, connector, decoder, heads) as they are: `ReportModel.from_config` reads them, this class
only carries them, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

MODEL_TYPE = "cxr_report_model"


class CxrReportConfig(PretrainedConfig):
    """config.json of a cxr report model, as a Hugging Face config.

    Attributes:
        format: "cxr-report-model".
        version: The folder's format version (cxr.models.report_model.FORMAT_VERSION).
        encoder: The EncoderConfig record.
        connector: The ConnectorConfig record.
        decoder: The DecoderConfig record.
        heads: The HeadsConfig record.
    """

    model_type = MODEL_TYPE

    format: str | None = None
    version: int | None = None
    encoder: dict[str, Any] | None = None
    connector: dict[str, Any] | None = None
    decoder: dict[str, Any] | None = None
    heads: dict[str, Any] | None = None

    def get_text_config(
        self, decoder: bool | None = None, encoder: bool | None = None
    ) -> CxrReportConfig:
        """This config itself: `decoder` and `encoder` here are cxr records, not the
        Hugging Face sub-configs transformers looks for under those names."""
        return self

    def report_model_config(self) -> dict[str, Any]:
        """The record `ReportModel.from_config` builds the architecture from."""
        return {
            "format": self.format,
            "version": self.version,
            "encoder": self.encoder,
            "connector": self.connector,
            "decoder": self.decoder,
            "heads": self.heads,
        }
