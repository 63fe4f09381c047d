"""Dataset adapters: each turns one dataset layout into `Study` records.

Adapters are registered by name in `ADAPTERS`; a data config picks one with `adapter: NAME`
and passes the adapter's own options beside `root`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from cxr.data.datasets.manifest import ManifestDataset
from cxr.data.datasets.phantom import PhantomDataset
from cxr.errors import CxrError
from cxr.types import Study


class Adapter(Protocol):
    name: str

    def studies(self) -> Iterator[Study]: ...


ADAPTERS: dict[str, type[Any]] = {
    PhantomDataset.name: PhantomDataset,
    ManifestDataset.name: ManifestDataset,
}


def build_adapter(adapter: str, root: Path, **options: Any) -> Adapter:
    """The adapter registered as `adapter`, constructed with its root folder and options."""
    if adapter not in ADAPTERS:
        raise CxrError(f"unknown dataset adapter {adapter!r}; known: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[adapter](root, **options)  # type: ignore[no-any-return]


__all__ = ["ADAPTERS", "Adapter", "ManifestDataset", "PhantomDataset", "build_adapter"]
