"""The RadGraph runners (cxr/evaluation/runners/radgraph.py) give RadEval's own numbers: the
three reward levels of F1RadGraph with RadGraph and with RadGraph-XL, and RadGraphRadCliQ's
(entity F1 + relation F1) / 2, per study and as corpus means, and RadEval's own "radgraph"
and "radgraph_radcliq" metrics agree with them.

The weights are tiny random RadGraph models in the package's format (tiny_radgraph.py): the
archives of StanfordAIMI/RRG_scorers and their BERT's config and vocabulary. On the package's
side the weights folder is reached as a user would reach it, through the module constant
`CACHE_DIR` that RadGraph downloads into by default; the runners pass it as
`model_cache_dir`. The reports include an empty generated one.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cxr.errors import InputError
from cxr.evaluation.evaluate import Evaluation
from cxr.evaluation.hub_cache import hub_cache, require
from cxr.evaluation.runners.radgraph import (
    ARCHIVE_REPO,
    ARCHIVES,
    CORE_MODULE,
    RADCLIQ_MODULE,
    REXRANK_METRIC,
    SCORERS,
    TRANSFORMER_FILES,
    TRANSFORMERS,
    reward_metrics,
    vendored_core,
)
from cxr.evaluation.scorers import ModelScorers, ScorerOptions, load_scorers
from evaluation.runners.hub_folders import evaluate_reports
from evaluation.runners.tiny_radgraph import save_tiny_radgraph

SPECS = {spec.name: spec for spec in SCORERS}
MODEL_TYPES = {"radgraph": "radgraph", "radgraph-xl": "radgraph-xl"}  # F1RadGraph scorers
OPTIONS = ScorerOptions(progress=False, batch_size=3)  # three calls of the package per corpus

# (reference, generated)
REPORTS = [
    ("No acute cardiopulmonary process.", "No acute cardiopulmonary process."),
    ("Small left pleural effusion.", "Small right pleural effusion with atelectasis."),
    ("Mild pulmonary edema. Heart size is enlarged.", "Moderate cardiomegaly without edema."),
    ("Right lower lobe pneumonia.", "Right lower lobe opacity."),
    ("No pneumothorax.", ""),
    ("Lungs are clear.", "Heart size is normal and the lungs are clear."),
    ("Possible left lower lobe consolidation.", "Left lower lobe atelectasis or pneumonia."),
]
REFERENCES = [reference for reference, _ in REPORTS]
GENERATED = [generated for _, generated in REPORTS]
EMPTY = GENERATED.index("")


@pytest.fixture(scope="module", autouse=True)
def _only_these_scorers() -> Iterator[None]:
    """The registry holds just this module's specs, whatever other runner modules exist."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cxr.evaluation.scorers.known_scorers", lambda: dict(SPECS))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache with tiny RadGraph and RadGraph-XL archives and their BERT's files."""
    cache = tmp_path_factory.mktemp("radgraph-hub")
    for model_type in ARCHIVES:
        save_tiny_radgraph(cache, model_type)
    return cache


@pytest.fixture
def package_cache(folder: Path) -> Iterator[None]:
    """RadEval's RadGraph reads `folder` by default: inside its hub cache, CACHE_DIR set."""
    core = vendored_core()
    with pytest.MonkeyPatch.context() as patch, hub_cache(folder):
        patch.setattr(core, "CACHE_DIR", str(folder))
        yield


@pytest.fixture(scope="module")
def scorers(folder: Path) -> ModelScorers:
    loaded = load_scorers({name: folder for name in SPECS}, OPTIONS)
    assert loaded.notes() == {name: "ran" for name in SPECS}
    return loaded


@pytest.fixture(scope="module")
def evaluation(scorers: ModelScorers) -> Evaluation:
    return evaluate_reports(GENERATED, REFERENCES, scorers)


def test_the_needs_are_the_archive_and_the_bert_its_config_names(folder: Path) -> None:
    core = vendored_core()
    assert core.__name__ == CORE_MODULE
    for model_type, archive in ARCHIVES.items():
        assert core.MODEL_MAPPING[model_type] == archive
    load_scorers({name: folder for name in SPECS}, OPTIONS)  # extracts DIR/<model_type>/
    for name, spec in SPECS.items():
        model_type = MODEL_TYPES.get(name, "radgraph")
        config = json.loads((folder / model_type / "config.json").read_text())
        bert = config["dataset_reader"]["token_indexers"]["bert"]["model_name"]
        assert bert == config["model"]["embedder"]["token_embedders"]["bert"]["model_name"]
        assert bert == TRANSFORMERS[model_type]
        assert {(need.repo_id, need.filename) for need in spec.needs} == {
            (ARCHIVE_REPO, ARCHIVES[model_type]),
            *((bert, filename) for filename in TRANSFORMER_FILES),
        }


@pytest.mark.parametrize(
    ("name", "repo_id", "filename"),
    [
        ("radgraph", ARCHIVE_REPO, ARCHIVES["radgraph"]),
        ("radgraph-xl", ARCHIVE_REPO, ARCHIVES["radgraph-xl"]),
        ("radgraph-rexrank", TRANSFORMERS["radgraph"], "vocab.txt"),
    ],
)
def test_the_folder_holds_every_needed_file_and_a_missing_one_is_named(
    folder: Path, tmp_path: Path, name: str, repo_id: str, filename: str
) -> None:
    spec = SPECS[name]
    require(name, folder, spec.needs)
    broken = tmp_path / "hub"
    shutil.copytree(folder, broken)
    snapshots = broken / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    (next(snapshots.iterdir()) / filename).unlink()
    with pytest.raises(InputError, match=re.escape(f"hf download {repo_id} {filename}")):
        load_scorers({name: broken}, OPTIONS)


@pytest.mark.usefixtures("package_cache")
@pytest.mark.parametrize("name", list(MODEL_TYPES))
def test_rewards_are_radevals_f1radgraph_per_study_and_as_corpus_means(
    name: str, scorers: ModelScorers, evaluation: Evaluation
) -> None:
    core = vendored_core()
    package = core.F1RadGraph(reward_level="all", model_type=MODEL_TYPES[name])
    means, rewards, hypothesis_graphs, reference_graphs = package(refs=REFERENCES, hyps=GENERATED)

    scores = scorers.per_study(GENERATED, REFERENCES).scores
    values = evaluation.systems["model"]
    for metric, per_sample, mean in zip(reward_metrics(name), rewards, means, strict=True):
        assert scores[metric] == pytest.approx(per_sample, rel=1e-9, abs=1e-12)
        assert values[metric].value == pytest.approx(mean, rel=1e-9)
        assert mean == pytest.approx(np.mean(per_sample), rel=1e-12)  # the plain mean
        assert np.isfinite(scores[metric]).all()
        assert len(set(np.round(scores[metric], 6))) > 2  # the reports do score differently
        assert scores[metric][EMPTY] == 0  # an empty report scores 0 at every level
    assert scores[reward_metrics(name)[0]][0] == 1  # the identical pair
    graphs = [graph["entities"] for graph in hypothesis_graphs + reference_graphs]
    assert sum(len(entities) for entities in graphs) > 0
    assert any(entity["relations"] for entities in graphs for entity in entities.values())


@pytest.mark.usefixtures("package_cache")
def test_rexrank_is_radevals_radgraph_radcliq(
    scorers: ModelScorers, evaluation: Evaluation
) -> None:
    radcliq = importlib.import_module(RADCLIQ_MODULE)
    package = radcliq.RadGraphRadCliQ(model_type="radgraph")
    mean, per_sample = package(hyps=GENERATED, refs=REFERENCES)

    per_study = scorers.per_study(GENERATED, REFERENCES).scores[REXRANK_METRIC]

    assert per_study == pytest.approx(per_sample, rel=1e-9, abs=1e-12)
    assert evaluation.systems["model"][REXRANK_METRIC].value == pytest.approx(mean, rel=1e-9)
    assert mean == pytest.approx(np.mean(per_sample), rel=1e-12)
    assert np.isfinite(per_study).all()
    assert per_study[0] == 1  # the identical pair: same entities, same relations
    assert len(set(np.round(per_study, 6))) > 2


@pytest.mark.usefixtures("package_cache")
def test_radevals_own_metrics_are_radgraph_xl_and_rexrank(scorers: ModelScorers) -> None:
    """RadEval's "radgraph" metric is RadGraph-XL's rewards, its "radgraph_radcliq" ReXrank's
    score (per sample: its corpus values are rounded to 4 decimals)."""
    import radeval

    package = radeval.RadEval(
        metrics=["radgraph", "radgraph_radcliq"], per_sample=True, show_progress=False
    )
    reported = package(refs=REFERENCES, hyps=GENERATED)
    scores = scorers.per_study(GENERATED, REFERENCES).scores

    xl_simple, xl_partial, xl_complete = reward_metrics("radgraph-xl")
    expected = {
        xl_simple: reported["radgraph_simple"],
        xl_partial: reported["radgraph_partial"],
        xl_complete: reported["radgraph_complete"],
        REXRANK_METRIC: reported["radgraph_radcliq"],
    }
    for metric, per_sample in expected.items():
        assert scores[metric] == pytest.approx(per_sample, rel=1e-9, abs=1e-12)
    assert not np.allclose(scores[xl_partial], scores[reward_metrics("radgraph")[1]])


def test_versions_name_the_model_type(scorers: ModelScorers) -> None:
    versions = {name: loaded.runner.version for name, loaded in scorers._loaded()}
    assert len(set(versions.values())) == len(SPECS)
    assert "model_type=radgraph-xl" in versions["radgraph-xl"]


@pytest.mark.usefixtures("package_cache")
def test_a_blank_report_scores_as_the_packages_empty_report(scorers: ModelScorers) -> None:
    core = vendored_core()
    package = core.F1RadGraph(reward_level="all", model_type="radgraph")
    with pytest.raises(AssertionError, match="ListFields"):  # the package fails on it
        package(refs=REFERENCES[:1], hyps=[" \n "])
    blank = [" \n " if text == "" else text for text in GENERATED]

    from_blank = scorers.per_study(blank, REFERENCES).scores
    from_empty = scorers.per_study(GENERATED, REFERENCES).scores

    assert from_blank.keys() == from_empty.keys()
    for metric, scores in from_empty.items():
        assert from_blank[metric] == pytest.approx(scores, rel=1e-12, abs=1e-12)
