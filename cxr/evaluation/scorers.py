"""Model-based report scorers (CheXbert, RadGraph, ...): the interface their runners meet.

A runner is loaded from local weights the user names (`--scorer_weights chexbert=/path`);
nothing is downloaded. It gives per-study scores of the generated reports against their
references (the section texts, untokenized), which are averaged, so the bootstrap resamples
them as a weighted mean without running the model again. Every known scorer has a status:
it ran, or it is unavailable and why; run_info.json and the printed summary carry that status,
and a scorer that did not run has no number anywhere.

No runner is implemented in this build: `RUNNER_LOADERS` maps every known scorer to None, so
naming weights for one reports it unavailable with that reason. A runner is added by giving
its scorer a loader there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from cxr.errors import InputError
from cxr.evaluation.metric_keys import scorer_key

log = logging.getLogger(__name__)


class ScorerRunner(Protocol):
    """Scores each generated report against its reference with one loaded model."""

    version: str  # changes whenever the scores would (weights, package version)

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """{metric: (studies,) scores}; the corpus value is their mean."""
        ...


RunnerLoader = Callable[[Path], ScorerRunner]

# Every known scorer, and how its runner is loaded from a weights path (None: no runner yet).
RUNNER_LOADERS: dict[str, RunnerLoader | None] = {"chexbert": None, "radgraph": None}


@dataclass(frozen=True)
class ScorerStatus:
    """Whether a scorer ran; `unavailable` says why not (None: it ran)."""

    name: str
    unavailable: str | None = None

    @property
    def note(self) -> str:
        """ "ran", or "unavailable: <reason>"."""
        return "ran" if self.unavailable is None else f"unavailable: {self.unavailable}"


@dataclass
class ModelScorers:
    """The runners that loaded, and a status for every known scorer."""

    runners: dict[str, ScorerRunner] = field(default_factory=dict)
    statuses: list[ScorerStatus] = field(default_factory=list)

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """{metric key: (studies,) scores} of every runner; called once per system."""
        scores: dict[str, np.ndarray] = {}
        for name, runner in self.runners.items():
            for metric, values in runner.per_study(hypotheses, references).items():
                scores[scorer_key(name, metric)] = np.asarray(values, float)
        return scores

    def notes(self) -> dict[str, str]:
        """{scorer: "ran" / "unavailable: reason"} for run_info.json."""
        return {status.name: status.note for status in self.statuses}


def parse_weight_specs(specs: Sequence[str]) -> dict[str, Path]:
    """`name=PATH` entries as {name: path}; an unknown scorer name is an error."""
    parsed: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(spec, "expected NAME=PATH, e.g. chexbert=/models/chexbert.pth")
        key = name.strip().lower()
        if key not in RUNNER_LOADERS:
            raise InputError(spec, f"unknown scorer {key!r} (known: {', '.join(RUNNER_LOADERS)})")
        parsed[key] = Path(path.strip())
    return parsed


def load_scorers(weights: Mapping[str, Path]) -> ModelScorers:
    """Loads the runner of every scorer given weights; a status for every known scorer."""
    scorers = ModelScorers()
    for name, loader in RUNNER_LOADERS.items():
        path = weights.get(name)
        if path is None:
            scorers.statuses.append(ScorerStatus(name, "no local weights given"))
            continue
        if not path.exists():
            raise InputError(path, f"weights for scorer {name!r} not found")
        if loader is None:
            reason = f"weights given ({path}) but no {name} runner in this build"
            log.warning("%s: unavailable: %s", name, reason)
            scorers.statuses.append(ScorerStatus(name, reason))
            continue
        scorers.runners[name] = loader(path)
        scorers.statuses.append(ScorerStatus(name))
    return scorers
