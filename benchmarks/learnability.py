"""Learnability: does the demo model learn the phantom studies? (`make bench-learn`)

Trains `configs/experiment/demo.yaml` on >= 2,000 phantom studies for at most `--minutes`
of wall time on this machine, then generates and evaluates on held-out phantom patients and
prints, beside trivial baselines of the same run:
  - tube/line macro ROC AUC (goal >= 0.90; a constant label-prior predictor scores 0.5),
  - change macro accuracy (goal >= 0.70; baseline: the training set's majority class),
  - clinical F1 of the report's finding/device statements (goal >= 0.70; baselines: the most
    common training report and a random training report),
  - training throughput in images/s.
Usage: python benchmarks/learnability.py [--patients 820] [--minutes 15] [--out runs/learnability]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import yaml

from cxr.cli import main as cxr
from cxr.types import CHANGE_FINDINGS, change_column

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> None:
    code = cxr(["-q", *args])
    if code:
        raise SystemExit(f"cxr {args[0]} failed with exit code {code}")


def majority_change_accuracy(train_labels: Path, test_labels: Path) -> float:
    """Macro accuracy over findings of always answering the training set's most common change."""
    train, test = pd.read_csv(train_labels), pd.read_csv(test_labels)
    accuracies = []
    for finding in CHANGE_FINDINGS:
        column = change_column(finding)
        majority = train[column].dropna().mode()[0]
        known = test[column].dropna()
        accuracies.append(float((known == majority).mean()))
    return sum(accuracies) / len(accuracies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--patients", type=int, default=820, help="training patients (1-4 studies each)"
    )
    parser.add_argument("--heldout-patients", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-time budget")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "learnability")
    args = parser.parse_args()
    data, train = args.out / "data", args.out / "train"
    if not (data / "train" / "labels.csv").exists():
        run(
            "synth",
            str(data / "train"),
            "--patients",
            str(args.patients),
            "--seed",
            "101",
            "--size",
            "256",
        )
        run(
            "synth",
            str(data / "heldout"),
            "--patients",
            str(args.heldout_patients),
            "--seed",
            "202",
            "--size",
            "256",
        )

    budget = time.strftime("00:%H:%M:%S", time.gmtime(args.minutes * 60))
    started = time.perf_counter()
    run(
        "fit",
        "--config",
        str(ROOT / "configs" / "experiment" / "demo.yaml"),
        "--data.sources",
        f"[{{adapter: phantom, root: {data / 'train'}}}]",
        "--data.cache_dir",
        str(args.out / "cache"),
        "--trainer.max_epochs",
        "100",
        "--trainer.max_time",
        budget,
        "--trainer.logger.init_args.save_dir",
        str(train),
        "--trainer.callbacks",
        json.dumps(
            [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(train / "checkpoints"),
                        "filename": "best-{epoch}-{step}",
                        "monitor": "val/loss",
                        "mode": "min",
                        "save_last": True,
                    },
                }
            ]
        ),
    )
    seconds = time.perf_counter() - started
    metrics = pd.read_csv(next(train.rglob("metrics.csv")))
    steps = int(metrics["step"].max()) + 1
    best = max((train / "checkpoints").glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
    # The data config the run trained on, so that export chooses thresholds on its val split.
    data_config = yaml.safe_load((ROOT / "configs" / "data" / "phantom.yaml").read_text())
    data_config.update(
        sources=[{"adapter": "phantom", "root": str(data / "train")}],
        cache_dir=str(args.out / "cache"),
    )
    (args.out / "data.yaml").write_text(yaml.safe_dump(data_config))
    run("export", str(best), "-o", str(args.out / "model"), "--data", str(args.out / "data.yaml"))
    run(
        "generate",
        str(data / "heldout"),
        "--model",
        str(args.out / "model"),
        "-o",
        str(args.out / "reports"),
        "--prior-reports",
        str(data / "heldout" / "reports.jsonl"),  # indication and prior report
    )
    run(
        "evaluate",
        "--predictions",
        str(args.out / "reports" / "reports.jsonl"),
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
        str(args.out / "eval"),
    )
    systems = json.loads((args.out / "eval" / "systems.json").read_text())
    model = json.loads((args.out / "eval" / "metrics.json").read_text())
    change_baseline = majority_change_accuracy(
        data / "train" / "labels.csv", data / "heldout" / "labels.csv"
    )
    images_per_s = steps * 16 * 3 / seconds  # batch 16, up to 3 image slots per study

    def value(table: dict, name: str) -> str:
        entry = table.get(name)
        return (
            "-"
            if entry is None
            else f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"
        )

    print(
        f"\ntrained {steps} steps in {seconds / 60:.1f} min (<= {images_per_s:.1f} image slots/s)"
    )
    print(
        f"tube/line macro AUC     model {value(model, 'AUC-macro')}   label-prior baseline 0.500 (goal >= 0.90)"
    )
    print(
        f"change macro accuracy   model {value(model, 'ChangeAcc-macro')}   majority baseline {change_baseline:.3f} (goal >= 0.70)"
    )
    for name in ("CE-F1-micro-14", "CE-F1-micro-5"):
        baselines = "   ".join(
            f"{system} {value(table, name)}"
            for system, table in systems.items()
            if system != "reports"
        )
        print(f"{name:<22}  model {value(model, name)}   {baselines} (goal >= 0.70)")


if __name__ == "__main__":
    main()
