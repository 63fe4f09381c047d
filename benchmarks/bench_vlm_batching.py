"""Batched against per-study generation of Hugging Face vision-language models in `cxr generate`.

For each family's tiny random model (tests/vlm_folders.py: Gemma 3, Qwen2.5-VL, Qwen3-VL,
LLaVA), the same phantom studies are reported by `ReportGenerator` one study per `generate`
call (the baseline: what each model's own notebook does, one image at a time) and in
left-padded batches; both read every image with `cxr.io.read_image` and decode greedily with
the same settings. Prints studies/s of both and the ratio (goal >= 5x).

The models are tiny (hidden sizes 32-64, 28-64 px images), so the figures measure cxr's
batching and the processors' per-call cost, not what a 4B-parameter model does on a GPU.
Torch runs on one thread by default (--threads): on a shared 2-core machine two OpenMP
threads that wait on a descheduled partner make each small op a hundred times slower, which
drowns the comparison in noise.
Usage: python benchmarks/bench_vlm_batching.py [--quick] [--batch-size N] [--max-new-tokens N]
    [--threads N] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch
from transformers import GenerationConfig
from vlm_folders import FAMILY_BUILDERS

from cxr.data.datasets.records import studies_from_index
from cxr.inference import Prediction, ReportGenerator
from cxr.io import index_folder
from cxr.models.report_model import default_generation_config
from cxr.synth import synthesize
from cxr.types import Study


def studies_per_second(
    model_dir: Path,
    studies: list[Study],
    batch_size: int,
    decoding: GenerationConfig,
    workers: int = 0,
) -> tuple[float, dict[str, str]]:
    """Throughput of one pass over `studies`, and the reports written (to compare passes)."""
    generator = ReportGenerator(
        model_dir, batch_size=batch_size, num_workers=workers, generation_config=decoding
    )
    started = time.perf_counter()
    reports = {
        p.study_id: p.findings + p.impression
        for p in generator.generate(studies)
        if isinstance(p, Prediction)
    }
    return len(reports) / (time.perf_counter() - started), reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--max-new-tokens", type=int, default=default_generation_config().max_new_tokens
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="DataLoader processes reading images (both runs)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    patients = 4 if args.quick else 12
    tokens = 8 if args.quick else args.max_new_tokens
    decoding = GenerationConfig(max_new_tokens=tokens, do_sample=False)
    figures: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        synthesize(root / "dicom", patients=patients, seed=3, size=256, workers=1)
        index = index_folder(root / "dicom", workers=1)
        studies = list(studies_from_index(index.studies, {}, {}, source="generate"))
        print(
            f"{len(studies)} phantom studies (256 px), greedy, at most {tokens} new tokens, "
            f"batch {args.batch_size} vs one study per generate call, torch threads "
            f"{torch.get_num_threads()} of {os.cpu_count()} CPUs, {args.workers} image workers"
        )
        for family, build in FAMILY_BUILDERS.items():
            folder = build(root / family)
            # A first pass warms the processor and the kernels up; it is not timed.
            studies_per_second(folder, studies[:2], 2, decoding)
            single, single_reports = studies_per_second(folder, studies, 1, decoding, args.workers)
            batched, batched_reports = studies_per_second(
                folder, studies, args.batch_size, decoding, args.workers
            )
            same = "same reports" if single_reports == batched_reports else "REPORTS DIFFER"
            ratio = batched / single
            figures[family] = ratio
            print(
                f"{family:>11}: per study {single:6.2f} studies/s | batch {args.batch_size} "
                f"{batched:6.2f} studies/s -> {ratio:4.1f}x (goal >= 5x); {same}"
            )
    print(json.dumps({f"{family}_batch_speedup": round(r, 2) for family, r in figures.items()}))


if __name__ == "__main__":
    main()
