"""Reading a training checkpoint whatever strategy wrote it, as one full checkpoint dict.

Lightning writes three layouts:
- one file (single device, DDP, FSDP with `state_dict_type: full`): read with `torch.load`
  (`weights_only=True`: loading never runs pickled code);
- a folder of `torch.distributed.checkpoint` shards with `meta.pt` beside them (FSDP with
  `state_dict_type: sharded`): the shards are gathered into full tensors by Lightning's own
  reader (`lightning.fabric.utilities.load._load_distributed_checkpoint`), in one process,
  the model under "model", and the rest of the checkpoint comes from meta.pt;
- a folder with a `latest` file naming a tag folder (Lightning's tag is `checkpoint`) that
  holds the model states (`mp_rank_00_model_states.pt` for ZeRO-1/2,
  `zero_pp_rank_0_mp_rank_00_model_states.pt` for ZeRO-3) and the ZeRO optimizer shards
  (DeepSpeed, configs/trainer/deepspeed_zero*.yaml): gathered into fp32 tensors by DeepSpeed's
  own `zero_to_fp32` through Lightning's `convert_zero_checkpoint_to_fp32_state_dict`, which
  needs the `deepspeed` package (extra `deepspeed`). DeepSpeed's files are full pickles, which
  it unpickles itself: read only DeepSpeed checkpoints you trust.

Whatever the layout, the result has "state_dict" holding the LightningModule's full state
and the checkpoint's other entries (hyper-parameters, the `report_model` record).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from cxr.errors import InputError

FSDP_METADATA = "meta.pt"  # what Lightning writes beside the FSDP shards
DEEPSPEED_LATEST = "latest"  # DeepSpeed's file naming the tag folder of the last save
DEEPSPEED_STATES = "*model_states.pt"  # rank 0's model states in that folder, ZeRO-1/2 or 3


def checkpoint_layout(path: Path) -> str:
    """ "file", "fsdp-sharded" or "deepspeed"; an InputError for anything else."""
    if path.is_file():
        return "file"
    if (path / FSDP_METADATA).is_file():
        return "fsdp-sharded"
    if _is_deepspeed(path):
        return "deepspeed"
    if path.is_dir():
        raise InputError(
            path,
            f"a folder that is neither an FSDP sharded checkpoint (no {FSDP_METADATA}) nor a "
            f"DeepSpeed one (no {DEEPSPEED_LATEST} file naming a folder of {DEEPSPEED_STATES})",
        )
    raise InputError(path, "checkpoint not found")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path` as one dict with a full "state_dict" (module docstring)."""
    layout = checkpoint_layout(path)
    try:
        if layout == "file":
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        elif layout == "fsdp-sharded":
            checkpoint = _read_fsdp_sharded(path)
        else:
            checkpoint = _read_deepspeed(path)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise InputError(path, f"cannot read checkpoint ({layout}): {error}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(path, f"not a Lightning checkpoint ({layout}): no state_dict")
    return checkpoint


def _is_deepspeed(path: Path) -> bool:
    latest = path / DEEPSPEED_LATEST
    if not latest.is_file():
        return False
    tag = latest.read_text().strip()
    return bool(tag) and any((path / tag).glob(DEEPSPEED_STATES))


def _read_fsdp_sharded(path: Path) -> dict[str, Any]:
    from lightning.fabric.utilities.load import _load_distributed_checkpoint

    checkpoint = _load_distributed_checkpoint(path)
    checkpoint["state_dict"] = checkpoint.pop("model")
    for key in [k for k in checkpoint if k.startswith("optimizer_")]:
        del checkpoint[key]  # export needs the weights only
    return checkpoint


def _read_deepspeed(path: Path) -> dict[str, Any]:
    try:
        from lightning.pytorch.utilities.deepspeed import (
            convert_zero_checkpoint_to_fp32_state_dict,
        )

        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
            # It also writes the gathered checkpoint to a file (and prints that it does):
            # the returned dict is the same, so the file is dropped.
            checkpoint = convert_zero_checkpoint_to_fp32_state_dict(path, Path(folder) / "full")
    except ImportError as error:
        raise InputError(
            path,
            f"a DeepSpeed checkpoint needs the deepspeed package to read: pip install -e "
            f"'.[deepspeed]' ({error})",
        ) from error
    return checkpoint  # with DeepSpeed's own records beside Lightning's (ds_config, ...)
