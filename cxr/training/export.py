"""`cxr export`: a training checkpoint -> the model folder that inference loads.

The LightningModule stores the model's JSON config and tokenizer files in every checkpoint
(`report_model` entry), so a checkpoint alone rebuilds the model, whatever YAML trained it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from cxr.data.tokenizer import load_tokenizer
from cxr.errors import InputError, require_option
from cxr.models import ReportModel

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
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise InputError(checkpoint_path, f"cannot read checkpoint: {error}") from error
    record = checkpoint.get(CHECKPOINT_KEY)
    if record is None:
        raise InputError(checkpoint_path, "not a cxr training checkpoint (no report_model entry)")
    with tempfile.TemporaryDirectory() as folder:
        for name, text in record["tokenizer_files"].items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        tokenizer = load_tokenizer(Path(folder))
    model = ReportModel.from_config(record["config"], tokenizer, checkpoint_path)
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(state, strict=True)
    return model.eval()


def export(checkpoint: Path, output: Path | None = None) -> int:
    """Write the model folder that `cxr generate --model` loads, from a training checkpoint.

    Args:
        checkpoint: A .ckpt file written by `cxr fit`.
        output: Folder to write (-o): config.json, model.safetensors, tokenizer/.
    """
    require_option(output, "-o/--output")
    assert output is not None
    model = model_from_checkpoint(checkpoint)
    model.save_pretrained(output)
    log.info("exported %s to %s", checkpoint, output)
    return 0
