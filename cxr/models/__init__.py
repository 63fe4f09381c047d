"""The report model: image encoder, connector, text decoder and label heads."""

from __future__ import annotations

from cxr.models.config import (
    ConnectorConfig,
    ConnectorKind,
    DecoderConfig,
    DecoderKind,
    EncoderConfig,
    FreezeMode,
    HeadPool,
    HeadsConfig,
    LoraSettings,
)
from cxr.models.report_model import ReportModel, ReportModelOutput

__all__ = [
    "ConnectorConfig",
    "ConnectorKind",
    "DecoderConfig",
    "DecoderKind",
    "EncoderConfig",
    "FreezeMode",
    "HeadPool",
    "HeadsConfig",
    "LoraSettings",
    "ReportModel",
    "ReportModelOutput",
]
