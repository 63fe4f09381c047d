"""Checkpoints of every strategy read as one (cxr/training/checkpoints.py), and the FSDP
strategy's choice of units (cxr/training/strategies.py).

FSDP itself does not run here: torch's FullyShardedDataParallel refuses a machine without an
accelerator ("FSDP needs a non-CPU accelerator device"), so its end-to-end test runs only where
CUDA is. The sharded layout is written with Lightning's own writer, as FSDPStrategy writes it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from models.tiny_models import phantom_model
from training.test_export import _checkpoint, _data_yaml

from cxr.data.commands import build_data_module
from cxr.errors import InputError
from cxr.training.checkpoints import FSDP_METADATA, checkpoint_layout, read_checkpoint
from cxr.training.module import ReportModule
from cxr.training.strategies import DecoderLayerFSDP, decoder_layer_classes

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _as_fsdp_sharded(checkpoint_file: Path, folder: Path) -> Path:
    """The checkpoint in FSDPStrategy's sharded layout: `torch.distributed.checkpoint` shards of
    the model under "model" and the optimizer states, and the other entries in meta.pt."""
    from lightning.fabric.strategies.fsdp import _distributed_checkpoint_save

    checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=True)
    converted = {"model": checkpoint.pop("state_dict")}
    converted |= {f"optimizer_{i}": s for i, s in enumerate(checkpoint.pop("optimizer_states"))}
    folder.mkdir()
    _distributed_checkpoint_save(converted, folder)
    torch.save(checkpoint, folder / FSDP_METADATA)
    return folder


@pytest.mark.slow
def test_a_sharded_fsdp_checkpoint_reads_as_the_full_one_and_exports(
    phantom_folder: Path, tmp_path: Path
) -> None:
    from cxr.models import ReportModel
    from cxr.training.export import export

    data = _data_yaml(tmp_path, phantom_folder)
    full = _checkpoint(tmp_path / "ckpt", data)
    sharded = _as_fsdp_sharded(full, tmp_path / "sharded.ckpt")
    assert checkpoint_layout(full) == "file" and checkpoint_layout(sharded) == "fsdp-sharded"

    expected = torch.load(full, map_location="cpu", weights_only=True)
    read = read_checkpoint(sharded)
    assert read.keys() >= {"state_dict", "report_model", "global_step"}
    assert read["state_dict"].keys() == expected["state_dict"].keys()
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(read["state_dict"][name], tensor), name

    assert export(sharded, tmp_path / "model") == 0
    assert export(full, tmp_path / "model-full") == 0
    loaded, reference = (ReportModel.from_pretrained(tmp_path / d) for d in ("model", "model-full"))
    for (name, a), (_, b) in zip(
        loaded.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_folders_that_are_no_checkpoint_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_checkpoint(tmp_path / "absent.ckpt")
    with pytest.raises(InputError, match="neither an FSDP sharded checkpoint"):
        read_checkpoint(tmp_path)
    deepspeed = tmp_path / "ds.ckpt" / "checkpoint"
    deepspeed.mkdir(parents=True)
    (deepspeed / "mp_rank_00_model_states.pt").write_bytes(b"")
    assert checkpoint_layout(tmp_path / "ds.ckpt") == "deepspeed"
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.ckpt: cannot read checkpoint \(file\)"):
        read_checkpoint(tmp_path / "bad.ckpt")


def test_fsdp_units_are_the_decoder_layers_of_the_language_model(
    phantom_folder: Path, tmp_path: Path
) -> None:
    model = phantom_model(build_data_module(_data_yaml(tmp_path, phantom_folder)))
    classes = decoder_layer_classes(ReportModule(model))
    assert [cls.__name__ for cls in classes] == ["GPT2Block"]  # the tiny decoder's layer
    with pytest.raises(ValueError, match="chooses auto_wrap_policy"):
        DecoderLayerFSDP(auto_wrap_policy={torch.nn.Linear})


@pytest.mark.slow
@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2,
    reason="torch's FSDP needs an accelerator (two CUDA devices for this test)",
)
def test_two_gpu_fsdp_fit_writes_a_sharded_checkpoint_that_exports(
    phantom_folder: Path, tmp_path: Path
) -> None:
    command = [
        sys.executable, "-m", "cxr.cli", "fit",
        "--config", str(CONFIGS / "experiment" / "demo.yaml"),
        "--config", str(CONFIGS / "trainer" / "fsdp.yaml"),
        "--data.sources", f"[{{adapter: phantom, root: {phantom_folder}}}]",
        "--data.num_workers", "0", "--data.batch_size", "4",
        "--data.cache_dir", str(tmp_path / "cache"),
        "--trainer.devices", "2", "--trainer.max_steps", "2",
        "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"),
        "--trainer.callbacks",
        f"[{{class_path: lightning.pytorch.callbacks.ModelCheckpoint, "
        f"init_args: {{dirpath: {tmp_path / 'ckpt'}, save_last: true}}}}]",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    assert checkpoint_layout(last) == "fsdp-sharded"
    export = [sys.executable, "-m", "cxr.cli", "export", str(last), "-o", str(tmp_path / "m")]
    assert subprocess.run(export, capture_output=True, timeout=600).returncode == 0
    shutil.rmtree(tmp_path / "cache")


def test_the_fsdp_trainer_config_builds_the_strategy() -> None:
    import yaml
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--strategy", type=L.pytorch.strategies.Strategy)
    config = yaml.safe_load((CONFIGS / "trainer" / "fsdp.yaml").read_text())
    strategy = parser.instantiate_classes(parser.parse_object({"strategy": config["strategy"]}))
    strategy = strategy["strategy"]
    assert isinstance(strategy, DecoderLayerFSDP)
    assert strategy._checkpoint_layers and strategy._state_dict_type == "sharded"
