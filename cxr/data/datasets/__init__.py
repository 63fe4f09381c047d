"""Dataset adapters: each turns one dataset layout into `Study` records.

Adapters are registered by name in `ADAPTERS`; a data config picks one with `adapter: NAME`
and passes the adapter's own options beside `root`. An adapter whose dataset ships an official
split also has `patient_splits() -> dict[patient_id, Split]`, which the data module uses for
that source's patients (a split file given to the data module still wins).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from cxr.data.datasets.iu_xray import IuXrayDataset
from cxr.data.datasets.manifest import ManifestDataset
from cxr.data.datasets.mimic_cxr import MimicCxrDataset, MimicCxrJpgDataset
from cxr.data.datasets.ms_cxr_t import MsCxrTDataset
from cxr.data.datasets.phantom import PhantomDataset
from cxr.data.datasets.ranzcr import RanzcrDataset
from cxr.data.splits import Split
from cxr.errors import CxrError
from cxr.types import Study


class Adapter(Protocol):
    name: str

    def studies(self) -> Iterator[Study]: ...


ADAPTERS: dict[str, type[Any]] = {
    PhantomDataset.name: PhantomDataset,
    ManifestDataset.name: ManifestDataset,
    MimicCxrDataset.name: MimicCxrDataset,
    MimicCxrJpgDataset.name: MimicCxrJpgDataset,
    IuXrayDataset.name: IuXrayDataset,
    RanzcrDataset.name: RanzcrDataset,
    MsCxrTDataset.name: MsCxrTDataset,
}


def build_adapter(adapter: str, root: Path, **options: Any) -> Adapter:
    """The adapter registered as `adapter`, constructed with its root folder and options."""
    if adapter not in ADAPTERS:
        raise CxrError(f"unknown dataset adapter {adapter!r}; known: {', '.join(sorted(ADAPTERS))}")
    cls = ADAPTERS[adapter]
    accepted = set(inspect.signature(cls).parameters) - {"root"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise CxrError(
            f"adapter {adapter!r} has no option(s) {', '.join(unknown)}; it accepts: {', '.join(sorted(accepted))}"
        )
    return cls(root, **options)


def official_splits(adapter: Adapter) -> dict[str, Split]:
    """patient_id -> split the dataset ships, for adapters that have one; else empty."""
    patient_splits = getattr(adapter, "patient_splits", None)
    return dict(patient_splits()) if callable(patient_splits) else {}


__all__ = [
    "ADAPTERS",
    "Adapter",
    "IuXrayDataset",
    "ManifestDataset",
    "MimicCxrDataset",
    "MimicCxrJpgDataset",
    "MsCxrTDataset",
    "PhantomDataset",
    "RanzcrDataset",
    "build_adapter",
    "official_splits",
]
