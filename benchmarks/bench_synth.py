"""Phantom synthesis benchmark: 1,000 studies at 512 px, against a single-worker baseline.

Prints, measured in the same run:
  1. single-worker studies/s on a quarter of the patients (the baseline);
  2. `synthesize(..., workers=W)` studies/s for >= 1,000 studies, its speed-up over the
     baseline, and the wall time against the goal (<= 60 s on 2 cores);
  3. CPU seconds per 1,000 studies (all processes), and the wall time that makes on W idle
     cores: the machine is shared, so wall time alone depends on everyone else's load.

Usage: python benchmarks/bench_synth.py [--quick] [--workers 2] [--size 512]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
from pathlib import Path

from cxr.synth import sample_patient, synthesize

GOAL_SECONDS = 60.0
SEED = 1234


def patients_for(studies: int, seed: int) -> int:
    """Smallest number of patients whose studies add up to at least `studies`."""
    total, number = 0, 0
    while total < studies:
        total += len(sample_patient(seed, number).studies)
        number += 1
    return number


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 studies at 256 px (smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    target, size = (40, 256) if args.quick else (1000, args.size)
    patients = patients_for(target, SEED)
    with tempfile.TemporaryDirectory() as tmp:
        base = synthesize(Path(tmp) / "base", max(1, patients // 4), SEED, size=size, workers=1)
        base_rate = base.studies / base.seconds
        print(
            f"baseline  1 worker : {base.studies:5d} studies in {base.seconds:6.1f} s "
            f"= {base_rate:6.1f} studies/s"
        )
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds()
        run = synthesize(Path(tmp) / "run", patients, SEED, size=size, workers=args.workers)
        cpu = cpu_seconds() - cpu_before
        rate = run.studies / run.seconds
        print(
            f"synthesize {args.workers} workers: {run.studies:5d} studies ({run.images} images, "
            f"{run.compressed_images} compressed) in {run.seconds:6.1f} s = {rate:6.1f} studies/s "
            f"= {rate / base_rate:.2f}x baseline"
        )
        per_thousand = 1000 / rate
        verdict = "meets" if per_thousand <= GOAL_SECONDS else "MISSES"
        print(
            f"1,000 studies at {size} px: {per_thousand:.1f} s wall ({verdict} the "
            f"{GOAL_SECONDS:.0f} s goal; {per_thousand / GOAL_SECONDS:.2f}x of it; load average "
            f"{load:.1f} when it started)"
        )
        cpu_per_thousand = cpu * 1000 / run.studies
        idle = cpu_per_thousand / args.workers
        print(
            f"CPU time: {cpu_per_thousand:.1f} CPU-s per 1,000 studies -> {idle:.1f} s on "
            f"{args.workers} idle cores ({idle / GOAL_SECONDS:.2f}x of the goal)"
        )


if __name__ == "__main__":
    main()
