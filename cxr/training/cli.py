"""`cxr fit/validate/test`: LightningCLI over ReportModule and ReportDataModule, built from YAML."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from cxr.data.datamodule import ReportDataModule
from cxr.training.module import ReportModule


class ReportCLI(LightningCLI):
    """Gives the model the tokenizer the data module trained or loaded."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.tokenizer", "model.model.init_args.tokenizer", apply_on="instantiate"
        )


def run_lightning_cli(args: Sequence[str]) -> None:
    """Runs one LightningCLI subcommand (`fit`, `validate`, `test`) with its arguments."""
    # `cxr` passes its own argv on explicitly, which LightningCLI warns about by default.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter", category=UserWarning)
    ReportCLI(
        ReportModule,
        ReportDataModule,
        args=list(args),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "cxr"},
        auto_configure_optimizers=False,
    )
