"""Ablation: each ingredient of the demo model switched off in turn, with the same budget.

Runs `benchmarks/learnability.py` once per variant on the same phantom data (the first
variant synthesizes it, the others reuse it) and the same number of optimizer steps, so the
variants differ only in the ingredient named; then prints one table. Training is
step-based, so running two variants at once (`--jobs 2`) changes their wall time, not
their figures; the wall-time cap is lifted for that reason (`--minutes`).

Variants (`cxr fit` overrides):
  full                  configs/experiment/demo.yaml as it is
  no grounding          the decoder does not read the heads' calls
  pooled change head    each image pooled to one vector before comparing (the earlier head)
  no class balance      change labels weigh 1 each
  no replacement        teacher forcing on reference calls only (no scheduled replacement)
  128 px ResNet-10      the earlier encoder and resolution
and "no decoding constraints": the full model's folder generating without them.

Usage: python benchmarks/ablation.py [--steps 300] [--patients 820] [--jobs 1]
       [--out runs/ablation] [--data-from runs/learnability] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from learnability import _cell, figures, generate_evaluate

from cxr.evaluation import metric_keys as keys

ROOT = Path(__file__).resolve().parents[1]
_MODEL = "model.model.init_args"

VARIANTS: dict[str, list[str]] = {
    "full": [],
    "no grounding": [f"{_MODEL}.decoder.grounded=false"],
    "pooled change head": [f"{_MODEL}.heads.change=pooled"],
    "no class balance": ["model.change_class_balance=false"],
    "no replacement": ["model.label_replacement=0.0"],
    "128 px ResNet-10": [
        f"{_MODEL}.encoder.name=resnet10t",
        f"{_MODEL}.encoder.image_size=128",
        "data.image_size=128",
    ],
}
UNCONSTRAINED = "no decoding constraints"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("tube/line AUC", keys.AUC_MACRO),
    ("change macro acc", keys.CHANGE_MACRO_ACCURACY),
    ("findings AUC", keys.FINDINGS_AUC_MACRO),
    ("CE-F1-14", "CE-F1-micro-14"),
    ("CE-F1-5", "CE-F1-micro-5"),
    ("consistency", keys.REPORT_HEAD_AGREEMENT_MICRO),
    ("BLEU-4", keys.BLEU_4),
)


def slug(name: str) -> str:
    return name.replace(" ", "_").replace("-", "")


def run_variant(name: str, args: argparse.Namespace, data_from: Path) -> dict[str, Any]:
    out = args.out / slug(name)
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "learnability.py"),
        "--out",
        str(out),
        "--data-from",
        str(data_from),
        "--patients",
        str(args.patients),
        "--steps",
        str(args.steps),
        "--minutes",
        str(args.minutes),
        "--json",
        str(out / "figures.json"),
    ]
    for override in VARIANTS[name]:
        command += ["--set", override]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.txt", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "figures.json").read_text())


def unconstrained(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """The full variant's model folder with `decoder.constrained_decoding` off."""
    full = args.out / slug("full")
    out = args.out / slug(UNCONSTRAINED)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(full / "model", out / "model")
    config_path = out / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["decoder"]["constrained_decoding"] = False
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    generate_evaluate(out / "model", data, out)
    return figures(out, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--patients", type=int, default=820)
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation")
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    parser.add_argument(
        "--data-from", type=Path, help="reuse this earlier run's data/ (e.g. runs/learnability)"
    )
    args = parser.parse_args()
    names = args.only or [*VARIANTS, UNCONSTRAINED]
    trained = [name for name in names if name in VARIANTS]
    data_from = args.data_from or args.out / slug("full")
    results: dict[str, dict[str, Any]] = {}
    if "full" in trained and not (data_from / "data" / "heldout" / "labels.csv").exists():
        results["full"] = run_variant("full", args, data_from)  # it synthesizes the data
        trained.remove("full")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {name: pool.submit(run_variant, name, args, data_from) for name in trained}
        results.update({name: future.result() for name, future in futures.items()})
    if UNCONSTRAINED in names:
        results[UNCONSTRAINED] = unconstrained(args, data_from / "data")
    (args.out / "ablation.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nablation, {args.steps} steps each\n")
    print("| variant | " + " | ".join(label for label, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name in names:
        if name in results:
            model = results[name]["model"]
            cells = [_cell(model, key).split(" [")[0] for _, key in COLUMNS]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
