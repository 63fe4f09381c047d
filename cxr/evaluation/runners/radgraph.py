"""RadGraph-F1 (Jain et al., 2021; Delbrouck et al., 2022): the entities (anatomy and
observations, present / uncertain / absent) and relations (located_at, modify,
suggestive_of) a RadGraph model extracts from a generated report, compared with those it
extracts from the reference; one number per study.

All three scorers run RadEval's vendored copy of Stanford-AIMI/radgraph 0.1.18
(radeval/metrics/radgraph/_vendor): a DyGIE++ span model over a BERT encoder, loaded from the
archive `radgraph.tar.gz` or `radgraph-xl.tar.gz` of the hub repo StanfordAIMI/RRG_scorers
(its config.json, `vocabulary` folder and weights.th) and the tokenizer and config of the
BERT its config.json names (`TRANSFORMERS`; the encoder is built from that config and its
weights come from weights.th).

- `radgraph`: `F1RadGraph(reward_level="all", model_type="radgraph")`, the per-study rewards
  of `compute_reward` at its three levels: RG_E ("simple": entities by tokens and label),
  RG_ER ("partial": entities with their relation labels; the papers' RadGraph-F1, e.g.
  MAIRA-2's) and RG_ER-bar ("complete": entities with their relations' targets). RadEval's
  corpus value is `np.mean` of each per-study list, the plain mean cxr reports.
- `radgraph-xl`: the same with model_type="radgraph-xl", the model RadEval's own "radgraph"
  metric adapter uses (radeval/metrics/_radgraph_adapter.py), so RadEval's "radgraph_simple /
  _partial / _complete" are these keys, not the `radgraph` ones.
- `radgraph-rexrank`: `RadGraphRadCliQ(model_type="radgraph")`, per study (entity F1 +
  relation F1) / 2, the RadGraph score of CXR-Report-Metric that ReXrank and RadCliQ-v1 use.
  Its corpus value is `sum(scores) / len(scores)`, again the plain mean.

Conventions of the package, kept as they are:
- `F1RadGraph` gives a study whose generated or reference report is empty ("") 0 at every
  level without running the model, even when both are empty.
- `RadGraphRadCliQ` runs every report, an empty one as the text "None" (`RadGraph.forward`):
  an empty report scores what the model extracts from the word "None" against the other
  report, so two empty reports score 1 if it extracts entities and relations from "None"
  and 0 if it extracts nothing (`_compute_f1` of two empty sets is 0).
- The model reads one report at a time (its DataLoader has batch size 1 whatever
  `batch_size` is), so a study's score depends on its own pair only.

What cxr sets around RadEval, and why:
- RadEval 2.2.1's vendored code imports itself as `RadEval.metrics...` while the wheel
  installs the package as `radeval` (jbdel/RadEval#27), so on a case-sensitive file system
  it cannot be imported at all. cxr resolves `RadEval.*` to the installed `radeval.*` (the
  same module objects, not copies) when, and only when, no `RadEval` package is importable.
- RadGraph downloads the archive into `model_cache_dir` (default: the module constant
  `radeval.metrics.radgraph._vendor.core.CACHE_DIR`, appdirs' user cache), which `hub_cache`
  does not redirect; cxr passes the weights folder as `model_cache_dir` (to
  `RadGraphRadCliQ`, which takes no such argument, by replacing the name `RadGraph` in its
  module while it loads). As the package does, loading then extracts the archive into
  DIR/<model_type>/ (DIR must be writable) and later loads read that folder without looking
  at the archive again: delete DIR/<model_type>/ after replacing the archive.
- A blank report (only white space) has no tokens, and the package fails on it (an
  AssertionError in AllenNLP's ListField); cxr hands it over as "", the package's empty report.
- `ScorerOptions.device` becomes RadGraph's `cuda` (-1 for the CPU, N for cuda:N). The
  package takes reports in one list and reports no progress, so cxr calls it once per
  `batch_size` pairs, which gives the same per-study numbers, to show a progress bar.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from cxr.evaluation.hub_cache import HubFile
from cxr.evaluation.runners import replaced
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec, ScorerUnavailable

ARCHIVE_REPO = "StanfordAIMI/RRG_scorers"
ARCHIVES = {"radgraph": "radgraph.tar.gz", "radgraph-xl": "radgraph-xl.tar.gz"}  # MODEL_MAPPING
# The BERT each archive's config.json names (dataset_reader.token_indexers.bert.model_name and
# model.embedder.token_embedders.bert.model_name); its hub repo serves config.json and
# vocab.txt, from which AutoTokenizer builds the (uncased WordPiece) tokenizer. PubMedBERT is
# the encoder of RadGraph's DyGIE++ configs; not yet checked against the archives' config.json
# (the parity test checks that the needs follow what config.json names).
TRANSFORMERS = {
    "radgraph": "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext",
    "radgraph-xl": "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext",
}
TRANSFORMER_FILES = ("config.json", "vocab.txt")
REWARD_LEVELS = ("RG_E", "RG_ER", "RG_ER-bar")  # F1RadGraph's "simple", "partial", "complete"
REXRANK_METRIC = "RadGraph-F1-ReXrank"
CORE_MODULE = "radeval.metrics.radgraph._vendor.core"
RADCLIQ_MODULE = "radeval.metrics.radgraph_radcliq.radgraph_radcliq"
VENDOR_PREFIX = "RadEval"  # the package name RadEval's vendored radgraph imports itself by


def needs(model_type: str) -> tuple[HubFile, ...]:
    """The hub files RadGraph `model_type` loads: its archive and its BERT's tokenizer."""
    return (
        HubFile(ARCHIVE_REPO, ARCHIVES[model_type]),
        *(HubFile(TRANSFORMERS[model_type], filename) for filename in TRANSFORMER_FILES),
    )


def reward_metrics(model_type: str) -> tuple[str, ...]:
    """RadGraph-F1-RG_E, ... (RadGraph-XL-F1-... for radgraph-xl), in F1RadGraph's order."""
    prefix = {"radgraph": "RadGraph", "radgraph-xl": "RadGraph-XL"}[model_type]
    return tuple(f"{prefix}-F1-{level}" for level in REWARD_LEVELS)


class _RadEvalAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `RadEval.x` as the installed `radeval.x`: the same module object, not a copy."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != VENDOR_PREFIX and not fullname.startswith(f"{VENDOR_PREFIX}."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module("radeval" + spec.name[len(VENDOR_PREFIX) :])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported under its own name."""


@functools.cache
def vendored_core() -> ModuleType:
    """RadEval's vendored radgraph core (RadGraph, F1RadGraph), importable on Linux too."""
    if importlib.util.find_spec(VENDOR_PREFIX) is None:
        # first: the path finder would otherwise load `RadEval.x.y` again from radeval/x/
        sys.meta_path.insert(0, _RadEvalAlias())
    return importlib.import_module(CORE_MODULE)


def radgraph_cuda(device: str) -> int:
    """RadGraph's `cuda` argument for a torch device name: -1 for "cpu", N for "cuda:N"."""
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return -1
    if kind == "cuda":
        return int(index or 0)
    raise ScorerUnavailable(f"RadGraph runs on the CPU or CUDA, not on device {device!r}")


def _radeval_version() -> str:
    return f"RadEval {importlib.metadata.version('RadEval')}"


def radgraph_options(folder: Path, options: ScorerOptions) -> dict[str, Any]:
    """RadGraph's keyword arguments: the weights folder, the device and the batch size."""
    return {
        "model_cache_dir": str(folder),
        "cuda": radgraph_cuda(options.device),
        "batch_size": options.batch_size,
    }


def _unblank(reports: Sequence[str]) -> list[str]:
    """The reports, each blank one (only white space) as ""."""
    return [report if report.strip() else "" for report in reports]


def _in_batches(
    score: Callable[[list[str], list[str]], list[np.ndarray]],
    hypotheses: Sequence[str],
    references: Sequence[str],
    options: ScorerOptions,
    desc: str,
) -> list[np.ndarray]:
    """`score(hypotheses, references)` once per batch of pairs, its columns concatenated;
    blank reports are given as "" (see the module docstring)."""
    from tqdm import tqdm

    hypotheses, references = _unblank(hypotheses), _unblank(references)

    size = options.batch_size
    columns: list[list[np.ndarray]] = []
    with tqdm(
        total=math.ceil(len(hypotheses) / size),
        desc=desc,
        unit="batch",
        disable=not options.progress,
    ) as bar:
        for start in range(0, len(hypotheses), size):
            stop = start + size
            columns.append(score(list(hypotheses[start:stop]), list(references[start:stop])))
            bar.update()
    if not columns:
        return []
    return [np.concatenate(parts).astype(float) for parts in zip(*columns, strict=True)]


class F1RadGraphRunner:
    """RadEval's F1RadGraph at all three reward levels, loaded once, scoring report pairs."""

    corpus_dependent = False  # a study's score depends on its own pair only

    def __init__(self, folder: Path, model_type: str, options: ScorerOptions) -> None:
        core = vendored_core()
        self._scorer = core.F1RadGraph(
            reward_level="all", model_type=model_type, **radgraph_options(folder, options)
        )
        self._metrics = reward_metrics(model_type)
        self._options = options
        self.version = f"{_radeval_version()} F1RadGraph model_type={model_type} reward_level=all"

    def _score(self, hypotheses: list[str], references: list[str]) -> list[np.ndarray]:
        _, rewards, _, _ = self._scorer(refs=references, hyps=hypotheses)
        return [np.asarray(level, dtype=float) for level in rewards]

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        levels = _in_batches(self._score, hypotheses, references, self._options, self._metrics[1])
        if not levels:
            levels = [np.zeros(0) for _ in self._metrics]
        return dict(zip(self._metrics, levels, strict=True))


class RadGraphReXrankRunner:
    """RadEval's RadGraphRadCliQ: per study (entity F1 + relation F1) / 2, as ReXrank's."""

    corpus_dependent = False  # a study's score depends on its own pair only
    model_type = "radgraph"  # the model CXR-Report-Metric (and so ReXrank, RadCliQ-v1) uses

    def __init__(self, folder: Path, options: ScorerOptions) -> None:
        core = vendored_core()
        radcliq = importlib.import_module(RADCLIQ_MODULE)
        radgraph = functools.partial(core.RadGraph, **radgraph_options(folder, options))
        with replaced(radcliq, "RadGraph", radgraph):
            self._scorer = radcliq.RadGraphRadCliQ(model_type=self.model_type)
        self._options = options
        self.version = f"{_radeval_version()} RadGraphRadCliQ model_type={self.model_type}"

    def _score(self, hypotheses: list[str], references: list[str]) -> list[np.ndarray]:
        _, scores = self._scorer(hyps=hypotheses, refs=references)
        return [np.asarray(scores, dtype=float)]

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        columns = _in_batches(self._score, hypotheses, references, self._options, REXRANK_METRIC)
        return {REXRANK_METRIC: columns[0] if columns else np.zeros(0)}


def load_rexrank(folder: Path, options: ScorerOptions) -> RadGraphReXrankRunner:
    """RadGraph (radgraph.tar.gz) for ReXrank's entity-and-relation F1, from `folder`."""
    return RadGraphReXrankRunner(folder, options)


PARITY_TEST = "tests/evaluation/runners/test_radgraph.py"


def _f1_spec(model_type: str, summary: str) -> ScorerSpec:
    """The scorer of F1RadGraph's three reward levels with RadGraph model `model_type`."""
    return ScorerSpec(
        name=model_type,
        summary=summary,
        package=f"RadEval (radeval.metrics.radgraph.F1RadGraph, model_type='{model_type}')",
        needs=needs(model_type),
        metrics=reward_metrics(model_type),
        parity_test=PARITY_TEST,
        load=functools.partial(load_f1radgraph, model_type=model_type),
    )


def load_f1radgraph(folder: Path, options: ScorerOptions, model_type: str) -> F1RadGraphRunner:
    """RadGraph `model_type` (its archive) and its BERT's tokenizer from `folder`."""
    return F1RadGraphRunner(folder, model_type, options)


SCORERS: tuple[ScorerSpec, ...] = (
    _f1_spec(
        "radgraph",
        "RadGraph-F1: entities and relations RadGraph extracts from the generated report "
        "against the reference's, at three reward levels (RG_ER is the papers' F1)",
    ),
    _f1_spec(
        "radgraph-xl",
        "RadGraph-XL-F1: the same with RadGraph-XL (the model of RadEval's own 'radgraph' metric)",
    ),
    ScorerSpec(
        name="radgraph-rexrank",
        summary="RadGraph-F1 as ReXrank and RadCliQ-v1 compute it: per study (entity F1 + "
        "relation F1) / 2 with RadGraph",
        package="RadEval (radeval.metrics.radgraph_radcliq.radgraph_radcliq.RadGraphRadCliQ)",
        needs=needs("radgraph"),
        metrics=(REXRANK_METRIC,),
        parity_test=PARITY_TEST,
        load=load_rexrank,
    ),
)
