"""The scorer registry: every runner module's specs are known, each names a parity test that
exists, and the README's scorer table lists each with its package and parity test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cxr.evaluation.scorers import RUNNER_MODULES, known_scorers, scorer_help

ROOT = Path(__file__).resolve().parents[3]


def test_every_scorer_has_its_parity_test_and_a_readme_row() -> None:
    readme = (ROOT / "README.md").read_text()
    help_text = scorer_help()
    assert len(known_scorers()) >= len(RUNNER_MODULES)
    for spec in known_scorers().values():
        assert (ROOT / spec.parity_test).is_file(), spec.parity_test
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{spec.name}` |"))
        assert f"`{spec.parity_test}`" in row
        assert f"  {spec.name}: " in help_text
        for metric in spec.metric_names():
            assert metric in help_text


def test_listing_the_scorers_imports_no_scorer_package() -> None:
    code = (
        "import sys; from cxr.evaluation.scorers import scorer_help; scorer_help(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('radeval', 'torch')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
