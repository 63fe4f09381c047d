"""`cxr fit/validate/test`: LightningCLI over ReportModule and ReportDataModule, built from YAML."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from torch.optim import Optimizer

from cxr.cli import with_resolved_includes
from cxr.data.datamodule import ReportDataModule
from cxr.training.module import ReportModule


def _as_dict(value: Namespace | None) -> dict[str, Any] | None:
    """A parsed class_path/init_args value as the plain dict ReportModule takes."""
    return None if value is None else value.as_dict()


class ReportCLI(LightningCLI):
    """Gives the model the tokenizer the data module trained or loaded, and the top-level
    `optimizer:` / `lr_scheduler:` keys to ReportModule, which builds them around its own
    parameter groups (see `ReportModule.configure_optimizers`)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.tokenizer", "model.model.init_args.tokenizer", apply_on="instantiate"
        )
        # Added as LightningCLI adds them, then linked here as plain dicts (Lightning's own
        # `link_to` passes a jsonargparse Namespace, which a typed `dict` option refuses).
        parser.add_optimizer_args((Optimizer,))
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
        parser.link_arguments("optimizer", "model.optimizer", compute_fn=_as_dict)
        parser.link_arguments("lr_scheduler", "model.lr_scheduler", compute_fn=_as_dict)


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
        # The optimizer keys are linked to the module (above): LightningCLI's automatic
        # configure_optimizers would drop its parameter groups and the step-wise schedule.
        auto_configure_optimizers=False,
        run=run,
    )


def run_lightning_cli(args: Sequence[str]) -> None:
    """Runs one LightningCLI subcommand (`fit`, `validate`, `test`) with its arguments."""
    build_lightning_cli(args)
