"""`cxr data-check`: what the data module reads from a config, counted per split and source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentError, ArgumentParser
from jsonargparse.typing import Path_fr

from cxr.data.datamodule import ReportDataModule
from cxr.data.splits import Split
from cxr.errors import CxrError

log = logging.getLogger(__name__)

COLUMNS = (
    "studies",
    "patients",
    "frontal",
    "lateral",
    "prior",
    "report",
    "tube_line_labels",
    "change_labels",
    "observation_labels",
)


def data_check(
    data: Path_fr | dict[str, Any] | None = None,
    model: Any = None,
    trainer: Any = None,
    seed_everything: Any = None,
    optimizer: Any = None,
    lr_scheduler: Any = None,
    ckpt_path: Any = None,
) -> int:
    """Count the studies, patients, images, priors, reports and labels a data config yields.

    Reads every source of the data module and prints the counts per split and per source.
    Give an experiment YAML with `--config configs/experiment/X.yaml` (its `data:` section is
    used, the rest ignored) or a data YAML with `--data configs/data/X.yaml`. Exits 1 when the
    sources yield no study at all.

    Args:
        data: The data module's options: a data YAML, or the `data:` section of the --config file.
        model: Ignored (accepted so that an experiment YAML can be given as --config).
        trainer: Ignored, as model.
        seed_everything: Ignored, as model.
        optimizer: Ignored, as model.
        lr_scheduler: Ignored, as model.
        ckpt_path: Ignored, as model.
    """
    if data is None:
        raise CxrError("give --config EXPERIMENT.yaml (with a data: section) or --data DATA.yaml")
    module = build_data_module(data)
    table = module.summary()
    print(format_counts(table))
    for number, source in enumerate(module.sources):
        print(f"\nsource {number}: {source.adapter} {source.root} (weight {source.weight:g})")
        print(format_counts(module.summary(number)))
    total = sum(counts["studies"] for counts in table.values())
    if total == 0:
        log.error("the sources yielded no study: check the roots and options above")
        return 1
    return 0


def build_data_module(data: Path | str | dict[str, Any]) -> ReportDataModule:
    """A ReportDataModule from a data YAML file or a mapping of its options, checked as
    LightningCLI checks it (a wrong key is an error that names it)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(ReportDataModule, "data")
    try:
        if isinstance(data, dict):
            config = parser.parse_object({"data": data})
        else:
            # A path read from a config file is relative to that file's folder.
            path = data.absolute if isinstance(data, Path_fr) else str(data)
            config = parser.parse_args(["--data", str(path)])
        module = parser.instantiate(config).data
    except (ArgumentError, TypeError, ValueError) as error:
        raise CxrError(f"invalid data config: {error}") from error
    if not isinstance(module, ReportDataModule):
        raise CxrError("the data config did not build a ReportDataModule")
    return module


def format_counts(table: dict[Split, dict[str, int]]) -> str:
    """Counts as a text table: one row per split, one column per count."""
    widths = [max(len(c), 8) + 1 for c in COLUMNS]
    lines = ["split".ljust(6) + "".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    for split, counts in table.items():
        cells = "".join(str(counts[c]).rjust(w) for c, w in zip(COLUMNS, widths, strict=True))
        lines.append(split.value.ljust(6) + cells)
    return "\n".join(lines)
