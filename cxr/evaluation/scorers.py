"""Model-based report scorers (CheXbert-F1, RadGraph-F1, BERTScore, ...): the interface their
runners meet, their registry, and the per-study score cache.

Each runner (cxr/evaluation/runners/) wraps a maintained package's own scorer (RadEval, in
the `clinical-metrics` extra) and declares a `ScorerSpec`: the package, the hub files it needs,
the metrics it gives and its parity test. Its weights come from a local hub cache the user
names (`--scorer chexbert=DIR`, see cxr.evaluation.hub_cache); nothing is downloaded. A runner
is one of two kinds:

- a `PairRunner` gives per-study scores of each generated report against its reference; the
  corpus value is their (bootstrap-weighted) mean, so resamples never run the model again;
- a `LabelRunner` gives each report's 14 CheXpert observation labels; the evaluation counts
  them as clinical efficacy does (uncertain as positive, the field's convention for
  CheXbert-F1), again from per-study counts.

Per-study results are cached on disk (`ScoreCache`), keyed by the scorer's version (package
version and weight files) and the report texts, so --compare, the baselines and a second
`cxr evaluate` on the same reports do not run a model again. Every known scorer has a status:
it ran, or it is unavailable and why; metrics.json, the table and run_info.json carry that
status, and a scorer that did not run has no number anywhere.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from cxr.errors import CxrError, InputError
from cxr.evaluation.hub_cache import HubFile, download_commands, hub_cache, require
from cxr.evaluation.metric_keys import reciprocal_key

log = logging.getLogger(__name__)

EXTRA = "clinical-metrics"  # the optional dependencies the runners need
INSTALL_HINT = f"pip install -e '.[{EXTRA}]'"


@dataclass(frozen=True)
class ScorerOptions:
    """How runners run: device, batch size, and whether they show a progress bar."""

    device: str = "cpu"
    batch_size: int = 16
    progress: bool = True
    trust_remote_code: bool = False  # run Python code a weights folder ships (GREEN's tokenizer)


class ScorerUnavailable(CxrError):
    """Raised by a spec's `load` when its package cannot run here; the scorer is then shown
    as unavailable with this reason, like one without a weights folder."""


@runtime_checkable
class PairRunner(Protocol):
    """Scores each generated report against its reference with one loaded model."""

    version: str  # changes whenever the scores would (weights, package version, settings)
    # True when a study's score depends on the whole reference corpus (e.g. IDF weights
    # computed from the references): its cached scores are then filed under a digest of all
    # references, and all pairs are scored together whenever one is missing.
    corpus_dependent: bool

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """{metric: (studies,) scores}; the corpus value is their mean."""
        ...


@runtime_checkable
class LabelRunner(Protocol):
    """Labels each report with the 14 CheXpert observations (cxr.types.OBSERVATIONS order)."""

    version: str

    def labels(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, 14) labels: 1 positive, 0 negative or not mentioned, -1 uncertain."""
        ...


Runner = PairRunner | LabelRunner


@dataclass(frozen=True)
class ScorerSpec:
    """A scorer cxr knows: everything `--help`, the README and the loader say about it."""

    name: str  # as given to --scorer NAME=DIR
    summary: str  # what it measures, one line
    package: str  # the package (and module) that computes it
    needs: tuple[HubFile, ...]  # hub files the weights folder must hold
    metrics: tuple[str, ...]  # its metric keys, as metrics.json names them
    parity_test: str  # the test that checks cxr's numbers against the package's
    load: Callable[[Path, ScorerOptions], Runner]  # called inside hub_cache(folder)
    reciprocals: tuple[str, ...] = ()  # per-study metrics also reported as 1 / corpus mean

    def metric_names(self) -> tuple[str, ...]:
        """Every name its results appear under: its metrics, then their reciprocals."""
        return (*self.metrics, *(reciprocal_key(metric) for metric in self.reciprocals))


# The runner modules; each defines SCORERS, a tuple of ScorerSpec. Their imports are light:
# the packages themselves are imported by `load`.
RUNNER_MODULES: tuple[str, ...] = (
    "cxr.evaluation.runners.chexbert",
    "cxr.evaluation.runners.radgraph",
    "cxr.evaluation.runners.bertscore",
    "cxr.evaluation.runners.radcliq",
    "cxr.evaluation.runners.ratescore",
    "cxr.evaluation.runners.green",
)


@cache
def known_scorers() -> dict[str, ScorerSpec]:
    """Every scorer of every runner module, by name, in registry order."""
    specs: dict[str, ScorerSpec] = {}
    for module in RUNNER_MODULES:
        for spec in importlib.import_module(module).SCORERS:
            specs[spec.name] = spec
    return specs


def weights_version(folder: Path, needs: Sequence[HubFile]) -> str:
    """A digest of the weight files a scorer loads (their snapshot paths and sizes)."""
    from huggingface_hub import try_to_load_from_cache

    digest = hashlib.sha256()
    for need in needs:
        path = try_to_load_from_cache(need.repo_id, need.filename, cache_dir=str(folder))
        if isinstance(path, str):
            resolved = Path(path)
            digest.update(f"{need.repo_id}/{need.filename}:{resolved.parent.name}".encode())
            digest.update(str(resolved.stat().st_size).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ScorerStatus:
    """Whether a scorer ran; `unavailable` says why not (None: it ran)."""

    name: str
    unavailable: str | None = None

    @property
    def note(self) -> str:
        """ "ran", or "unavailable: <reason>"."""
        return "ran" if self.unavailable is None else f"unavailable: {self.unavailable}"


class ScoreCache:
    """Per-study results on disk: {(scorer version, key texts): JSON value}, one SQLite file."""

    def __init__(self, folder: Path | None) -> None:
        """`folder` None: nothing is kept between calls."""
        self.path = None if folder is None else folder / "scores.sqlite"
        self._memory: dict[tuple[str, str], str] = {}
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(sqlite3.connect(self.path)) as db, db:
                    db.execute(
                        "CREATE TABLE IF NOT EXISTS scores"
                        " (version TEXT, key TEXT, value TEXT, PRIMARY KEY (version, key))"
                    )
            except (OSError, sqlite3.Error) as error:
                raise InputError(self.path.parent, f"score cache not writable: {error}") from error

    @staticmethod
    def key(*texts: str) -> str:
        return hashlib.sha256(json.dumps(texts).encode()).hexdigest()

    def get(self, version: str, keys: Sequence[str]) -> dict[str, str]:
        found = {k: self._memory[(version, k)] for k in keys if (version, k) in self._memory}
        wanted = [k for k in dict.fromkeys(keys) if k not in found]
        if self.path is not None and wanted:
            with closing(sqlite3.connect(self.path)) as db:
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT key, value FROM scores WHERE version = ? AND key IN ({marks})",
                        [version, *chunk],
                    )
                    found.update(dict(rows))
        return found

    def put(self, version: str, values: Mapping[str, str]) -> None:
        self._memory.update({(version, k): v for k, v in values.items()})
        if self.path is not None and values:
            with closing(sqlite3.connect(self.path)) as db, db:
                db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                    [(version, k, v) for k, v in values.items()],
                )


def default_cache_folder() -> Path:
    """$XDG_CACHE_HOME/cxr/scores (default ~/.cache/cxr/scores)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cxr" / "scores"


@dataclass
class LoadedScorer:
    """A runner, its weights folder and the version its cached results are filed under."""

    runner: Runner
    folder: Path | None = None  # the hub cache it loads from; None: a runner built in code
    version: str = ""
    reciprocals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.version = self.version or self.runner.version

    def context(self) -> AbstractContextManager[None]:
        """Where its runner runs: inside its hub cache (nothing for a runner built in code)."""
        return hub_cache(self.folder) if self.folder is not None else nullcontext()


@dataclass
class ScorerResults:
    """One system's model-based results: per-study scores and per-study label tables."""

    scores: dict[str, np.ndarray] = field(default_factory=dict)  # {metric: (studies,)}
    labels: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # {scorer: (generated labels, reference labels)}, each (studies, 14)
    reciprocals: list[str] = field(default_factory=list)  # metrics of `scores` also as 1/mean


@dataclass
class ModelScorers:
    """The runners that loaded, a status for every known scorer, and the score cache."""

    runners: dict[str, LoadedScorer | Runner] = field(default_factory=dict)
    statuses: list[ScorerStatus] = field(default_factory=list)
    cache: ScoreCache = field(default_factory=lambda: ScoreCache(None))

    def _loaded(self) -> Iterator[tuple[str, LoadedScorer]]:
        for name, runner in self.runners.items():
            yield name, runner if isinstance(runner, LoadedScorer) else LoadedScorer(runner)

    def per_study(self, hypotheses: Sequence[str], references: Sequence[str]) -> ScorerResults:
        """Every runner's per-study results, from the cache where it holds them."""
        results = ScorerResults()
        for name, loaded in self._loaded():
            with loaded.context():
                if isinstance(loaded.runner, LabelRunner):
                    results.labels[name] = (
                        self._labels(loaded, hypotheses),
                        self._labels(loaded, references),
                    )
                else:
                    results.scores.update(self._pair_scores(loaded, hypotheses, references))
                    results.reciprocals += loaded.reciprocals
        return results

    def _labels(self, loaded: LoadedScorer, texts: Sequence[str]) -> np.ndarray:
        runner = loaded.runner
        assert isinstance(runner, LabelRunner)
        keys = [ScoreCache.key(t) for t in texts]
        cached = self.cache.get(loaded.version, keys)
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in cached}
        if todo:
            computed = np.asarray(runner.labels(list(todo.values())), float)
            new = {k: json.dumps(row.tolist()) for k, row in zip(todo, computed, strict=True)}
            self.cache.put(loaded.version, new)
            cached.update(new)
        return np.array([json.loads(cached[k]) for k in keys], float).reshape(len(keys), -1)

    def _pair_scores(
        self, loaded: LoadedScorer, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        runner = loaded.runner
        assert isinstance(runner, PairRunner)
        pairs = list(zip(hypotheses, references, strict=True))
        keys = [ScoreCache.key(h, r) for h, r in pairs]
        version = loaded.version
        if runner.corpus_dependent:
            version = f"{version}:references {ScoreCache.key(*references)}"
        cached = self.cache.get(version, keys)
        todo = {k: p for k, p in zip(keys, pairs, strict=True) if k not in cached}
        if todo and runner.corpus_dependent:
            todo = dict(zip(keys, pairs, strict=True))  # the corpus is scored as a whole
        if todo:
            hyps, refs = zip(*todo.values(), strict=True)
            computed = runner.per_study(list(hyps), list(refs))
            new = {
                k: json.dumps({m: float(v[i]) for m, v in computed.items()})
                for i, k in enumerate(todo)
            }
            self.cache.put(version, new)
            cached.update(new)
        rows = [json.loads(cached[k]) for k in keys]
        metrics = list(rows[0]) if rows else []
        return {m: np.array([row[m] for row in rows], float) for m in metrics}

    def notes(self) -> dict[str, str]:
        """{scorer: "ran" / "unavailable: reason"} for run_info.json."""
        return {status.name: status.note for status in self.statuses}

    def unavailable_metrics(self) -> dict[str, str]:
        """{metric key: "unavailable: reason"} of every known scorer that did not run."""
        missing = [status for status in self.statuses if status.unavailable is not None]
        specs = known_scorers() if missing else {}
        return {
            metric: status.note
            for status in missing
            if status.name in specs
            for metric in specs[status.name].metric_names()
        }


def parse_scorer_specs(specs: Sequence[str]) -> dict[str, Path]:
    """`name=DIR` entries as {name: folder}; an unknown scorer name is an error."""
    parsed: dict[str, Path] = {}
    known = known_scorers()
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(spec, "expected NAME=DIR, e.g. chexbert=/models/scorer-cache")
        key = name.strip().lower()
        if key not in known:
            raise InputError(spec, f"unknown scorer {key!r} (known: {', '.join(known)})")
        parsed[key] = Path(path.strip()).expanduser()
    return parsed


def _package_missing() -> str | None:
    """Why the clinical-metrics extra cannot be used, or None when it can."""
    try:
        importlib.import_module("radeval")
    except ImportError as error:
        return f"package RadEval not installed ({error.name}); {INSTALL_HINT}"
    return None


def load_scorers(
    folders: Mapping[str, Path],
    options: ScorerOptions | None = None,
    cache_folder: Path | None = None,
) -> ModelScorers:
    """Loads the runner of every scorer given a weights folder; a status for every known one.

    A folder that is missing or lacks files is an error naming them (the user asked for that
    scorer); a scorer without a folder, or without its package installed, is unavailable.
    """
    options = options or ScorerOptions()
    scorers = ModelScorers(cache=ScoreCache(cache_folder))
    package_missing = _package_missing() if folders else None
    specs = known_scorers()
    for name, given in folders.items():  # every folder checked before any model loads
        if name not in specs:
            raise InputError(name, f"unknown scorer (known: {', '.join(specs)})")
        require(name, given, specs[name].needs)
    for name, spec in specs.items():
        folder = folders.get(name)
        if folder is None:
            scorers.statuses.append(
                ScorerStatus(name, f"no weights folder given (--scorer {name}=DIR)")
            )
            continue
        if package_missing is not None:
            log.warning("%s: unavailable: %s", name, package_missing)
            scorers.statuses.append(ScorerStatus(name, package_missing))
            continue
        with hub_cache(folder):
            try:
                runner = spec.load(folder, options)
            except ScorerUnavailable as error:
                log.warning("%s: unavailable: %s", name, error)
                scorers.statuses.append(ScorerStatus(name, str(error)))
                continue
            except (OSError, ValueError, KeyError, RuntimeError) as error:
                raise CxrError(f"{folder}: scorer {name!r} did not load: {error}") from error
        version = f"{name}:{runner.version}:{weights_version(folder, spec.needs)}"
        scorers.runners[name] = LoadedScorer(runner, folder, version, spec.reciprocals)
        scorers.statuses.append(ScorerStatus(name))
    return scorers


def scorer_help() -> str:
    """The model-based scorers for `cxr evaluate --help`: name, metrics, package, the files
    its --scorer folder must hold (with the command that fetches them) and its parity test."""
    lines = [
        "model-based scorers (--scorer NAME=DIR; DIR is a Hugging Face hub cache; the "
        f"packages come with {INSTALL_HINT}):"
    ]
    for spec in known_scorers().values():
        lines += [
            f"  {spec.name}: {spec.summary}",
            f"    metrics: {', '.join(spec.metric_names())}",
            f"    package: {spec.package}",
            "    weights: " + "; ".join(f"{n.repo_id}/{n.filename}" for n in spec.needs),
            "    fetch:   " + " && ".join(download_commands(spec.needs, "DIR")),
            f"    parity test: {spec.parity_test}",
        ]
    return "\n".join(lines)
