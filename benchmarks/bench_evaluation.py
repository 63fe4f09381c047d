"""Bootstrap speed of the NLG metrics: vectorised sufficient statistics vs. re-running
pycocoevalcap on every resampled corpus (the baseline, measured in the same run).

Prints seconds per resample for both and their ratio. `--quick` uses 100 studies and
3 baseline resamples (a few seconds). METEOR is left out (it needs java and is bootstrapped
through the jar in both cases).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from cxr.evaluation.nlg import NlgStatistics, tokenize_report

ANNOTATION = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "iu-xray-reports"
    / "annotation_r2gen_split.json"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    args = parser.parse_args()
    n_studies, n_baseline, n_fast = (100, 3, 200) if args.quick else (590, 10, 1000)
    reports = [e["report"] for e in json.loads(ANNOTATION.read_text())["    "]][:n_studies]
    refs = [tokenize_report(r) for r in reports]
    hyps = refs[:]
    random.Random(0).shuffle(hyps)
    weights = np.random.default_rng(0).multinomial(
        len(refs), np.full(len(refs), 1 / len(refs)), size=n_fast
    )

    start = time.perf_counter()
    for row in weights[:n_baseline]:
        repeated = np.repeat(np.arange(len(refs)), row)
        gts = {i: [refs[j]] for i, j in enumerate(repeated)}
        res = {i: [hyps[j]] for i, j in enumerate(repeated)}
        Bleu(4).compute_score(gts, res, verbose=0)
        Rouge().compute_score(gts, res)
        Cider().compute_score(gts, res)
    baseline = (time.perf_counter() - start) / n_baseline

    start = time.perf_counter()
    stats = NlgStatistics(hyps, refs, meteor=False)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    stats.scores(weights.astype(float))
    fast = (time.perf_counter() - start) / n_fast

    print(f"studies: {n_studies}")
    print(f"baseline (pycocoevalcap per resample): {baseline * 1000:.1f} ms/resample")
    print(
        f"sufficient statistics: {fast * 1000:.2f} ms/resample (+ {setup:.2f} s once, includes pycocoevalcap point values)"
    )
    print(f"speed-up per resample: {baseline / fast:.0f}x")
    print(f"1000 resamples: baseline {baseline * 1000:.0f} s vs {setup + fast * 1000:.1f} s")


if __name__ == "__main__":
    main()
