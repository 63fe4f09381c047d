"""Two-process DDP on CPU (gloo) through the real command line, started by Lightning and by
torchrun, as a cluster job would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _fit_options(phantom_folder: Path, tmp_path: Path) -> list[str]:
    """`cxr fit` options for two DDP processes on the CPU, a few steps, no checkpoints."""
    return [
        "fit",
        "--config",
        str(CONFIGS / "experiment" / "demo.yaml"),
        "--data.sources",
        f"[{{adapter: phantom, root: {phantom_folder}}}]",
        "--data.num_workers",
        "0",
        "--data.batch_size",
        "4",
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.max_steps",
        "2",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "logs"),
        "--trainer.callbacks",
        "[]",
        "--trainer.enable_checkpointing",
        "false",
    ]


def _run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = next((tmp_path / "logs").rglob("metrics.csv")).read_text()
    assert "train/loss_step" in metrics
    return result


@pytest.mark.slow
def test_two_process_ddp_fit_runs_steps(phantom_folder: Path, tmp_path: Path) -> None:
    """Lightning starts the second process itself (one node, `--trainer.devices 2`)."""
    command = [sys.executable, "-m", "cxr.cli", *_fit_options(phantom_folder, tmp_path)]
    result = _run(command, tmp_path)
    assert (
        "world_size=2" in result.stderr
        or "Initializing distributed: GLOBAL_RANK: 1" in result.stderr
    )


@pytest.mark.slow
def test_torchrun_starts_the_processes_as_on_a_cluster(
    phantom_folder: Path, tmp_path: Path
) -> None:
    """torchrun (torch.distributed.run) starts both processes, as `torchrun --nnodes N` does
    on each node of a cluster; Lightning takes the ranks from torchrun's environment."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0",
        "-m", "cxr.cli", *_fit_options(phantom_folder, tmp_path),
    ]  # fmt: skip
    result = _run(command, tmp_path)
    assert "TorchElasticEnvironment" in result.stderr or "GLOBAL_RANK: 1" in result.stderr
