"""The `cxr` entry point: help for every subcommand, option parsing, clear errors for bad YAML."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cxr.cli import COMMANDS, LIGHTNING_COMMANDS, main, parse_command


def run_cxr(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxr.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def command_function(name: str) -> Callable[..., Any]:
    module_name, _, attr = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def summary(name: str) -> str:
    """The first line of the command function's docstring, as Python itself reads it."""
    return (inspect.getdoc(command_function(name)) or "").splitlines()[0]


def words(text: str) -> str:
    """Text with its line wrapping undone (argparse wraps help lines at the terminal width)."""
    return " ".join(text.split())


# Runs in a fresh interpreter: the `cxr` output of ARGS, its exit code, and which heavy modules
# building it imported.
TOP_LEVEL_PROBE = """
import contextlib, io, json, sys
from cxr.cli import COMMANDS, main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit_:
        code = exit_.code
commands = {target.partition(":")[0] for target in COMMANDS.values()}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning") or m in commands)
print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "heavy": heavy}))
"""


def probe_top_level(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", TOP_LEVEL_PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_top_level_help_lists_every_command_with_its_summary_without_importing_torch() -> None:
    result = probe_top_level("--help")
    assert result["code"] == 0, result["stderr"]
    assert result["heavy"] == []
    listed = words(result["stdout"])
    for name, help_line in LIGHTNING_COMMANDS.items():
        assert f"{name} {help_line}" in listed
    for name in COMMANDS:
        assert f"{name} {summary(name)}" in listed, name


@pytest.mark.parametrize("args", [(), ("no-such-command",)], ids=["none", "unknown"])
def test_missing_or_unknown_subcommand_fails_without_importing_torch(args: tuple[str, ...]) -> None:
    result = probe_top_level(*args)
    assert result["code"] == 2
    assert result["heavy"] == []
    assert "Traceback" not in result["stderr"]


def test_top_level_help_through_the_entry_point() -> None:
    result = run_cxr("--help")
    assert result.returncode == 0, result.stderr
    assert "usage: cxr" in result.stdout
    for name in [*LIGHTNING_COMMANDS, *COMMANDS]:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_function_subcommand_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: cxr ") and f" {name} " in out.splitlines()[0]
    assert summary(name) in words(out)
    for parameter in inspect.signature(command_function(name)).parameters.values():
        option = (
            parameter.name
            if parameter.default is inspect.Parameter.empty
            else f"--{parameter.name}"
        )
        assert option in out, option


def accepts_bool(annotation: object) -> bool:
    """bool or bool | None, from the signature (independently of how cxr.cli decides it)."""
    members = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    return bool in members and set(members) <= {bool, type(None)}


def boolean_options(name: str) -> list[str]:
    return [
        p
        for p, hint in typing.get_type_hints(command_function(name)).items()
        if p != "return" and accepts_bool(hint)
    ]


def positionals(name: str) -> list[str]:
    """A placeholder value for each required (positional) argument."""
    parameters = inspect.signature(command_function(name)).parameters.values()
    return ["placeholder" for p in parameters if p.default is inspect.Parameter.empty]


def test_the_commands_have_boolean_options() -> None:
    assert {"meteor", "baselines", "plots"} <= set(boolean_options("evaluate"))
    assert "sr" in boolean_options("generate")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_boolean_option_given_bare_parses_to_true(name: str) -> None:
    required = positionals(name)
    for option in boolean_options(name):
        for flag in (f"--{option}", f"--{option.replace('_', '-')}"):
            assert parse_command([name, *required, flag])[1][option] is True, flag
            assert parse_command([name, flag, *required])[1][option] is True, flag
        assert parse_command([name, *required, f"--{option}", "false"])[1][option] is False


def test_list_option_given_twice_collects_both_and_once_takes_one() -> None:
    _, options = parse_command(["evaluate", "--scorer", "a=1", "--scorer", "b=2"])
    assert options["scorer"] == ["a=1", "b=2"]
    assert parse_command(["evaluate", "--scorer", "a=1"])[1]["scorer"] == "a=1"
    _, options = parse_command(["evaluate", "-o", "out", "--references", "r.jsonl"])
    assert options["output"] == "out"
    assert options["references"] == "r.jsonl"


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
        "fit",
        "--config",
        "configs/experiment/demo.yaml",
        "--config",
        str(typo),
        "--print_config",
        cwd=repo,
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
