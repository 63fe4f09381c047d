"""Inference: load a saved model once and turn studies into predictions (`cxr generate`)."""

from __future__ import annotations

from cxr.inference.generator import ReportGenerator
from cxr.inference.outputs import ErrorRecord, Prediction

__all__ = ["ErrorRecord", "Prediction", "ReportGenerator"]
