"""CLI start-up benchmark: `cxr --help` against the interpreter's own start-up, in fresh processes.

Each figure is the median wall time of several runs, printed beside baselines measured in the
same run:
  1. `python -c pass`: the floor, what any command pays to start Python (goal for `cxr --help`:
     under a second, i.e. a small multiple of this);
  2. `python -c "import torch"`: what `cxr --help` paid when building its parser imported every
     command module (it must stay well under this).

Usage: python benchmarks/bench_cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_SECONDS = 1.0


def median_seconds(command: list[str], runs: int) -> float:
    """The median wall time of `runs` runs of `command` (output discarded, must exit 0)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median taken)")
    options = parser.parse_args()
    python = sys.executable
    # The console script users run, beside this interpreter; `python -m cxr.cli` without one.
    script = shutil.which("cxr", path=str(Path(python).parent))
    cxr = [script] if script else [python, "-m", "cxr.cli"]
    help_time = median_seconds([*cxr, "--help"], options.runs)
    floor = median_seconds([python, "-c", "pass"], options.runs)
    torch_time = median_seconds([python, "-c", "import torch"], max(1, options.runs // 2))
    rows = [
        (
            "cxr --help",
            help_time,
            f"{' '.join(cxr)}; median of {options.runs}; goal < {GOAL_SECONDS:g} s",
        ),
        ("python -c pass", floor, "interpreter start-up"),
        ('python -c "import torch"', torch_time, "what the old parser paid at least"),
    ]
    for label, seconds, note in rows:
        print(f"{label:<26}{seconds:7.3f} s  ({note})")
    print(f"{'cxr --help / start-up':<26}{help_time / floor:7.1f}x")
    if help_time >= GOAL_SECONDS:
        print(f"FAIL: cxr --help took {help_time:.3f} s (goal < {GOAL_SECONDS:g} s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
