"""A saved model folder in Hugging Face tools: AutoConfig / AutoModel (trust_remote_code) and
AutoTokenizer load it and agree with ReportModel; the old layout still loads; the preprocessor
config holds what turns a DICOM into the model's input; a Hub repo id resolves offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors
import torch
from evaluation.runners.hub_folders import save_to_hub_cache
from tiny_models import make_batch, tiny_encoder, tiny_model
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerBase,
)

from cxr.errors import InputError
from cxr.evaluation.hub_cache import hub_cache
from cxr.io import dicom
from cxr.models import ReportModel, hf_remote
from cxr.models.report_model import ReportModelOutput

REPO_ID = "cxr-tests/tiny-report-model"
FEW_TOKENS = GenerationConfig(max_new_tokens=8)


@pytest.fixture(scope="module")
def saved(tokenizer: PreTrainedTokenizerBase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny grounded model's folder; its encoder normalises with non-default statistics."""
    model = tiny_model(tokenizer, encoder=tiny_encoder(pixel_mean=0.4, pixel_std=0.3))
    model.heads_config.tube_line_thresholds[2] = 0.25
    return model.save_pretrained(tmp_path_factory.mktemp("hub") / "model")


def assert_same_outputs(first: ReportModelOutput, second: ReportModelOutput) -> None:
    assert torch.equal(first.lm_loss, second.lm_loss)
    assert torch.equal(first.tube_line_logits, second.tube_line_logits)
    assert torch.equal(first.observation_logits, second.observation_logits)
    assert torch.equal(first.change_logits, second.change_logits)


def test_auto_classes_load_the_folder_and_agree_with_report_model(
    saved: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    batch = make_batch(tokenizer)
    reference = ReportModel.from_pretrained(saved)

    config = AutoConfig.from_pretrained(saved, trust_remote_code=True)
    model = AutoModel.from_pretrained(saved, trust_remote_code=True)
    auto_tokenizer = AutoTokenizer.from_pretrained(saved)

    saved_config = json.loads((saved / "config.json").read_text())
    assert config.model_type == saved_config["model_type"] == "cxr_report_model"
    assert saved_config["auto_map"] == {
        "AutoConfig": "configuration_cxr.CxrReportConfig",
        "AutoModel": "modeling_cxr.CxrReportModel",
    }
    assert saved_config["architectures"] == [type(model).__name__] == ["CxrReportModel"]
    assert config.report_model_config() == reference.config_dict()
    assert not model.training
    assert_same_outputs(model(batch), reference(batch))
    assert_same_outputs(model(**batch), reference(batch))
    assert torch.equal(
        model.generate_ids(batch, FEW_TOKENS), reference.generate_ids(batch, FEW_TOKENS)
    )
    assert model.generate(batch, FEW_TOKENS) == reference.generate(batch, FEW_TOKENS)
    assert model.predict_labels(batch).tube_line.tolist() == (
        reference.predict_labels(batch).tube_line.tolist()
    )
    text = "Endotracheal tube tip 4 cm above the carina."
    assert auto_tokenizer(text).input_ids == tokenizer(text, add_special_tokens=False).input_ids
    assert (auto_tokenizer.pad_token_id, auto_tokenizer.eos_token_id) == (
        tokenizer.pad_token_id,
        tokenizer.eos_token_id,
    )


def test_weights_keep_report_model_names_and_code_is_copied_verbatim(saved: Path) -> None:
    with safetensors.safe_open(str(saved / "model.safetensors"), framework="pt") as weights:
        names = set(weights.keys())
    package = Path(hf_remote.__file__).parent

    state = ReportModel.from_pretrained(saved).state_dict()

    # ReportModel's own names (safetensors stores a tied tensor once), no wrapper prefix.
    assert names <= set(state) and len(names) >= len(state) - 1
    assert {"role_embedding", "missing_image"} <= names
    for name in ("configuration_cxr.py", "modeling_cxr.py"):
        assert (saved / name).read_text() == (package / name).read_text()
    assert sorted(p.name for p in saved.iterdir()) == [
        "config.json",
        "configuration_cxr.py",
        "generation_config.json",
        "model.safetensors",
        "modeling_cxr.py",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_a_folder_in_the_previous_layout_still_loads(
    saved: Path, tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    """What save_pretrained wrote before: cxr's config keys only, the tokenizer in tokenizer/."""
    current = ReportModel.from_pretrained(saved)
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(current.config_dict(), indent=2))
    for name in ("generation_config.json", "model.safetensors"):
        shutil.copy(saved / name, old / name)
    current.tokenizer.save_pretrained(str(old / "tokenizer"))
    batch = make_batch(tokenizer)

    loaded = ReportModel.from_pretrained(old)

    assert_same_outputs(loaded(batch), current(batch))
    assert loaded.generate(batch, FEW_TOKENS) == current.generate(batch, FEW_TOKENS)
    assert loaded.tube_line_thresholds[2].item() == pytest.approx(0.25)


def test_preprocessor_config_holds_what_makes_a_dicom_the_model_input(saved: Path) -> None:
    record = json.loads((saved / "preprocessor_config.json").read_text())

    assert record["image_slots"] == ["frontal", "lateral", "prior_frontal"]
    assert record["image_size"] == 64  # tiny_encoder's
    assert record["normalisation"]["pixel_mean"] == pytest.approx(0.4)
    assert record["normalisation"]["pixel_std"] == pytest.approx(0.3)
    assert record["normalisation"]["space_to_depth"] == 1
    assert record["preprocess"]["image_size"] == 64
    assert "LANCZOS" in record["preprocess"]["resize"]
    assert record["preprocess"]["pad"] == "centred, value 0"
    reader = record["read_image"]
    assert reader["function"] == "cxr.io.dicom.read_image"
    assert reader["percentile_window"] == list(dicom.PERCENTILE_WINDOW) == [0.5, 99.5]
    assert reader["photometric_interpretations"] == ["MONOCHROME1", "MONOCHROME2"]
    assert "invert MONOCHROME1 (bright = dense)" in reader["dicom_steps"]


def test_a_hub_repo_id_loads_from_the_local_cache_offline(
    saved: Path, tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    save_to_hub_cache(
        cache, REPO_ID, lambda folder: shutil.copytree(saved, folder, dirs_exist_ok=True)
    )
    batch = make_batch(tokenizer)
    reference = ReportModel.from_pretrained(saved)

    with hub_cache(cache):
        from_hub = ReportModel.from_pretrained(REPO_ID)
        auto = AutoModel.from_pretrained(REPO_ID, trust_remote_code=True)

    assert_same_outputs(from_hub(batch), reference(batch))
    assert auto.generate(batch, FEW_TOKENS) == reference.generate(batch, FEW_TOKENS)


def test_a_hub_repo_id_missing_from_the_cache_is_an_input_error_naming_it(
    tmp_path: Path,
) -> None:
    with hub_cache(tmp_path / "empty"), pytest.raises(InputError) as error:
        ReportModel.from_pretrained("cxr-tests/not-downloaded")

    assert error.value.path == "cxr-tests/not-downloaded"
    assert "HF_HUB_OFFLINE" in error.value.reason
    assert "hf download cxr-tests/not-downloaded" in error.value.reason


def test_a_missing_local_folder_is_not_looked_up_on_the_hub(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model folder not found"):
        ReportModel.from_pretrained(tmp_path / "absent")
