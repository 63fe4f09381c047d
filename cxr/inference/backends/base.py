"""What every report backend takes and gives: options in, per-study texts (and labels) out.

A backend turns `Study` records into `BatchOutput`s: the report text of each study it could
report, the image slots it fed the model, the label heads' probabilities when the model has
heads (cxr's own), and an `ErrorRecord` for each image it could not read. `ReportGenerator`
turns those into `Prediction`s, the same way for every backend.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

import numpy as np
from transformers import GenerationConfig

from cxr.inference.outputs import ErrorRecord
from cxr.models.report_model import given_fields
from cxr.types import Study

NO_READABLE_FRONTAL = "no readable frontal image"

# GenerationConfig fields used only when sampling (Hugging Face refuses them without do_sample).
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "epsilon_cutoff",
    "eta_cutoff",
)


class Engine(str, Enum):
    """What runs a Hugging Face vision-language model: transformers, or vLLM on a GPU."""

    TRANSFORMERS = "transformers"
    VLLM = "vllm"


@dataclass
class BackendOptions:
    """How `ReportGenerator` runs its backend (see `ReportGenerator` for each field)."""

    device: str = "cpu"
    batch_size: int = 8
    num_workers: int = 0
    cache_dir: Path | None = None
    generation_config: GenerationConfig | None = None
    seed: int = 0
    trust_remote_code: bool = False
    engine: Engine = Engine.TRANSFORMERS


@dataclass
class StudyLabels:
    """The label heads' probabilities for one study (models with heads only)."""

    tube_line: np.ndarray  # [11], TUBE_LINE_LABELS order
    observations: np.ndarray  # [14], OBSERVATIONS order
    change: np.ndarray  # [5, 3], CHANGE_FINDINGS x Change


@dataclass
class StudyOutput:
    """One reported study: its text, the image slots the model was given, its labels if any."""

    study_id: str
    text: str
    used: dict[str, bool]
    labels: StudyLabels | None = None


@dataclass
class BatchOutput:
    """One batch: the studies reported, the images (or studies) that failed, the time taken."""

    outputs: list[StudyOutput]
    errors: list[ErrorRecord] = field(default_factory=list)
    seconds_per_study: float = 0.0


class ReportBackend(Protocol):
    """A model that writes reports for batches of studies."""

    # The complete decoding settings it uses.
    generation_config: GenerationConfig
    # Per-label tube/line thresholds [11], or None when the model gives no tube/line values.
    tube_line_thresholds: np.ndarray | None

    def batches(self, studies: Sequence[Study]) -> Iterator[BatchOutput]:
        """Reports `studies` batch by batch, in input order."""
        ...


def image_errors(study_id: str, errors: Sequence[str], frontal_read: bool) -> list[ErrorRecord]:
    """The records of one study's unreadable images, and of the study itself when its frontal
    image could not be read (it is then not reported)."""
    records = [ErrorRecord(reason=error, study_id=study_id) for error in errors]
    if not frontal_read:
        records.append(ErrorRecord(reason=NO_READABLE_FRONTAL, study_id=study_id))
    return records


def resolve_folder_generation_config(
    defaults: GenerationConfig, folder: GenerationConfig, given: GenerationConfig | None
) -> GenerationConfig:
    """The decoding settings of a Hugging Face model folder: cxr's `defaults`, then the
    folder's generation_config.json, then the options `given`, each replacing the fields it
    sets. When the result does not sample, the sampling settings that came from the folder
    (not from `given`) are dropped: `--do-sample false` over a folder that samples (MedGemma's
    top_k and top_p) decodes greedily instead of failing as contradictory."""
    resolved = copy.deepcopy(defaults)
    resolved.update(**given_fields(folder))
    options = given_fields(given)
    resolved.update(**options)
    if not resolved.do_sample:
        for name in SAMPLING_FIELDS:
            if name not in options and getattr(defaults, name, None) is not None:
                setattr(resolved, name, getattr(defaults, name))
            elif name not in options:
                setattr(resolved, name, None)
    return resolved
