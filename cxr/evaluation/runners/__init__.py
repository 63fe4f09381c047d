"""Runners of the model-based scorers, one module per package scorer (see cxr.evaluation.scorers).

The packages read some settings from module constants or build their parts by module-level
names (a checkpoint cache folder, `F1CheXbert(...)`, `RadGraph(...)`); `replaced` swaps such a
name for the duration of a load, so that the package's own code runs with cxr's weights folder
and options.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType


@contextmanager
def replaced(module: ModuleType, name: str, value: object) -> Iterator[None]:
    """`module.name` is `value` inside the block, and what it was afterwards."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)
