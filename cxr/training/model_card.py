"""The model card (README.md) `cxr export` writes into a model folder.

Every fact on the card is read from where it is decided: the architecture from the model's own
config (`ReportModel.config_dict`), the decoding defaults from its generation config, the label
names from `cxr.types`, the training hyper-parameters from the checkpoint (Lightning's
`hyper_parameters`, as ReportModule saved them), and the headline metrics from a `cxr evaluate`
metrics.json (the metrics that are not per label; run_info.json beside it says what was
evaluated). A fact the export was not given is said to be unknown, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxr.errors import InputError
from cxr.evaluation.bootstrap import Estimate
from cxr.evaluation.metric_keys import is_per_subject
from cxr.evaluation.outputs import METRICS_FILE, RUN_INFO_FILE, format_estimate
from cxr.jsonl import read_json
from cxr.models import ReportModel
from cxr.types import CHANGE_FINDINGS, IMAGE_SLOTS, OBSERVATIONS, TUBE_LINE_LABELS

MODEL_CARD_FILE = "README.md"
NOT_A_MEDICAL_DEVICE = "Research use only, not a medical device."

# run_info.json fields the card repeats beside the metrics.
_RUN_INFO_SHOWN = ("studies_evaluated", "section", "bootstrap_resamples", "bootstrap_unit")


@dataclass
class TrainingRecord:
    """What a checkpoint says about the training run.

    Attributes:
        hyperparameters: ReportModule's arguments (learning rate, loss weights, ...).
        epoch: Lightning's epoch index (from 0) when the checkpoint was written.
        global_step: Optimizer steps taken.
    """

    hyperparameters: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    global_step: int | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> TrainingRecord:
        """The record of a loaded Lightning checkpoint (missing entries stay unknown)."""
        return cls(
            hyperparameters=dict(checkpoint.get("hyper_parameters") or {}),
            epoch=checkpoint.get("epoch"),
            global_step=checkpoint.get("global_step"),
        )


@dataclass
class EvaluationRecord:
    """The headline metrics of a `cxr evaluate` output and what was evaluated.

    Attributes:
        source: The metrics.json read.
        metrics: {metric: estimate} of the metrics that are not per label, in file order.
        run_info: The run_info.json fields the card shows (empty without that file).
    """

    source: Path
    metrics: dict[str, Estimate]
    run_info: dict[str, Any] = field(default_factory=dict)


def read_evaluation_record(metrics_path: Path) -> EvaluationRecord:
    """The headline metrics of a metrics.json written by `cxr evaluate`.

    Raises:
        InputError: the file is missing, not JSON, or not {metric: {value, ...}}.
    """
    raw = read_json(metrics_path)
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise InputError(metrics_path, f"not a {METRICS_FILE} of `cxr evaluate`")
    try:
        metrics = {k: Estimate.from_dict(v) for k, v in raw.items() if not is_per_subject(k)}
    except (TypeError, ValueError) as error:
        raise InputError(
            metrics_path, f"not a {METRICS_FILE} of `cxr evaluate`: {error}"
        ) from error
    info_path = metrics_path.parent / RUN_INFO_FILE
    info = read_json(info_path) if info_path.is_file() else {}
    run_info = {k: info[k] for k in _RUN_INFO_SHOWN if k in info}
    return EvaluationRecord(metrics_path, metrics, run_info)


def build_model_card(
    model: ReportModel,
    training: TrainingRecord | None = None,
    evaluation: EvaluationRecord | None = None,
    threshold_selection: Mapping[str, Any] | None = None,
) -> str:
    """The README.md of `model`'s folder (Hugging Face model card: YAML front matter + Markdown).

    Args:
        model: The exported model.
        training: What its checkpoint says about training; None: unknown.
        evaluation: Headline metrics of a `cxr evaluate` run of this model; None: not given.
        threshold_selection: The tube/line threshold choice of `cxr export --data`, if any.
    """
    sections = [
        _front_matter(),
        "# cxr chest X-ray report model\n\n"
        "Writes the radiology report of a chest X-ray study (frontal, lateral and prior "
        "frontal images, any of which may be missing, plus indication / comparison / prior "
        "report text) and, from the same image tokens, calls tube and line placement, "
        "findings and change against the prior study. Exported by `cxr export`.",
        _intended_use(),
        _architecture(model),
        _outputs(model, threshold_selection),
        _training(training),
        _evaluation(evaluation),
        _how_to_load(),
    ]
    return "\n\n".join(sections) + "\n"


def _front_matter() -> str:
    tags = ["chest-x-ray", "radiology-report-generation", "medical-imaging", "custom_code"]
    lines = ["---", "library_name: cxr", "pipeline_tag: image-to-text", "tags:"]
    lines += [f"- {tag}" for tag in tags]
    return "\n".join([*lines, "---"])


def _intended_use() -> str:
    return (
        "## Intended use\n\n"
        f"**{NOT_A_MEDICAL_DEVICE}** This model is for research on automated chest X-ray "
        "reporting: comparing methods, studying failure modes, and producing draft reports "
        "that are evaluated against references. It is not cleared or approved for clinical "
        "use, must not inform the diagnosis or treatment of any patient, and its reports and "
        "calls are not reviewed by a radiologist. Its outputs can be wrong, incomplete or "
        "confidently stated while false, and it has only been evaluated where the "
        "Evaluation section says."
    )


def _architecture(model: ReportModel) -> str:
    config = model.config_dict()
    encoder, connector, decoder = config["encoder"], config["connector"], config["decoder"]
    encoder_name = encoder["hf_model_type"] or encoder["name"]
    parameters = sum(p.numel() for p in model.parameters())
    rows = [
        ("image encoder", f"`{encoder_name}`, {encoder['image_size']} px input"),
        ("image slots", ", ".join(f"`{slot}`" for slot in IMAGE_SLOTS)),
        ("connector", f"`{connector['kind']}`"),
        ("text decoder", f"`{decoder['model_type']}` ({decoder['kind']}), {_shape(model)}"),
        ("grounded decoder", "yes" if decoder["grounded"] else "no"),
        ("tokenizer", f"{len(model.tokenizer)} tokens"),
        ("parameters", f"{parameters:,}"),
        ("format", f"{config['format']} version {config['version']}"),
    ]
    return "## Architecture\n\n" + _table(("part", "setting"), rows)


def _shape(model: ReportModel) -> str:
    """Layers, width and heads of the decoder's language model (Hugging Face's standard names)."""
    config = model.text_decoder.language_model.config
    names = ("num_hidden_layers", "hidden_size", "num_attention_heads")
    return ", ".join(f"{name}={getattr(config, name)}" for name in names if hasattr(config, name))


def _outputs(model: ReportModel, threshold_selection: Mapping[str, Any] | None) -> str:
    generation = model.generation_config
    decoding = (
        f"greedy, at most {generation.max_new_tokens} new tokens"
        if not generation.do_sample and generation.num_beams == 1
        else f"{generation.num_beams} beams, sampling {generation.do_sample}, at most "
        f"{generation.max_new_tokens} new tokens"
    )
    if threshold_selection is None:
        thresholds = "the checkpoint's tube/line thresholds (not chosen on data at export)"
    else:
        thresholds = (
            f"tube/line thresholds chosen on the {threshold_selection['split']} split "
            f"({threshold_selection['studies']} studies, criterion "
            f"{threshold_selection['criterion']}; see tube_line_thresholds.json)"
        )
    return (
        "## Outputs\n\n"
        f"- the report text (decoding defaults in generation_config.json: {decoding})\n"
        f"- tube and line placement: {len(TUBE_LINE_LABELS)} RANZCR CLiP labels, with "
        f"{thresholds}\n"
        f"- findings: {len(OBSERVATIONS)} CheXpert observations\n"
        f"- change against the prior study: {len(CHANGE_FINDINGS)} findings "
        f"({', '.join(CHANGE_FINDINGS)}) x improving / stable / worsening\n\n"
        "preprocessor_config.json says how a DICOM file becomes the model's input."
    )


def _training(training: TrainingRecord | None) -> str:
    title = "## Training\n\n"
    if training is None or not (training.hyperparameters or training.global_step is not None):
        return title + "Unknown: the checkpoint records no training hyper-parameters."
    # Keys with a leading underscore are Lightning's bookkeeping (e.g. `_instantiator`).
    rows = [
        (f"`{k}`", f"`{json.dumps(v, default=str)}`")
        for k, v in training.hyperparameters.items()
        if not k.startswith("_")
    ]
    if training.epoch is not None:
        rows.append(("epoch (Lightning's count, from 0)", str(training.epoch)))
    if training.global_step is not None:
        rows.append(("optimizer steps", str(training.global_step)))
    return title + "From the exported checkpoint.\n\n" + _table(("setting", "value"), rows)


def _evaluation(evaluation: EvaluationRecord | None) -> str:
    title = "## Evaluation\n\n"
    if evaluation is None:
        return title + "Not evaluated at export (no `cxr export --metrics`)."
    rows = [(metric, format_estimate(estimate)) for metric, estimate in evaluation.metrics.items()]
    about = ", ".join(f"{k}: {v}" for k, v in evaluation.run_info.items())
    text = (
        f"Headline metrics of `cxr evaluate` ({evaluation.source.name}"
        + (f"; {about}" if about else "")
        + "), value [95% bootstrap interval]. Compare them with the trivial baselines in the "
        "same evaluation's systems.json.\n\n"
    )
    return title + text + _table(("metric", "value"), rows)


def _how_to_load() -> str:
    return (
        "## How to load\n\n"
        "In an environment where the cxr package is installed (the folder's code imports "
        "it):\n\n"
        "```python\n"
        "from transformers import AutoModel, AutoTokenizer\n\n"
        'model = AutoModel.from_pretrained("MODEL_DIR_OR_REPO_ID", trust_remote_code=True)\n'
        'tokenizer = AutoTokenizer.from_pretrained("MODEL_DIR_OR_REPO_ID", trust_remote_code=True)\n'
        "```\n\n"
        "or `cxr generate DICOM_DIR --model MODEL_DIR -o OUT_DIR` for a folder of studies."
    )


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {left} | {right.replace('|', '/')} |" for left, right in rows]
    return "\n".join(lines)
