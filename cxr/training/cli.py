"""`cxr fit/validate/test`: LightningCLI over ReportModule and ReportDataModule, built from YAML."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from cxr.cli import with_resolved_includes
from cxr.data.datamodule import ReportDataModule
from cxr.training.module import ReportModule


class ReportCLI(LightningCLI):
    """Gives the model the tokenizer the data module trained or loaded."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.tokenizer", "model.model.init_args.tokenizer", apply_on="instantiate"
        )


def build_lightning_cli(args: Sequence[str], run: bool = True) -> ReportCLI:
    """The LightningCLI of `cxr`: runs one subcommand (`fit`, `validate`, `test`) with its
    arguments, or with `run=False` (no subcommand in `args`) only builds the model, data module
    and trainer. Includes of each `--config` experiment resolve as `cxr.cli.find_include` says."""
    # `cxr` passes its own argv on explicitly, which LightningCLI warns about by default.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter", category=UserWarning)
    return ReportCLI(
        ReportModule,
        ReportDataModule,
        args=with_resolved_includes(args),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "cxr"},
        auto_configure_optimizers=False,
        run=run,
    )


def run_lightning_cli(args: Sequence[str]) -> None:
    """Runs one LightningCLI subcommand (`fit`, `validate`, `test`) with its arguments."""
    build_lightning_cli(args)
