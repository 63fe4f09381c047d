"""Two-process DDP on CPU (gloo) through the real command line, as a cluster job would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.slow
def test_two_process_ddp_fit_runs_steps(phantom_folder: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "cxr.cli",
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
    environment = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "world_size=2" in result.stderr
        or "Initializing distributed: GLOBAL_RANK: 1" in result.stderr
    )
    metrics = next((tmp_path / "logs").rglob("metrics.csv")).read_text()
    assert "train/loss_step" in metrics
