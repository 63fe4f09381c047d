"""`cxr generate` benchmark on phantom studies, each figure against a baseline of the same run.

  1. batch 1 without the key/value cache (baseline) vs batch 16 with it: studies/s
     (goal >= 5x);
  2. greedy (baseline) vs beam search with 3 beams, batch 16: studies/s;
  3. peak resident memory of a whole `cxr generate` run on 100 vs 500 studies (goal: flat).

The model is the demo architecture with untrained weights: its reports run to
`--max-new-tokens` (no early end of sequence), which is the slowest case and makes the runs
comparable. Usage: python benchmarks/bench_generate.py [--quick] [--max-new-tokens N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import GenerationConfig

from cxr.data.datasets import PhantomDataset
from cxr.data.reports import join_report
from cxr.data.tokenizer import train_report_tokenizer
from cxr.inference import ReportGenerator
from cxr.models import ConnectorConfig, DecoderConfig, EncoderConfig, HeadsConfig, ReportModel
from cxr.models.report_model import default_generation_config
from cxr.synth import synthesize
from cxr.types import Study

_PEAK_RSS = """
import resource, sys
from cxr.cli import main
code = main(sys.argv[1:])
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def demo_model(studies: list[Study], folder: Path) -> Path:
    texts = [
        t for t in (join_report(s.targets.findings, s.targets.impression) for s in studies) if t
    ]
    torch.manual_seed(0)
    model = ReportModel(
        EncoderConfig(name="resnet10t", image_size=128),
        ConnectorConfig(kind="attention_pool", num_queries=32),  # type: ignore[arg-type]
        DecoderConfig(arch={"n_layer": 2, "n_embd": 192, "n_head": 4, "n_positions": 768}),
        HeadsConfig(hidden=192),
        train_report_tokenizer(texts, vocab_size=1024),
    )
    return model.save_pretrained(folder / "model")


def studies_per_second(
    model_dir: Path, studies: list[Study], batch_size: int, decoding: GenerationConfig
) -> float:
    generator = ReportGenerator(model_dir, batch_size=batch_size, generation_config=decoding)
    started = time.perf_counter()
    done = sum(1 for _ in generator.generate(studies))
    return done / (time.perf_counter() - started)


def peak_rss_mb(folder: Path, model_dir: Path, output: Path, max_new_tokens: int) -> float:
    command = [
        sys.executable,
        "-c",
        _PEAK_RSS,
        "-q",
        "generate",
        str(folder),
        "--model",
        str(model_dir),
        "-o",
        str(output),
        "--batch-size",
        "16",
        "--max-new-tokens",
        str(max_new_tokens),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, env=os.environ | {"TQDM_DISABLE": "1"}
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("PEAK_RSS_KB"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--max-new-tokens", type=int, default=default_generation_config().max_new_tokens
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    small, large, timed = (6, 12, 8) if args.quick else (40, 190, 48)
    tokens = 8 if args.quick else args.max_new_tokens

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        synthesize(root / "small", patients=small, seed=1, size=256)
        synthesize(root / "large", patients=large, seed=2, size=256)
        small_studies = list(PhantomDataset(root / "small").studies())
        large_studies = list(PhantomDataset(root / "large").studies())
        model_dir = demo_model(small_studies, root)
        sample = large_studies[:timed]

        print(
            f"phantom studies: small folder {len(small_studies)}, large folder {len(large_studies)}; "
            f"timed sample {len(sample)}, {tokens} new tokens"
        )
        greedy = GenerationConfig(max_new_tokens=tokens)
        baseline = studies_per_second(
            model_dir, sample, 1, GenerationConfig(max_new_tokens=tokens, use_cache=False)
        )
        batched = studies_per_second(model_dir, sample, 16, greedy)
        print(
            f"1. batch 1, no KV cache: {baseline:.2f} studies/s | batch 16 + KV cache: {batched:.2f} studies/s "
            f"-> {batched / baseline:.1f}x (goal >= 5x)"
        )
        beam = studies_per_second(
            model_dir, sample, 16, GenerationConfig(max_new_tokens=tokens, num_beams=3)
        )
        print(
            f"2. greedy: {batched:.2f} studies/s | beam 3: {beam:.2f} studies/s -> beam takes {batched / beam:.1f}x the time"
        )
        rss_small = peak_rss_mb(root / "small", model_dir, root / "out-small", tokens)
        rss_large = peak_rss_mb(root / "large", model_dir, root / "out-large", tokens)
        print(
            f"3. peak RSS of `cxr generate`: {len(small_studies)} studies {rss_small:.0f} MB | "
            f"{len(large_studies)} studies {rss_large:.0f} MB -> {rss_large / rss_small:.2f}x (goal: flat, ~1.0x)"
        )
        print(
            json.dumps(
                {
                    "kv_batch_speedup": batched / baseline,
                    "beam3_slowdown": batched / beam,
                    "rss_ratio": rss_large / rss_small,
                }
            )
        )


if __name__ == "__main__":
    main()
