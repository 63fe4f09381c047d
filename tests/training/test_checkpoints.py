"""Checkpoints of every strategy read as one (cxr/training/checkpoints.py), and the FSDP
strategy's choice of units (cxr/training/strategies.py).

FSDP itself does not run here: torch's FullyShardedDataParallel refuses a machine without an
accelerator ("FSDP needs a non-CPU accelerator device"), so its end-to-end test runs only where
CUDA is. The sharded layout is written with Lightning's own writer, as FSDPStrategy writes it.
Lightning's DeepSpeedStrategy refuses the CPU too ("only supported on CUDA GPUs"), but DeepSpeed
runs there: its ZeRO-2 and ZeRO-3 checkpoints are written by a DeepSpeed engine around the
ReportModule, with the call and tag DeepSpeedStrategy.save_checkpoint uses.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
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


@pytest.fixture(scope="module")
def full_checkpoint(phantom_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step checkpoint of the tiny phantom model in Lightning's one-file layout."""
    folder = tmp_path_factory.mktemp("full")
    return _checkpoint(folder / "ckpt", _data_yaml(folder, phantom_folder))


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


# Run in a process of its own: DeepSpeed sets up torch.distributed (one rank, gloo). Its
# shared-memory all-reduce kernel, which only several ranks on one host use, is marked
# unavailable, because DeepSpeed would otherwise spend minutes compiling it.
_WRITE_DEEPSPEED = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import deepspeed
    import torch

    from cxr.training.export import model_from_checkpoint
    from cxr.training.module import ReportModule

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    full, folder, stage = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    module = ReportModule(model_from_checkpoint(full))
    trainable = [p for p in module.parameters() if p.requires_grad]
    engine, *_ = deepspeed.initialize(
        model=module,
        optimizer=torch.optim.AdamW(trainable, lr=1e-3),
        config={"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": stage}},
    )
    checkpoint = torch.load(full, map_location="cpu", weights_only=True)
    client_state = {k: v for k, v in checkpoint.items() if k not in ("state_dict", "optimizer_states")}
    engine.save_checkpoint(folder, client_state=client_state, tag="checkpoint")
    """
)


def _as_deepspeed(checkpoint_file: Path, folder: Path, stage: int) -> Path:
    """The checkpoint as DeepSpeedStrategy writes it with ZeRO stage `stage`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
    }
    arguments = [str(checkpoint_file), str(folder), str(stage)]
    command = [sys.executable, "-c", _WRITE_DEEPSPEED, *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_a_deepspeed_zero_checkpoint_reads_as_the_full_one_and_exports(
    full_checkpoint: Path, tmp_path: Path, stage: int
) -> None:
    pytest.importorskip("deepspeed", reason="the deepspeed extra is not installed")
    from cxr.models import ReportModel
    from cxr.training.export import export

    full = full_checkpoint
    written = _as_deepspeed(full, tmp_path / "zero.ckpt", stage)
    assert checkpoint_layout(written) == "deepspeed"

    expected = torch.load(full, map_location="cpu", weights_only=True)
    read = read_checkpoint(written)
    assert read["global_step"] == expected["global_step"]
    assert read["report_model"]["config"] == expected["report_model"]["config"]
    assert read["state_dict"].keys() == expected["state_dict"].keys()
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(read["state_dict"][name], tensor), name

    assert export(written, tmp_path / "model") == 0
    loaded = ReportModel.from_pretrained(tmp_path / "model")
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected["state_dict"][f"model.{name}"]), name


@pytest.mark.slow
def test_a_sharded_fsdp_checkpoint_reads_as_the_full_one_and_exports(
    full_checkpoint: Path, tmp_path: Path
) -> None:
    from cxr.models import ReportModel
    from cxr.training.export import export

    full = full_checkpoint
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
    deepspeed = tmp_path / "ds.ckpt"
    (deepspeed / "global_step7").mkdir(parents=True)
    (deepspeed / "latest").write_text("global_step7")
    with pytest.raises(InputError, match="nor a DeepSpeed one"):
        read_checkpoint(deepspeed)  # the tag folder holds no model states
    (deepspeed / "global_step7" / "zero_pp_rank_0_mp_rank_00_model_states.pt").write_bytes(b"")
    assert checkpoint_layout(deepspeed) == "deepspeed"
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
    reason="FSDP and DeepSpeed need CUDA (two devices for this test)",
)
@pytest.mark.parametrize(
    ("trainer_yaml", "layout"),
    [
        ("fsdp.yaml", "fsdp-sharded"),
        ("deepspeed_zero2.yaml", "deepspeed"),
        ("deepspeed_zero3.yaml", "deepspeed"),
    ],
)
def test_two_gpu_sharded_fit_writes_a_checkpoint_that_exports(
    phantom_folder: Path, tmp_path: Path, trainer_yaml: str, layout: str
) -> None:
    command = [
        sys.executable, "-m", "cxr.cli", "fit",
        "--config", str(CONFIGS / "experiment" / "demo.yaml"),
        "--config", str(CONFIGS / "trainer" / trainer_yaml),
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
    assert checkpoint_layout(last) == layout
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


@pytest.mark.parametrize("stage", [2, 3])
def test_the_deepspeed_trainer_configs_build_the_strategy(stage: int) -> None:
    pytest.importorskip("deepspeed", reason="the deepspeed extra is not installed")
    import yaml
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--strategy", type=L.pytorch.strategies.Strategy)
    path = CONFIGS / "trainer" / f"deepspeed_zero{stage}.yaml"
    config = yaml.safe_load(path.read_text())
    strategy = parser.instantiate_classes(parser.parse_object({"strategy": config["strategy"]}))
    strategy = strategy["strategy"]
    assert isinstance(strategy, L.pytorch.strategies.DeepSpeedStrategy)
    assert strategy.config["zero_optimization"]["stage"] == stage
    assert strategy.zero_stage_3 is (stage == 3)
