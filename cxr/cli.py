"""The `cxr` command line: one entry point, subcommands generated from type hints and docstrings.

Function commands (`synth`, `index`, ...) are plain functions whose signature and docstring
become the subcommand's options and `--help`; each also accepts `--config FILE.yaml`. The
Lightning commands (`fit`, `validate`, `test`, `predict`) are handed to LightningCLI.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from cxr.errors import CxrError

log = logging.getLogger("cxr")

# name -> "module:function". A function's docstring summary is the command's help line.
COMMANDS: dict[str, str] = {
    "synth": "cxr.synth.commands:synth",
    "export": "cxr.training.export:export",
    "generate": "cxr.inference.commands:generate",
    "index": "cxr.io.commands:index",
    "cache": "cxr.io.commands:cache",
    "evaluate": "cxr.evaluation.commands:evaluate",
    "data-check": "cxr.data.commands:data_check",
}

# name -> help line; these are dispatched to LightningCLI before parsing.
LIGHTNING_COMMANDS: dict[str, str] = {
    "fit": "Train a report model from YAML configs (LightningCLI).",
    "validate": "Evaluate a checkpoint on the validation split (LightningCLI).",
    "test": "Evaluate a checkpoint on the test split (LightningCLI).",
}


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _description(func: Callable[..., Any]) -> str:
    """The docstring without its Args section (the options carry those texts)."""
    return (func.__doc__ or "").split("Args:")[0].strip()


def _summary(func: Callable[..., Any]) -> str:
    description = _description(func)
    return description.splitlines()[0] if description else ""


def build_parser(names: Sequence[str] | None = None) -> ArgumentParser:
    """The parser of the function commands named (default all; each import costs time), with
    the Lightning commands listed for `--help`."""
    parser = ArgumentParser(
        prog="cxr",
        description="Chest X-ray report generation from DICOM. "
        "Global options -v/--verbose and -q/--quiet go before the subcommand.",
        exit_on_error=True,
    )
    subcommands = parser.add_subcommands(required=True, dest="subcommand")
    for name, help_line in LIGHTNING_COMMANDS.items():
        sub = ArgumentParser(description=f"{help_line} See `cxr {name} --help`.")
        subcommands.add_subcommand(name, sub, help=help_line)
    for name in names or COMMANDS:
        func = _load(COMMANDS[name])
        sub = ArgumentParser(description=_description(func))
        sub.add_argument("--config", action=ActionConfigFile, help="YAML file with these options.")
        sub.add_function_arguments(func, as_positional=True, fail_untyped=True)
        subcommands.add_subcommand(name, sub, help=_summary(func))
    return parser


# Short aliases of function-command options (jsonargparse derives only the long names).
_ALIASES = {"-o": "--output"}


def normalise_options(args: Sequence[str], func: Callable[..., Any]) -> list[str]:
    """Accepts `--num-beams` for `--num_beams`, `-o` for `--output`, a bare `--flag` for a
    boolean option (meaning `--flag true`), and a list option given several times."""
    parameters = inspect.signature(func).parameters
    booleans = {name for name, p in parameters.items() if p.annotation in (bool, "bool")}
    lists = {name for name, p in parameters.items() if "list[" in str(p.annotation)}
    names = [arg[2:].partition("=")[0].replace("-", "_") for arg in args if arg.startswith("--")]
    repeated = {name for name in lists if names.count(name) > 1}
    normalised: list[str] = []
    for position, arg in enumerate(args):
        arg = _ALIASES.get(arg, arg)
        if not arg.startswith("--"):
            normalised.append(arg)
            continue
        name, equals, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        append = "+" if name in repeated else ""
        normalised.append(f"--{name}{append}{equals}{value}")
        following = args[position + 1] if position + 1 < len(args) else ""
        if name in booleans and not equals and following.lower() not in ("true", "false"):
            normalised.append("true")
    return normalised


def _pop_verbosity(args: list[str]) -> tuple[int, list[str]]:
    """Reads leading -v/-q flags; returns (verbosity, remaining args)."""
    verbosity = 0
    while args and args[0] in ("-v", "--verbose", "-q", "--quiet"):
        verbosity += 1 if args.pop(0) in ("-v", "--verbose") else -1
    return verbosity, args


def configure_logging(verbosity: int) -> None:
    """INFO from cxr by default (-v: DEBUG, -q: WARNING); other libraries speak at WARNING."""
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("cxr").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one `cxr` subcommand; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbosity, args = _pop_verbosity(args)
    configure_logging(verbosity)
    try:
        if args and args[0] in LIGHTNING_COMMANDS:
            from cxr.training.cli import run_lightning_cli

            run_lightning_cli(args)
            return 0
        chosen = args[0] if args and args[0] in COMMANDS else None
        parser = build_parser([chosen] if chosen else None)
        if chosen:
            args = [chosen, *normalise_options(args[1:], _load(COMMANDS[chosen]))]
        config = parser.parse_args(args)
        name = config.subcommand
        options = {k: v for k, v in vars(config[name]).items() if k != "config"}
        result = _load(COMMANDS[name])(**options)
    except CxrError as error:
        log.error("%s", error)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
