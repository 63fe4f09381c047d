"""Every YAML under configs/ parses; experiments resolve through LightningCLI and run a step."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cxr.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL_YAML = sorted(CONFIGS.rglob("*.yaml"))
EXPERIMENTS = sorted((CONFIGS / "experiment").glob("*.yaml"))


def test_config_folders_are_populated() -> None:
    for folder in ("model", "data", "trainer", "experiment"):
        assert list((CONFIGS / folder).glob("*.yaml")), folder


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_yaml_parses_to_a_mapping(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_resolves(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(path), "--print_config"])
    assert exit_info.value.code == 0
    assert "class_path: cxr.models.ReportModel" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("model_config", sorted((CONFIGS / "model").glob("*.yaml")), ids=lambda p: p.name)
def test_demo_experiment_runs_one_step(
    model_config: Path, phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the configs write under runs/ relative to the working folder
    sources = f"[{{adapter: phantom, root: {phantom_folder}}}]"
    code = main(
        [
            "fit",
            "--config", str(CONFIGS / "experiment" / "demo.yaml"),
            "--model", str(model_config),
            "--data.sources", sources,
            "--data.num_workers", "0",
            "--trainer.fast_dev_run", "true",
        ]
    )
    assert code == 0
    assert (tmp_path / "runs" / "demo" / "cache").is_dir()
