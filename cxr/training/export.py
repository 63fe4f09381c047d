"""`cxr export`: a training checkpoint -> the model folder that inference loads.

The LightningModule stores the model's JSON config and tokenizer files in every checkpoint
(`report_model` entry), so a checkpoint alone rebuilds the model, whatever YAML trained it.
Given the training data, export also chooses the tube/line thresholds on its validation split.
The folder gets a model card (README.md, cxr.training.model_card) from the model's config, the
checkpoint's training hyper-parameters and, with --metrics, a `cxr evaluate` run's headline
metrics.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cxr.data.tokenizer import load_tokenizer
from cxr.errors import CxrError, InputError, require_option
from cxr.models import ReportModel
from cxr.models.report_model import merge_adapters
from cxr.training.checkpoints import read_checkpoint
from cxr.training.model_card import (
    MODEL_CARD_FILE,
    TrainingRecord,
    build_model_card,
    read_evaluation_record,
)
from cxr.tube_line import THRESHOLD_CRITERION, choose_device_thresholds, label_thresholds
from cxr.types import IMAGE_SLOTS

if TYPE_CHECKING:
    from cxr.data.datamodule import ReportDataModule

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "report_model"


def model_record(model: ReportModel) -> dict[str, Any]:
    """What a checkpoint needs to rebuild `model`: its config and its tokenizer's files."""
    with tempfile.TemporaryDirectory() as folder:
        model.tokenizer.save_pretrained(folder)
        files = {path.name: path.read_text(encoding="utf-8") for path in Path(folder).iterdir()}
    return {"config": model.config_dict(), "tokenizer_files": files}


def model_from_checkpoint(checkpoint_path: Path) -> ReportModel:
    """The ReportModel of a Lightning checkpoint written by ReportModule."""
    return model_from_loaded_checkpoint(load_checkpoint(checkpoint_path), checkpoint_path)


def load_checkpoint(checkpoint_path: Path) -> dict[str, Any]:
    """A Lightning checkpoint written by ReportModule, in any layout `read_checkpoint` reads
    (one file, FSDP shards, DeepSpeed), a single file without unpickling code."""
    checkpoint = read_checkpoint(checkpoint_path)
    if CHECKPOINT_KEY not in checkpoint:
        raise InputError(checkpoint_path, "not a cxr training checkpoint (no report_model entry)")
    return checkpoint


def model_from_loaded_checkpoint(checkpoint: dict[str, Any], checkpoint_path: Path) -> ReportModel:
    """The ReportModel of a checkpoint `load_checkpoint` read from `checkpoint_path`."""
    record = checkpoint[CHECKPOINT_KEY]
    with tempfile.TemporaryDirectory() as folder:
        for name, text in record["tokenizer_files"].items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        tokenizer = load_tokenizer(Path(folder))
    model = ReportModel.from_config(record["config"], tokenizer, checkpoint_path)
    prefix = "model."
    state = {
        k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)
    }
    model.load_state_dict(state, strict=True)
    return model.eval()


def export(
    checkpoint: Path,
    output: Path | None = None,
    data: Path | None = None,
    metrics: Path | None = None,
    adapter_only: bool = False,
    base_model: Path | None = None,
    merge_lora: bool = False,
    device: str = "cpu",
) -> int:
    """Write the model folder that `cxr generate --model` loads, from a training checkpoint.

    The folder also loads in Hugging Face tools (AutoConfig / AutoModel with
    trust_remote_code, AutoTokenizer) and holds a model card, README.md. With --data, the
    tube/line thresholds saved in the folder are chosen on that data's validation split (see
    cxr.tube_line.THRESHOLD_CRITERION) and the choice is recorded in tube_line_thresholds.json;
    without it the checkpoint's thresholds (0.5 unless configured) are kept.

    Args:
        checkpoint: A .ckpt written by `cxr fit`: a file, or the folder of an FSDP sharded or DeepSpeed checkpoint.
        output: Folder to write (-o): config.json, model.safetensors, the tokenizer files,
            generation_config.json, preprocessor_config.json, README.md and the Hugging Face
            code files.
        data: The data YAML the model was trained with (e.g. configs/data/phantom.yaml); its
            validation split chooses the tube/line thresholds.
        metrics: metrics.json of a `cxr evaluate` run of this model; its headline metrics go
            on the model card.
        adapter_only: For a LoRA model: leave the language model's weights out; its adapters
            go to decoder_adapter/ in peft's format (PeftModel.from_pretrained loads them onto
            the base model) and the encoder, connector and heads to model.safetensors. Needs
            --base_model.
        base_model: The local folder of the base language model the adapters were trained on
            (the decoder path of the training config); the folder's config.json names it.
        merge_lora: For a LoRA model: merge the adapters into the language model's weights, so
            the folder loads and runs without peft.
        device: Torch device that runs the validation split, e.g. cpu or cuda:0.
    """
    require_option(output, "-o/--output")
    assert output is not None
    if adapter_only and merge_lora:
        raise InputError("--adapter_only", "give --adapter_only or --merge_lora, not both")
    if adapter_only:
        require_option(base_model, "--base_model")
    evaluation = read_evaluation_record(metrics) if metrics is not None else None
    loaded = load_checkpoint(checkpoint)
    model = model_from_loaded_checkpoint(loaded, checkpoint)
    selection = None
    if data is not None:
        from cxr.data.commands import build_data_module

        selection = select_thresholds(model, build_data_module(data), device)
        model.heads_config.tube_line_thresholds = selection["thresholds"]
    if adapter_only:
        assert base_model is not None
        model.save_adapter_folder(output, base_model)
    elif merge_lora:
        merge_adapters(model).save_pretrained(output)
    else:
        model.save_pretrained(output)
    if selection is not None:
        selection["data"] = str(data)
        path = output / THRESHOLDS_RECORD
        path.write_text(json.dumps(selection, indent=2) + "\n", encoding="utf-8")
    card = build_model_card(model, TrainingRecord.from_checkpoint(loaded), evaluation, selection)
    (output / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
    log.info("exported %s to %s", checkpoint, output)
    return 0


THRESHOLDS_RECORD = "tube_line_thresholds.json"


@torch.inference_mode()
def select_thresholds(
    model: ReportModel, datamodule: ReportDataModule, device: str = "cpu"
) -> dict[str, Any]:
    """Tube/line thresholds chosen on the validation split, with how they were chosen."""
    # The model's own tokenizer: the data module would otherwise train a new one.
    datamodule.tokenizer = model.tokenizer
    model = model.to(device).eval()
    probabilities, labels = [], []
    for batch in datamodule.val_dataloader():
        tensors = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        present = tensors["image_present"][:, IMAGE_SLOTS.index("frontal")]
        tube_line = model.predict_labels(tensors).tube_line
        probabilities.append(tube_line[present].cpu().numpy())
        labels.append(tensors["tube_line"][present].cpu().numpy())
    if not probabilities:
        raise CxrError("the validation split of --data is empty: no study to choose thresholds on")
    scores, truth = np.concatenate(probabilities), np.concatenate(labels)
    choices = choose_device_thresholds(scores, truth)
    thresholds = label_thresholds(choices)
    return {
        "criterion": THRESHOLD_CRITERION,
        "split": "val",
        "studies": len(scores),
        "thresholds": thresholds,
        "per_device": {device: asdict(choice) for device, choice in choices.items()},
    }
