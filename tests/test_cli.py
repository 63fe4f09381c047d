"""The `cxr` entry point: help for every subcommand, clear errors for bad YAML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cxr.cli import COMMANDS, LIGHTNING_COMMANDS, main


def run_cxr(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxr.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_top_level_help_lists_every_subcommand() -> None:
    result = run_cxr("--help")
    assert result.returncode == 0, result.stderr
    for name in [*LIGHTNING_COMMANDS, *COMMANDS]:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_function_subcommand_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: cxr" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIGHTNING_COMMANDS))
def test_lightning_subcommand_help(name: str) -> None:
    result = run_cxr(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--trainer" in result.stdout


@pytest.mark.slow
def test_typo_in_yaml_names_the_key(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  batch_sise: 4\n")
    result = run_cxr(
        "fit", "--config", "configs/experiment/demo.yaml", "--config", str(typo), "--print_config", cwd=repo
    )
    assert result.returncode != 0
    assert "batch_sise" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_type_in_function_command_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "synth.yaml"
    config.write_text("patients: many\n")
    result = run_cxr("synth", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2
    assert "patients" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_subcommand_fails_without_traceback() -> None:
    result = run_cxr("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
