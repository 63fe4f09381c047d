"""Several adapters through one data module, the `cxr data-check` command and the data configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxr.cli import main
from cxr.data.commands import build_data_module
from cxr.data.datamodule import DataSource, ReportDataModule
from cxr.data.dataset import StudyDataset
from cxr.data.datasets import ADAPTERS, build_adapter
from cxr.data.splits import Split

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.fixture
def mixture(
    phantom_folder: Path,
    r2gen_folder: Path,
    ranzcr_tree: Path,
    mimic_tree: Callable[..., Path],
    make_ms_cxr_t_table: Callable[[Path], Path],
) -> ReportDataModule:
    mimic = mimic_tree(".jpg")
    make_ms_cxr_t_table(mimic / "MS_CXR_T_temporal_image_classification_v1.0.0.csv")
    sources = [
        DataSource("phantom", phantom_folder, weight=1.0),
        DataSource("iu_xray", r2gen_folder, weight=1.0),
        DataSource("ranzcr", ranzcr_tree, weight=0.5),
        DataSource("mimic_cxr_jpg", mimic, weight=1.0),
        DataSource("ms_cxr_t", mimic, weight=0.2),
    ]
    return ReportDataModule(
        sources, num_workers=0, val_fraction=0.25, test_fraction=0.25, batch_size=8
    )


def test_no_patient_crosses_splits_in_a_mixture(mixture: ReportDataModule) -> None:
    patients = {split: {s.patient_id for s in mixture.studies(split)} for split in Split}
    assert not patients[Split.TRAIN] & patients[Split.VAL]
    assert not patients[Split.TRAIN] & patients[Split.TEST]
    assert not patients[Split.VAL] & patients[Split.TEST]
    sources = {s.source for split in Split for s in mixture.studies(split)}
    assert sources == {"phantom", "iu_xray", "ranzcr", "mimic_cxr_jpg", "ms_cxr_t"}
    # IU keeps its R2Gen split (6 studies per split key in the fixture).
    iu = {split: sum(s.source == "iu_xray" for s in mixture.studies(split)) for split in Split}
    assert iu == {Split.TRAIN: 6, Split.VAL: 6, Split.TEST: 6}


def test_mixture_batch_masks_what_each_source_lacks(mixture: ReportDataModule) -> None:
    counts = mixture.summary()
    total = {key: sum(split[key] for split in counts.values()) for key in counts["train"]}
    assert total["studies"] > total["report"]  # RANZCR and MS-CXR-T studies have no report
    assert total["tube_line_labels"] < total["studies"]
    # Phantom (all), MIMIC-CXR-JPG (its 3 studies in the CheXpert table); not IU R2Gen, RANZCR
    # or MS-CXR-T.
    phantom = sum(s.source == "phantom" for split in Split for s in mixture.studies(split))
    assert total["observation_labels"] == phantom + 3
    batch = next(iter(mixture.train_dataloader()))
    assert batch["images"].shape[0] == 8
    assert batch["observations"].shape == (8, 14)


def test_data_check_prints_counts_per_split_and_source(
    r2gen_folder: Path, ranzcr_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "sources": [
            {"adapter": "iu_xray", "root": str(r2gen_folder)},
            {"adapter": "ranzcr", "root": str(ranzcr_tree)},
        ],
        "val_fraction": 0.0,
        "test_fraction": 0.0,
    }
    config = tmp_path / "experiment.yaml"
    config.write_text(
        yaml.safe_dump({"seed_everything": 0, "model": "../model/tiny.yaml", "data": data})
    )
    assert main(["data-check", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:3] == ["split", "studies", "patients"]
    rows = {
        line.split()[0]: dict(zip(header[1:], map(int, line.split()[1:]), strict=True))
        for line in lines[1:4]
    }
    assert rows["train"]["studies"] == 6 + 6  # IU train split + all 6 RANZCR studies
    assert rows["train"]["report"] == 6 and rows["train"]["tube_line_labels"] == 6
    assert rows["train"]["observation_labels"] == 0  # R2Gen has no MeSH terms, RANZCR no report
    assert rows["train"]["frontal"] == 6 + 5 and rows["train"]["lateral"] == 6
    assert rows["val"]["studies"] == 6 and rows["test"]["studies"] == 6
    assert any(line.startswith("source 1: ranzcr") for line in lines)

    # A data YAML given on its own, with a relative path from the experiment.
    data_file = tmp_path / "data" / "iu.yaml"
    data_file.parent.mkdir()
    data_file.write_text(yaml.safe_dump({"sources": data["sources"][:1]}))
    assert main(["data-check", "--data", str(data_file)]) == 0
    assert "source 0: iu_xray" in capsys.readouterr().out

    # The same reports labelled by the offline labeler: every IU study then has labels.
    labelled = {"sources": [{**data["sources"][0], "label_reports": True}]}
    data_file.write_text(yaml.safe_dump(labelled))
    assert main(["data-check", "--data", str(data_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    counts = {
        line.split()[0]: dict(zip(header[1:], map(int, line.split()[1:]), strict=True))
        for line in lines[1:4]
    }
    assert all(counts[split]["observation_labels"] == 6 for split in ("train", "val", "test"))


def test_data_check_rejects_a_wrong_key_and_an_empty_dataset(tmp_path: Path) -> None:
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump({"data": {"sources": [], "batch_sise": 3}}))
    assert main(["data-check", "--config", str(config)]) == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("study_id\n")
    config.write_text(
        yaml.safe_dump({"data": {"sources": [{"adapter": "manifest", "root": str(empty)}]}})
    )
    assert main(["data-check", "--config", str(config)]) == 1


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_data_configs_build_and_their_adapters_accept_the_options(path: Path) -> None:
    module = build_data_module(path)
    for source in module.sources:
        assert source.adapter in ADAPTERS
        build_adapter(source.adapter, Path(source.root), **source.options)


@pytest.mark.slow
def test_mixture_experiment_runs_one_step(
    phantom_folder: Path,
    r2gen_folder: Path,
    ranzcr_tree: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    read_sources: list[str] = []
    original_item = StudyDataset.item

    def recording_item(self: StudyDataset, index: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
        read_sources.append(self.studies[index].source)
        return original_item(self, index, *args, **kwargs)

    monkeypatch.setattr(StudyDataset, "item", recording_item)
    sources = (
        f"[{{adapter: phantom, root: {phantom_folder}}}, {{adapter: iu_xray, root: {r2gen_folder}}}, "
        f"{{adapter: ranzcr, root: {ranzcr_tree}, weight: 0.5}}]"
    )
    code = main(
        [
            "fit",
            "--config", str(CONFIGS / "experiment" / "mixture_smoke.yaml"),
            "--data.sources", sources,
            "--data.batch_size", "8",
            "--data.num_workers", "0",
            "--trainer.fast_dev_run", "true",
        ]
    )  # fmt: skip
    assert code == 0
    # The one training batch (8 weighted draws, seed 0) and the validation batch mix sources.
    assert {"phantom", "iu_xray", "ranzcr"} <= set(read_sources), read_sources
