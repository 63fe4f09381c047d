"""Optional model-based report scorers (CheXbert, RadGraph, ...) behind a small plugin interface.

A scorer runs only from local weights the user names (`--scorer_weights chexbert=/path`); it
never downloads. Nothing is registered for CheXbert or RadGraph in this build: naming their
weights therefore reports them as skipped with that reason rather than pretending to score.
A plugin registers a factory with `register_scorer(name, factory)`; the factory receives the
weights path and returns a `ModelScorer`, whose per-study scores are averaged (and so
bootstrapped as a weighted mean).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cxr.errors import InputError

log = logging.getLogger(__name__)

KNOWN_SCORERS: tuple[str, ...] = ("chexbert", "radgraph")


class ModelScorer(Protocol):
    """Scores each generated report against its reference."""

    name: str

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """{metric name: (studies,) scores}; the corpus value is their mean."""
        ...


ScorerFactory = Callable[[Path], ModelScorer]
_FACTORIES: dict[str, ScorerFactory] = {}


def register_scorer(name: str, factory: ScorerFactory) -> None:
    """Makes a model-based scorer available under `name` (lower case)."""
    _FACTORIES[name.lower()] = factory


@dataclass(frozen=True)
class ScorerStatus:
    """Whether a model-based scorer ran, and why not."""

    name: str
    ran: bool
    note: str


def parse_weight_specs(specs: Sequence[str]) -> dict[str, Path]:
    """`name=PATH` entries as {name: path}."""
    parsed: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(spec, "expected NAME=PATH, e.g. chexbert=/models/chexbert.pth")
        parsed[name.strip().lower()] = Path(path.strip())
    return parsed


def load_scorers(weights: dict[str, Path]) -> tuple[list[ModelScorer], list[ScorerStatus]]:
    """The scorers that can run from the given local weights, and a status for every scorer."""
    scorers: list[ModelScorer] = []
    statuses: list[ScorerStatus] = []
    for name in sorted({*KNOWN_SCORERS, *_FACTORIES, *weights}):
        path = weights.get(name)
        if path is None:
            statuses.append(ScorerStatus(name, False, "skipped: no local weights given"))
            continue
        if not path.exists():
            raise InputError(path, f"weights for scorer {name!r} not found")
        factory = _FACTORIES.get(name)
        if factory is None:
            note = (
                f"skipped: weights given ({path}) but no {name} runner is implemented in this build"
            )
            log.warning("%s", note)
            statuses.append(ScorerStatus(name, False, note))
            continue
        scorers.append(factory(path))
        statuses.append(ScorerStatus(name, True, f"ran from {path}"))
    return scorers, statuses
