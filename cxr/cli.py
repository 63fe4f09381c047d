"""The `cxr` command line: one entry point, subcommands generated from type hints and docstrings.

Function commands (`synth`, `export`, `generate`, `rexrank`, `index`, `cache`, `evaluate`,
`data-check`) are plain functions whose signature and docstring become the subcommand's options
and `--help`; each also accepts `--config FILE.yaml`. The Lightning commands (`fit`, `validate`,
`test`) are handed to LightningCLI.

A command's module (and with it torch) is imported only when that command runs or its own
`--help` is asked: `cxr --help` reads each command's help line from its module's source.

An experiment YAML (the `--config` of `fit`, `validate`, `test` and `data-check`) names other
YAML files for its sections (`model: ../model/tiny.yaml`); `resolve_experiment_config` finds them
wherever the experiment file was copied to.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import logging
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, MutableSequence, Sequence
from itertools import dropwhile
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter, get_loader

import cxr
from cxr.errors import CxrError, InputError

log = logging.getLogger("cxr")

# name -> "module:function". A function's docstring summary is the command's help line.
COMMANDS: dict[str, str] = {
    "synth": "cxr.synth.commands:synth",
    "export": "cxr.training.export:export",
    "generate": "cxr.inference.commands:generate",
    "rexrank": "cxr.inference.rexrank:rexrank",
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

# Function commands whose --config is an experiment YAML, read as the Lightning commands read it.
EXPERIMENT_CONFIG_COMMANDS = frozenset({"data-check"})

# The project's configs/ folder, beside the package in the source tree (editable installs).
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"

INCLUDE_SUFFIXES = (".yaml", ".yml")


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _module_file(module_name: str) -> Path:
    """The source file of a cxr module, found without running it or its packages' __init__
    (importlib.util.find_spec would run them, and cxr.io's and cxr.inference's import torch)."""
    parts = module_name.split(".")
    if parts[0] != "cxr":
        raise ValueError(f"{module_name} is not a cxr module")
    search = list(cxr.__path__)
    origin = None
    for depth in range(2, len(parts) + 1):
        # A package without __init__.py (cxr.training) is found with no origin but a path.
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), search)
        if spec is None:
            raise ModuleNotFoundError(f"no module {'.'.join(parts[:depth])} under {search}")
        search, origin = list(spec.submodule_search_locations or []), spec.origin
    if origin is None:
        raise ModuleNotFoundError(f"{module_name} has no source file")
    return Path(origin)


def command_docstring(name: str) -> str:
    """The docstring of function command `name`, read from its module's source file."""
    module_name, _, function_name = COMMANDS[name].partition(":")
    tree = ast.parse(_module_file(module_name).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function_name:
            return ast.get_docstring(node) or ""
    # Not defined in that file (re-exported): only importing the module finds its docstring.
    return inspect.getdoc(_load(COMMANDS[name])) or ""


def _description(docstring: str) -> str:
    """The docstring without its Args section (the options carry those texts)."""
    return docstring.split("Args:")[0].strip()


def _summary(docstring: str) -> str:
    description = _description(docstring)
    return description.splitlines()[0] if description else ""


class _HelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, with the epilog's lines kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n  " in text:  # an epilog laid out in lines
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def command_parser(name: str) -> ArgumentParser:
    """The parser of function command `name`: its options from its signature and docstring
    (this imports the command's module)."""
    func = _load(COMMANDS[name])
    epilog = getattr(func, "epilog", None)  # a function giving text after the options
    parser = ArgumentParser(
        description=_description(inspect.getdoc(func) or ""),
        epilog=epilog() if callable(epilog) else None,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with these options.")
    parser.add_function_arguments(func, as_positional=True, fail_untyped=True)
    return parser


def build_parser(loaded: Mapping[str, ArgumentParser] | None = None) -> ArgumentParser:
    """The `cxr` parser: every command with its help line, and the options of the function
    commands in `loaded` (built by `command_parser`; the others list only their help)."""
    loaded = loaded or {}
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
    for name in COMMANDS:
        docstring = command_docstring(name)
        sub = loaded.get(name) or ArgumentParser(description=_description(docstring))
        subcommands.add_subcommand(name, sub, help=_summary(docstring))
    return parser


# Short aliases of function-command options (jsonargparse derives only the long names).
_ALIASES = {"-o": "--output"}


def _union_members(typehint: object) -> tuple[object, ...]:
    if typing.get_origin(typehint) in (typing.Union, types.UnionType):
        return typing.get_args(typehint)
    return (typehint,)


def _is_boolean(typehint: object) -> bool:
    """`bool` or `bool | None`: the types for which a bare `--flag` means true."""
    return set(_union_members(typehint)) in ({bool}, {bool, type(None)})


def _is_list(typehint: object) -> bool:
    """A sequence, or a union with one: the types jsonargparse extends by `--name+ VALUE`."""
    sequences = (list, Sequence, MutableSequence, Iterable)
    return any(typing.get_origin(member) in sequences for member in _union_members(typehint))


def option_kinds(parser: ArgumentParser) -> tuple[set[str], set[str]]:
    """The option strings of `parser` that take a boolean and those that take a list, from the
    type each option was declared with."""
    booleans: set[str] = set()
    lists: set[str] = set()
    for action in parser._actions:
        # jsonargparse keeps the declared type of an option on its ActionTypeHint.
        typehint = getattr(action, "_typehint", None)
        if typehint is None:
            continue
        if _is_boolean(typehint):
            booleans.update(action.option_strings)
        if _is_list(typehint):
            lists.update(action.option_strings)
    return booleans, lists


def normalise_options(args: Sequence[str], parser: ArgumentParser) -> list[str]:
    """Accepts `--num-beams` for `--num_beams`, `-o` for `--output`, a bare `--flag` for a
    boolean option (meaning `--flag true`), and a list option given several times."""
    booleans, lists = option_kinds(parser)
    spelled = [_ALIASES.get(arg, arg) for arg in args]
    names = [
        "--" + arg[2:].partition("=")[0].replace("-", "_")
        for arg in spelled
        if arg.startswith("--")
    ]
    repeated = {name for name in lists if names.count(name) > 1}
    normalised: list[str] = []
    for position, arg in enumerate(spelled):
        if not arg.startswith("--"):
            normalised.append(arg)
            continue
        name, equals, value = arg.partition("=")
        name = "--" + name[2:].replace("-", "_")
        append = "+" if name in repeated else ""
        normalised.append(f"{name}{append}{equals}{value}")
        following = spelled[position + 1] if position + 1 < len(spelled) else ""
        if name in booleans and not equals and following.lower() not in ("true", "false"):
            normalised.append("true")
    return normalised


def find_include(config: Path, section: str, include: str) -> Path:
    """The file that section `section` of experiment `config` names: beside `config` (as
    jsonargparse reads it), else under the project's configs/ folder by the same path without
    its leading `../` (so `../model/tiny.yaml` is configs/model/tiny.yaml from any folder)."""
    beside = config.parent / include
    if beside.is_file():
        return beside.resolve()
    in_configs = None
    if not Path(include).is_absolute() and CONFIGS_DIR.is_dir():
        in_configs = CONFIGS_DIR.joinpath(
            *dropwhile(lambda p: p in ("..", "."), Path(include).parts)
        )
        if in_configs.is_file():
            return in_configs
    raise InputError(
        config, f"{section}: {include!r} not found; {_include_hint(beside, in_configs, section)}"
    )


def _include_hint(beside: Path, in_configs: Path | None, section: str) -> str:
    """Where an include was looked for, and what could be written instead."""
    if in_configs is None:
        where = "" if CONFIGS_DIR.is_dir() else f" (no configs/ folder beside cxr at {CONFIGS_DIR})"
        return f"looked for {beside.resolve()}{where}: write the path of an existing file"
    looked = (
        f"looked for {beside.resolve()} (beside this file) and {in_configs} (the project's configs)"
    )
    folders = (in_configs.parent, CONFIGS_DIR / section)
    folder = next((f for f in folders if f.is_dir() and f != CONFIGS_DIR), None)
    if folder is None:
        return (
            f"{looked}; write an absolute path or ../FOLDER/NAME.yaml for a file of {CONFIGS_DIR}"
        )
    names = ", ".join(sorted(p.name for p in folder.iterdir() if p.suffix in INCLUDE_SUFFIXES))
    return f"{looked}; write an absolute path or ../{folder.name}/NAME.yaml for one of {folder}: {names}"


def resolve_experiment_config(config: Path) -> str:
    """The experiment YAML at `config` as YAML text in which each section that names another
    YAML file names it by absolute path (see `find_include`): it parses the same from any folder."""
    try:
        # jsonargparse's own loader, so that every other value keeps the type it would read.
        sections = get_loader("yaml")(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(config, f"cannot read this YAML file: {error}") from error
    if not isinstance(sections, dict):
        raise InputError(config, "expected a mapping of sections (model:, data:, trainer:, ...)")
    for section, value in sections.items():
        if isinstance(value, str) and value.endswith(INCLUDE_SUFFIXES):
            sections[section] = str(find_include(config, section, value))
    return yaml.safe_dump(sections, sort_keys=False)


def with_resolved_includes(args: Sequence[str]) -> list[str]:
    """`args` with each `--config FILE` (`-c FILE`, `--config=FILE`) given as FILE's text by
    `resolve_experiment_config`. A value that is no file (YAML text) is left to the parser."""
    resolved: list[str] = []
    expects_file = False
    for arg in args:
        if arg.startswith("--config="):
            path = arg.partition("=")[2]
            resolved.append("--config=" + (_experiment_text(path) or path))
        elif expects_file:
            resolved.append(_experiment_text(arg) or arg)
        else:
            resolved.append(arg)
        expects_file = arg in ("--config", "-c")
    return resolved


def _experiment_text(path: str) -> str | None:
    return resolve_experiment_config(Path(path)) if Path(path).is_file() else None


def parse_command(args: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The function command `args` name and its options, parsed as `cxr` parses them (only that
    command's module is imported). Exits (SystemExit) on --help and on bad options."""
    args = list(args)
    chosen = args[0] if args and args[0] in COMMANDS else None
    loaded = {chosen: command_parser(chosen)} if chosen else {}
    parser = build_parser(loaded)
    if chosen:
        options = args[1:]
        if chosen in EXPERIMENT_CONFIG_COMMANDS:
            options = with_resolved_includes(options)
        args = [chosen, *normalise_options(options, loaded[chosen])]
    config = parser.parse_args(args)
    name = config.subcommand
    if name not in COMMANDS:
        raise ValueError(f"{name} is run by LightningCLI: call cxr.cli.main")
    return name, {k: v for k, v in vars(config[name]).items() if k != "config"}


def _pop_verbosity(args: list[str]) -> tuple[int, list[str]]:
    """Reads leading -v/-q flags; returns (verbosity, remaining args)."""
    verbosity = 0
    while args and args[0] in ("-v", "--verbose", "-q", "--quiet"):
        verbosity += 1 if args.pop(0) in ("-v", "--verbose") else -1
    return verbosity, args


def configure_logging(verbosity: int) -> None:
    """INFO from cxr by default (-v: DEBUG, -q: WARNING); other libraries speak at WARNING."""
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True
    )
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
        name, options = parse_command(args)
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
