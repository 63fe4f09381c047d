"""The notebooks: each runs top to bottom against a tiny model trained here on phantom studies,
and the committed notebooks carry no outputs.

The module fixture does what `make demo` does, in small: train a few steps on the session's
phantom folder, export, synthesize an unseen held-out folder, `cxr generate` and `cxr evaluate`.
Each notebook's parameters cell (the code cell tagged "parameters") is then replaced by one
that points at those outputs, and the notebook is executed with nbclient.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import nbformat
import pytest
from models.tiny_models import phantom_model
from nbclient import NotebookClient

from cxr.cli import main
from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.synth import synthesize
from cxr.training.export import export
from cxr.training.module import ReportModule

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED_NOTEBOOKS = ("01_quickstart.ipynb", "02_results.ipynb", "03_prior_comparison.ipynb")

# Seed 5 gives 4 patients with 10 studies, 6 of them with a prior, and tube/line labels with
# both classes present (so the ROC curves have something to draw).
HELDOUT_PATIENTS, HELDOUT_SEED = 4, 5
SHOWN = 2  # studies each notebook draws


@dataclass(frozen=True)
class DemoRun:
    """The outputs of a small `make demo`."""

    root: Path
    model: Path
    heldout: Path
    reports: Path
    evaluation: Path


def _train_and_export(train: Path, root: Path) -> Path:
    """A tiny model (64 px, one decoder layer) trained for a few steps, then exported."""
    L.seed_everything(0)
    datamodule = ReportDataModule(
        sources=[DataSource(adapter="phantom", root=train)],
        image_size=64,
        batch_size=4,
        num_workers=0,
        cache_dir=root / "cache",
        tokenizer_vocab_size=300,
        max_report_tokens=48,
    )
    model = phantom_model(datamodule)
    checkpoints = root / "checkpoints"
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=4,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, save_last=True)],
    )
    trainer.fit(ReportModule(model, learning_rate=1e-3), datamodule)
    assert export(checkpoints / "last.ckpt", root / "model") == 0
    return root / "model"


@pytest.fixture(scope="module")
def demo_run(phantom_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    root = tmp_path_factory.mktemp("demo")
    model = _train_and_export(phantom_folder, root)
    heldout = root / "data" / "heldout"
    synthesize(heldout, patients=HELDOUT_PATIENTS, seed=HELDOUT_SEED, size=128, workers=1)
    reports, evaluation = root / "reports", root / "eval"
    assert main(["generate", str(heldout), "--model", str(model), "-o", str(reports),
                 "--workers", "0", "--max-new-tokens", "16"]) == 0  # fmt: skip
    assert main(["evaluate", "--predictions", str(reports / "reports.jsonl"),
                 "--references", str(heldout / "reports.jsonl"),
                 "--references", str(heldout / "labels.csv"),
                 "--baselines", "--train-references", str(phantom_folder / "reports.jsonl"),
                 "--bootstrap", "20", "--meteor", "false", "-o", str(evaluation)]) == 0  # fmt: skip
    return DemoRun(root, model, heldout, reports, evaluation)


def notebook_parameters(run: DemoRun, name: str, variant: str) -> dict[str, Any]:
    """The values given to a notebook's parameters cell in the test."""
    predictions = run.reports / "reports.jsonl"
    if name == "01_quickstart.ipynb":
        # synth: DICOM_DIR None, the notebook synthesizes its own studies (its default).
        dicom_dir = None if variant == "synth" else run.heldout
        return {
            "MODEL_DIR": run.model,
            "DICOM_DIR": dicom_dir,
            "N_STUDIES": SHOWN,
            "MAX_NEW_TOKENS": 16,
        }
    if name == "02_results.ipynb":
        return {
            "RUN_DIR": run.root,
            "EVAL_DIR": run.evaluation,
            "PREDICTIONS": predictions,
            "REFERENCES": [run.heldout / "reports.jsonl", run.heldout / "labels.csv"],
            "IMAGE_ROOT": run.root,
            "N_WORST": SHOWN,
        }
    if name == "03_prior_comparison.ipynb":
        return {
            "RUN_DIR": run.root,
            "PREDICTIONS": predictions,
            "LABELS": run.heldout / "labels.csv",
            "IMAGE_ROOT": run.root,
            "N_STUDIES": SHOWN,
        }
    raise AssertionError(f"no test parameters for notebook {name}; add them here")


# (notebook, variant of its parameters) executed by the test.
CASES = [
    (NOTEBOOKS_DIR / "01_quickstart.ipynb", "synth"),
    (NOTEBOOKS_DIR / "01_quickstart.ipynb", "dicom-folder"),
    (NOTEBOOKS_DIR / "02_results.ipynb", "demo"),
    (NOTEBOOKS_DIR / "03_prior_comparison.ipynb", "demo"),
]


def expected_output(run: DemoRun, name: str) -> tuple[list[str], int]:
    """Text a notebook must show (evidence that its main cells did their work) and the number
    of figures it draws: one per shown study, plus 02's ROC, confusion and F1 figures."""
    rows = [json.loads(line) for line in (run.reports / "reports.jsonl").read_text().splitlines()]
    with_prior = sum(row["prior_study_id"] is not None for row in rows)
    if name == "01_quickstart.ipynb":
        return [f"{SHOWN} reports by model@", "ETT - Abnormal", "stated in report"], SHOWN
    if name == "02_results.ipynb":
        texts = ["most-common-report", "ROUGE-L", "AUC-macro", "CE mismatches"]
        return texts, 3 + min(SHOWN, len(rows))
    texts = [f"{with_prior} of {len(rows)} studies have a prior", "report agrees", "reference"]
    return texts, min(SHOWN, with_prior)


def _literal(value: Any) -> str:
    if isinstance(value, Path):
        return f"Path({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def parameters_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    return cells[0]


def parameter_names(source: str) -> list[str]:
    """Names assigned at the top level of a parameters cell."""
    return [
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]


def _outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def _shown_text(notebook: nbformat.NotebookNode) -> str:
    texts = []
    for output in _outputs(notebook):
        texts.append(output.get("text", ""))
        data = output.get("data", {})
        texts += [data.get("text/plain", ""), data.get("text/html", "")]
    return "\n".join(texts)


def test_every_notebook_is_executed_by_the_test() -> None:
    # A new notebook needs its entries in CASES, notebook_parameters and expected_output.
    assert tuple(p.name for p in NOTEBOOKS) == EXPECTED_NOTEBOOKS
    assert {p for p, _ in CASES} == set(NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {number} has outputs; clear them"
            assert cell.execution_count is None, f"{path.name} cell {number} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_paths_from_one_parameters_cell(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    cell = parameters_cell(notebook)
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    assert cell is first_code, "the parameters cell must be the first code cell"
    names = parameter_names(cell.source)
    assert names and all(name.isupper() for name in names), names
    # The notebook's own code uses cxr's public names only.
    for other in notebook.cells:
        if other.cell_type == "code" and other is not cell:
            code = "\n".join(line for line in other.source.splitlines() if not line.startswith("%"))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cxr"):
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, f"{path.name} imports private {private}"


@pytest.mark.slow
@pytest.mark.parametrize(("path", "variant"), CASES, ids=[f"{p.stem}-{v}" for p, v in CASES])
def test_notebook_runs_top_to_bottom(
    path: Path, variant: str, demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel draws inline, as Jupyter does; the Makefile's MPLBACKEND=Agg would hide figures.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = nbformat.read(path, as_version=4)
    cell = parameters_cell(notebook)
    values = notebook_parameters(demo_run, path.name, variant)
    assert set(values) == set(parameter_names(cell.source)), "test and notebook parameters differ"
    cell.source = "from pathlib import Path\n\n" + "\n".join(
        f"{name} = {_literal(value)}" for name, value in values.items()
    )
    client = NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()

    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    texts, figure_count = expected_output(demo_run, path.name)
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == figure_count
    shown = _shown_text(notebook)
    for text in texts:
        assert text in shown, f"{path.name} does not show {text!r}"
    assert "Traceback" not in shown
