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


# Model configs that build without local weight folders; the real-scale one is run below
# with tiny stand-ins in those folders.
SCRATCH_MODELS = sorted(p for p in (CONFIGS / "model").glob("*.yaml") if "weights:" not in p.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_config", "trainer_config"),
    [*((m, None) for m in SCRATCH_MODELS), (CONFIGS / "model" / "tiny.yaml", CONFIGS / "trainer" / "cpu.yaml")],
    ids=lambda p: p.name if p else "demo-trainer",
)
def test_demo_experiment_runs_one_step(
    model_config: Path,
    trainer_config: Path | None,
    phantom_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the configs write under runs/ relative to the working folder
    sources = f"[{{adapter: phantom, root: {phantom_folder}}}]"
    trainer = ["--trainer", str(trainer_config)] if trainer_config else []
    code = main(
        [
            "fit",
            "--config", str(CONFIGS / "experiment" / "demo.yaml"),
            "--model", str(model_config),
            *trainer,
            "--data.sources", sources,
            "--data.num_workers", "0",
            "--trainer.fast_dev_run", "true",
        ]
    )
    assert code == 0
    assert (tmp_path / "runs" / "demo" / "cache").is_dir()


def write_local_models(folder: Path, reports: list[str]) -> None:
    """Tiny stand-ins where the real-scale configs expect local weights: a Llama-family causal
    LM with its tokenizer in models/llm, and timm ViT weights in models/vit_base_patch16_224."""
    import timm
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from cxr.data.tokenizer import train_report_tokenizer

    tokenizer = train_report_tokenizer(reports, vocab_size=300)
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    llm.save_pretrained(folder / "models" / "llm")
    tokenizer.save_pretrained(folder / "models" / "llm")
    vit = timm.create_model("test_vit", pretrained=False, num_classes=0, img_size=64)
    (folder / "models").mkdir(exist_ok=True)
    save_file(vit.state_dict(), str(folder / "models" / "vit.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["iu_xray.yaml", "mimic_cxr.yaml"])
def test_real_scale_experiment_runs_one_step_on_local_stand_ins(
    experiment: str, phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxr.data.datasets.records import read_reports

    reports = [f"{r['findings']} {r['impression']}" for r in read_reports(phantom_folder / "reports.jsonl").values()]
    write_local_models(tmp_path, reports)
    monkeypatch.chdir(tmp_path)  # the configs name models/... and runs/... relative to here
    encoder = "--model.model.init_args.encoder."
    code = main(
        [
            "fit",
            "--config", str(CONFIGS / "experiment" / experiment),
            # The real LLM folder path and LoRA stay; the ViT is timm's tiny test ViT at 64 px.
            f"{encoder}name", "test_vit",
            f"{encoder}weights", "models/vit.safetensors",
            f"{encoder}image_size", "64",
            f"{encoder}timm_kwargs", "{img_size: 64}",
            # options: {} replaces the real dataset's options (list items merge by position).
            "--data.sources", f"[{{adapter: phantom, root: {phantom_folder}, options: {{}}}}]",
            "--data.image_size", "64",
            "--data.num_workers", "0",
            "--data.batch_size", "2",
            "--trainer.accelerator", "cpu",
            "--trainer.devices", "1",
            "--trainer.strategy", "auto",
            "--trainer.precision", "32-true",
            "--trainer.fast_dev_run", "true",
        ]
    )
    assert code == 0
