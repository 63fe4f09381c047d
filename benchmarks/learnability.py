"""Learnability: does the demo model learn the phantom studies? (`make bench-learn`)

Trains `configs/experiment/demo.yaml` on >= 2,000 phantom studies for a fixed number of
optimizer steps (`--steps`, chosen so that training fits 15 minutes on 2 idle CPU cores; the
learning-rate schedule is laid out over exactly those steps, and the same steps give the
same model on any machine), with `--minutes` as a wall-time cap. Then exports it (tube/line
thresholds chosen on the validation split), generates reports for held-out phantom patients
and evaluates them with 95 % patient-bootstrap intervals. Every figure is printed beside its
trivial baseline, measured in the same run:

  - tube/line macro ROC AUC (a constant label-prior predictor: 0.5),
  - change MS-CXR-T macro accuracy (the training split's majority class, scored by the
    evaluation's own function),
  - findings-head macro ROC AUC (constant: 0.5),
  - CE-F1 micro over 14 and over 5 observations (random and most common training report),
  - report-to-head consistency (the offline labeler on each report against the heads),
  - BLEU-4 and status accuracy per device.

`--set KEY=VALUE` passes overrides to `cxr fit` (what `benchmarks/ablation.py` uses to switch
one ingredient off), `--data-from DIR` reuses the phantom data of an earlier run, and
`--json` writes the figures to a file.

Usage: python benchmarks/learnability.py [--patients 820] [--steps 420] [--minutes 15]
       [--out runs/learnability] [--set model.init_args.decoder.grounded=false]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cxr.cli import main as cxr
from cxr.evaluation import metric_keys as keys
from cxr.evaluation.change_metrics import change_macro_accuracy
from cxr.evaluation.studies import change_codes
from cxr.types import Change

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 16  # configs/data/phantom.yaml


def run(*args: str) -> None:
    code = cxr(["-q", *args])
    if code:
        raise SystemExit(f"cxr {args[0]} failed with exit code {code}")


def majority_change_baseline(train_labels: Path, test_labels: Path) -> float:
    """MS-CXR-T macro accuracy of always answering each finding's most common training change."""
    train = change_codes(pd.read_csv(train_labels))
    reference = change_codes(pd.read_csv(test_labels))
    majority = [
        int(np.bincount(column[column >= 0], minlength=len(Change)).argmax()) for column in train.T
    ]
    predicted = np.tile(majority, (len(reference), 1))
    return change_macro_accuracy(reference=reference, predicted=predicted)


def synthesize(data: Path, patients: int, heldout_patients: int) -> None:
    if (data / "heldout" / "labels.csv").exists():
        return
    for split, count, seed in (("train", patients, 101), ("heldout", heldout_patients, 202)):
        # 256 px: the size the demo model reads (configs/model/tiny.yaml).
        run(
            "synth",
            str(data / split),
            "--patients",
            str(count),
            "--seed",
            str(seed),
            "--size",
            "256",
        )


def train(args: argparse.Namespace, data: Path) -> tuple[Path, int, float]:
    """Trains; returns the best checkpoint, the steps taken and the seconds spent."""
    out = args.out / "train"
    budget = time.strftime("00:%H:%M:%S", time.gmtime(args.minutes * 60))
    overrides = [
        item for pair in args.set for item in (f"--{pair.split('=', 1)[0]}", pair.split("=", 1)[1])
    ]
    started = time.perf_counter()
    run(
        "fit",
        "--config",
        str(ROOT / "configs" / "experiment" / "demo.yaml"),
        "--data.sources",
        f"[{{adapter: phantom, root: {data / 'train'}}}]",
        "--data.cache_dir",
        str(data / "cache"),
        "--trainer.max_epochs",
        "-1",
        "--trainer.max_steps",
        str(args.steps),
        "--trainer.max_time",
        budget,
        "--trainer.logger.init_args.save_dir",
        str(out),
        "--trainer.callbacks",
        json.dumps(
            [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(out / "checkpoints"),
                        "filename": "best-{epoch}-{step}",
                        "monitor": "val/loss",
                        "mode": "min",
                        "save_last": True,
                    },
                }
            ]
        ),
        *overrides,
    )
    seconds = time.perf_counter() - started
    metrics = pd.read_csv(next(out.rglob("metrics.csv")))
    steps = int(metrics["step"].max()) + 1
    best = max((out / "checkpoints").glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
    return best, steps, seconds


def export_generate_evaluate(args: argparse.Namespace, data: Path, checkpoint: Path) -> None:
    # The data config the run trained on, so that export chooses thresholds on its val split.
    data_config = yaml.safe_load((ROOT / "configs" / "data" / "phantom.yaml").read_text())
    data_config.update(
        sources=[{"adapter": "phantom", "root": str(data / "train")}],
        cache_dir=str(data / "cache"),
    )
    (args.out / "data.yaml").write_text(yaml.safe_dump(data_config))
    run(
        "export",
        str(checkpoint),
        "-o",
        str(args.out / "model"),
        "--data",
        str(args.out / "data.yaml"),
    )
    generate_evaluate(args.out / "model", data, args.out)


def generate_evaluate(model: Path, data: Path, out: Path) -> None:
    """Reports for the held-out studies, then `cxr evaluate` with the text baselines."""
    run(
        "generate",
        str(data / "heldout"),
        "--model",
        str(model),
        "-o",
        str(out / "reports"),
        "--prior-reports",
        str(data / "heldout" / "reports.jsonl"),  # indication and prior report
    )
    run(
        "evaluate",
        "--predictions",
        str(out / "reports" / "reports.jsonl"),
        "--references",
        str(data / "heldout" / "reports.jsonl"),
        "--references",
        str(data / "heldout" / "labels.csv"),
        "--baselines",
        "--train-references",
        str(data / "train" / "reports.jsonl"),
        "--bootstrap",
        "200",
        "-o",
        str(out / "eval"),
    )


def figures(out: Path, data: Path) -> dict[str, Any]:
    """The benchmark's figures: the model's with intervals and each one's baseline."""
    systems = json.loads((out / "eval" / "systems.json").read_text())
    model = json.loads((out / "eval" / "metrics.json").read_text())
    baselines = {name: table for name, table in systems.items() if name != "reports"}
    result: dict[str, Any] = {"model": model, "text_baselines": baselines}
    result["majority_change"] = majority_change_baseline(
        data / "train" / "labels.csv", data / "heldout" / "labels.csv"
    )
    return result


def _cell(table: dict[str, Any], name: str) -> str:
    entry = table.get(name)
    if entry is None:
        return "-"
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


def print_table(result: dict[str, Any]) -> None:
    model, text = result["model"], result["text_baselines"]

    def text_baseline(name: str) -> str:
        return " / ".join(f"{system} {_cell(table, name)}" for system, table in text.items())

    rows = [
        ("tube/line macro ROC AUC", keys.AUC_MACRO, "0.500 (label prior)", ">= 0.95"),
        (
            "change MS-CXR-T macro accuracy",
            keys.CHANGE_MACRO_ACCURACY,
            f"{result['majority_change']:.3f} (training majority class)",
            ">= 0.80",
        ),
        ("findings-head macro ROC AUC", keys.FINDINGS_AUC_MACRO, "0.500 (constant)", ">= 0.95"),
        (
            "CE-F1 micro, 14 observations",
            "CE-F1-micro-14",
            text_baseline("CE-F1-micro-14"),
            ">= 0.80",
        ),
        ("CE-F1 micro, 5 observations", "CE-F1-micro-5", text_baseline("CE-F1-micro-5"), ">= 0.75"),
        ("report-to-head consistency", keys.REPORT_HEAD_AGREEMENT_MICRO, "-", ">= 0.95"),
        ("change plain accuracy (macro over findings)", keys.CHANGE_ACCURACY_MACRO, "-", "-"),
        ("change macro F1", keys.CHANGE_F1_MACRO, "-", "-"),
        ("BLEU-4", keys.BLEU_4, text_baseline(keys.BLEU_4), "-"),
    ]
    print("| metric | model | trivial baseline | goal |\n|---|---|---|---|")
    for label, name, baseline, goal in rows:
        print(f"| {label} | {_cell(model, name)} | {baseline} | {goal} |")
    statuses = keys.PerSubject.STATUS_ACCURACY.select(model)
    print(
        "| status accuracy "
        + " / ".join(statuses)
        + " | "
        + " / ".join(f"{entry['value']:.3f}" for entry in statuses.values())
        + " | - | - |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--patients", type=int, default=820, help="training patients (1-4 studies each)"
    )
    parser.add_argument("--heldout-patients", type=int, default=100)
    parser.add_argument("--steps", type=int, default=420, help="optimizer steps of training")
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-time cap")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "learnability")
    parser.add_argument("--data-from", type=Path, help="reuse the data/ folder of this earlier run")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a `cxr fit` override"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data = (args.data_from or args.out) / "data"
    synthesize(data, args.patients, args.heldout_patients)
    studies = len(pd.read_csv(data / "train" / "labels.csv"))
    checkpoint, steps, seconds = train(args, data)
    export_generate_evaluate(args, data, checkpoint)
    result = figures(args.out, data)
    result.update(steps=steps, train_seconds=seconds, train_studies=studies, overrides=args.set)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\ntrained {steps} steps ({steps * BATCH_SIZE} studies drawn from {studies}) in "
        f"{seconds / 60:.1f} min"
    )
    print_table(result)


if __name__ == "__main__":
    main()
