"""Every YAML under configs/ configures what it says: its keys are options of its group, its
values reach LightningCLI's resolved config, experiments build the classes they name with those
values and run a step, and an experiment copied elsewhere still finds the files it includes."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxr.cli import CONFIGS_DIR, main, parse_command, resolve_experiment_config
from cxr.errors import InputError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL_YAML = sorted(CONFIGS.rglob("*.yaml"))
EXPERIMENTS = sorted((CONFIGS / "experiment").glob("*.yaml"))
DEMO = CONFIGS / "experiment" / "demo.yaml"
SECTIONS = ("model", "data", "trainer")


def load(path: Path) -> dict[str, Any]:
    value = yaml.safe_load(path.read_text())
    assert isinstance(value, dict), path
    return value


def expanded(experiment: Path) -> dict[str, Any]:
    """An experiment YAML with each included file replaced by its content (read beside it)."""
    sections = load(experiment)
    for section, value in sections.items():
        if isinstance(value, str) and value.endswith(".yaml"):
            sections[section] = load(experiment.parent / value)
    return sections


def leaves(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(key path, value) of every scalar in nested mappings and lists."""
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaves(value, (*prefix, key))
    elif isinstance(tree, list) and tree:
        for index, value in enumerate(tree):
            yield from leaves(value, (*prefix, index))
    else:
        yield prefix, tree


def at(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def group_options(group: str) -> set[str]:
    """The keys a YAML of configs/GROUP/ may set: the parameters of the class it configures."""
    if group == "experiment":
        return {
            "seed_everything",
            "model",
            "data",
            "trainer",
            "optimizer",
            "lr_scheduler",
            "ckpt_path",
        }
    from lightning.pytorch import Trainer

    from cxr.data.datamodule import ReportDataModule
    from cxr.training.module import ReportModule

    configured = {"model": ReportModule, "data": ReportDataModule, "trainer": Trainer}[group]
    return set(inspect.signature(configured.__init__).parameters) - {"self"}


def test_config_folders_are_populated() -> None:
    for folder in ("model", "data", "trainer", "experiment"):
        assert list((CONFIGS / folder).glob("*.yaml")), folder


def test_the_project_configs_folder_is_this_one() -> None:
    assert CONFIGS_DIR == CONFIGS


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_keys_are_options_of_what_the_folder_configures(path: Path) -> None:
    unknown = set(load(path)) - group_options(path.parent.name)
    assert not unknown, f"{path.name}: not options of {path.parent.name}: {sorted(unknown)}"


def print_config(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The config LightningCLI resolves from `cxr fit ARGS`, as `--print_config` prints it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    return load_text(captured.out)


def load_text(text: str) -> dict[str, Any]:
    value = yaml.safe_load(text)
    assert isinstance(value, dict)
    return value


def fit_args_and_expected(path: Path) -> tuple[list[str], dict[str, Any]]:
    """How a config file is given to `cxr fit`, and the values it must set: an experiment
    alone, any other file as its section of the demo experiment."""
    if path.parent.name == "experiment":
        return ["--config", str(path)], expanded(path)
    return ["--config", str(DEMO), f"--{path.parent.name}", str(path)], {
        path.parent.name: load(path)
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_value_reaches_the_resolved_config(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = fit_args_and_expected(path)
    resolved = print_config(args, capsys)
    assert resolved["model"]["model"]["class_path"] == "cxr.models.ReportModel"
    for key_path, value in leaves(expected):
        assert at(resolved, key_path) == value, ".".join(map(str, key_path))


def resolve_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def plain(value: Any) -> Any:
    """A configured attribute as YAML writes it (an Enum by its value, a path as text)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def assert_configured(target: Any, expected: dict[str, Any], where: str) -> None:
    """Each option in `expected` is the attribute of that name of `target` (recursing into
    nested mappings, which configure nested objects)."""
    for key, value in expected.items():
        actual = target[key] if isinstance(target, dict) else getattr(target, key)
        if isinstance(value, dict) and not isinstance(actual, dict):
            assert_configured(actual, value, f"{where}.{key}")
        else:
            assert plain(actual) == value, f"{where}.{key}"


def assert_builds_model(module: Any, config: dict[str, Any]) -> None:
    from cxr.training.module import ReportModule

    assert type(module) is ReportModule
    spec = config["model"]
    assert type(module.model) is resolve_class(spec["class_path"])
    for part, options in spec["init_args"].items():
        assert_configured(getattr(module.model, f"{part}_config"), options, f"model.{part}")
    assert_configured(
        dict(module.hparams), {k: v for k, v in config.items() if k != "model"}, "model"
    )


def assert_builds_data(data_module: Any, config: dict[str, Any]) -> None:
    from cxr.data.datamodule import ReportDataModule

    assert type(data_module) is ReportDataModule
    renamed = {
        "tokenizer_path" if k == "tokenizer" else k: v for k, v in config.items() if k != "sources"
    }
    assert_configured(data_module, renamed, "data")


def assert_builds_trainer(trainer: Any, config: dict[str, Any]) -> None:
    accelerator = config.pop("accelerator", None)
    if accelerator is not None:
        assert type(trainer.accelerator).__name__.lower().startswith(accelerator)
    if isinstance(config.get("devices"), int) and config["devices"] > 0:
        assert trainer.num_devices == config.pop("devices")
    logger = config.pop("logger", None)
    if logger is not None:
        assert type(trainer.logger) is resolve_class(logger["class_path"])
        assert_configured(trainer.logger, logger["init_args"], "trainer.logger")
    for callback in config.pop("callbacks", []):
        built = [c for c in trainer.callbacks if type(c) is resolve_class(callback["class_path"])]
        assert len(built) == 1, callback["class_path"]
        options = dict(callback["init_args"])
        if "dirpath" in options:  # ModelCheckpoint keeps its folder as an absolute path.
            assert Path(built[0].dirpath) == Path(options.pop("dirpath")).resolve()
        assert_configured(built[0], options, f"trainer.callbacks.{callback['class_path']}")
    assert_configured(trainer, config, "trainer")


def needs_local_weights(model_config: dict[str, Any]) -> bool:
    init_args = model_config["model"]["init_args"]
    return bool(init_args["encoder"].get("weights") or init_args["decoder"].get("path"))


BUILDABLE = [p for p in EXPERIMENTS if not needs_local_weights(expanded(p)["model"])]


def test_some_experiments_build_without_local_weights() -> None:
    assert DEMO in BUILDABLE


@pytest.mark.slow
@pytest.mark.parametrize("path", BUILDABLE, ids=lambda p: p.name)
def test_experiment_builds_the_classes_it_names_with_its_values(
    path: Path, phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxr.training.cli import build_lightning_cli

    monkeypatch.chdir(tmp_path)  # the configs name runs/... relative to the working folder
    sources = f"[{{adapter: phantom, root: {phantom_folder}}}]"
    cli = build_lightning_cli(["--config", str(path), "--data.sources", sources], run=False)
    config = expanded(path)
    assert_builds_model(cli.model, config["model"])
    assert_builds_data(cli.datamodule, config["data"])
    assert_builds_trainer(cli.trainer, config["trainer"])


# Model configs that build without local weight folders; the real-scale one is run below
# with tiny stand-ins in those folders.
SCRATCH_MODELS = sorted(
    p for p in (CONFIGS / "model").glob("*.yaml") if not needs_local_weights(load(p))
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_config", "trainer_config"),
    [
        *((m, None) for m in SCRATCH_MODELS),
        (CONFIGS / "model" / "tiny.yaml", CONFIGS / "trainer" / "cpu.yaml"),
    ],
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
            "--config",
            str(DEMO),
            "--model",
            str(model_config),
            *trainer,
            "--data.sources",
            sources,
            "--data.num_workers",
            "0",
            "--trainer.fast_dev_run",
            "true",
        ]
    )
    assert code == 0
    assert (tmp_path / "runs" / "demo" / "cache").is_dir()


def copy_of_demo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(DEMO, folder / "my_demo.yaml"))


def test_copied_experiment_finds_its_includes_in_the_project_configs(tmp_path: Path) -> None:
    copy = copy_of_demo(tmp_path / "elsewhere")
    sections = load_text(resolve_experiment_config(copy))
    assert sections["model"] == str(CONFIGS / "model" / "tiny.yaml")
    assert sections["data"] == str(CONFIGS / "data" / "phantom.yaml")
    assert sections["trainer"] == load(DEMO)["trainer"]


def test_an_include_beside_the_copy_wins_over_the_project_configs(tmp_path: Path) -> None:
    copy = copy_of_demo(tmp_path / "mine" / "experiment")
    edited = tmp_path / "mine" / "model" / "tiny.yaml"
    edited.parent.mkdir()
    edited.write_text("learning_rate: 0.5\n")
    assert load_text(resolve_experiment_config(copy))["model"] == str(edited)


def test_data_check_reads_a_copied_experiment(tmp_path: Path) -> None:
    _, options = parse_command(["data-check", "--config", str(copy_of_demo(tmp_path))])
    assert Path(options["data"]) == CONFIGS / "data" / "phantom.yaml"


@pytest.mark.slow
def test_fit_resolves_a_copied_experiment_as_the_original(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = copy_of_demo(tmp_path / "elsewhere")
    assert print_config(["--config", str(copy)], capsys) == print_config(
        ["--config", str(DEMO)], capsys
    )


def broken_copy(tmp_path: Path) -> Path:
    copy = copy_of_demo(tmp_path / "elsewhere")
    copy.write_text(copy.read_text().replace("../model/tiny.yaml", "../model/tinny.yaml"))
    return copy


def test_a_missing_include_says_where_it_was_looked_for_and_what_to_write(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path)
    with pytest.raises(InputError) as error:
        resolve_experiment_config(copy)
    message = str(error.value)
    assert error.value.path == str(copy)
    assert "model: '../model/tinny.yaml' not found" in message
    assert str(tmp_path / "model" / "tinny.yaml") in message
    assert str(CONFIGS / "model" / "tinny.yaml") in message
    assert "../model/NAME.yaml" in message and "tiny.yaml" in message


@pytest.mark.parametrize("command", ["fit", "data-check"])
def test_a_missing_include_fails_the_command_with_that_message(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--config", str(broken_copy(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "'../model/tinny.yaml' not found" in err and str(CONFIGS / "model") in err
    assert "Traceback" not in err


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
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
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

    reports = [
        f"{r['findings']} {r['impression']}"
        for r in read_reports(phantom_folder / "reports.jsonl").values()
    ]
    write_local_models(tmp_path, reports)
    monkeypatch.chdir(tmp_path)  # the configs name models/... and runs/... relative to here
    encoder = "--model.model.init_args.encoder."
    code = main(
        [
            "fit",
            "--config",
            str(CONFIGS / "experiment" / experiment),
            # The real LLM folder path and LoRA stay; the ViT is timm's tiny test ViT at 64 px.
            f"{encoder}name",
            "test_vit",
            f"{encoder}weights",
            "models/vit.safetensors",
            f"{encoder}image_size",
            "64",
            f"{encoder}timm_kwargs",
            "{img_size: 64}",
            # options: {} replaces the real dataset's options (list items merge by position).
            "--data.sources",
            f"[{{adapter: phantom, root: {phantom_folder}, options: {{}}}}]",
            "--data.image_size",
            "64",
            "--data.num_workers",
            "0",
            "--data.batch_size",
            "2",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
            "--trainer.strategy",
            "auto",
            "--trainer.precision",
            "32-true",
            "--trainer.fast_dev_run",
            "true",
        ]
    )
    assert code == 0


# Vision-language model configs -> (the folder they name, its tiny stand-in's builder, the
# encoder.image_size the stand-in's tower takes).
VLM_MODELS = {
    "medgemma_lora.yaml": ("models/medgemma-4b-it", "build_gemma3_folder", 28),
    "lingshu_qwen2_5_vl_lora.yaml": ("models/Lingshu-7B", "build_qwen2_5_vl_folder", 56),
}


def test_every_vision_language_model_config_is_run_below() -> None:
    named = {p.name for p in (CONFIGS / "model").glob("*.yaml") if "hf_path" in p.read_text()}
    assert named == set(VLM_MODELS)


@pytest.mark.slow
@pytest.mark.parametrize("config_name", sorted(VLM_MODELS))
def test_vision_language_model_config_fits_exports_and_generates_on_a_tiny_stand_in(
    config_name: str, phantom_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cxr fit` one step with the config, `cxr export`, then `cxr generate` from the exported
    folder alone (the vision-language model's folder moved away)."""
    import json

    import vlm_folders

    folder, builder, image_size = VLM_MODELS[config_name]
    config = load(CONFIGS / "model" / config_name)
    assert config["model"]["init_args"]["encoder"]["hf_path"] == folder
    assert config["model"]["init_args"]["decoder"]["path"] == folder
    getattr(vlm_folders, builder)(tmp_path / folder)
    monkeypatch.chdir(tmp_path)  # the configs name models/... and runs/... relative to here
    fit = main(
        [
            "fit",
            "--config",
            str(DEMO),
            "--model",
            str(CONFIGS / "model" / config_name),
            "--model.model.init_args.encoder.image_size",
            str(image_size),
            "--data.tokenizer",
            folder,
            "--data.sources",
            f"[{{adapter: phantom, root: {phantom_folder}}}]",
            "--data.image_size",
            "64",
            "--data.batch_size",
            "2",
            "--data.num_workers",
            "0",
            "--trainer.max_steps",
            "1",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert fit == 0
    checkpoint = tmp_path / "runs" / "demo" / "train" / "checkpoints" / "last.ckpt"
    assert main(["export", str(checkpoint), "-o", "exported"]) == 0
    shutil.move(tmp_path / "models", tmp_path / "moved")
    generate = ["generate", str(phantom_folder), "--model", "exported", "-o", "reports"]
    assert main([*generate, "--workers", "0", "--max-new-tokens", "4"]) == 0
    reported = (tmp_path / "reports" / "reports.jsonl").read_text().splitlines()
    expected = {r["study_id"] for r in map(json.loads, (phantom_folder / "reports.jsonl").open())}
    assert {json.loads(line)["study_id"] for line in reported} == expected
