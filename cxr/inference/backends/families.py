"""Which kind of model a folder holds, read from its config.json.

A folder cxr wrote (`ReportModel.save_pretrained`, `cxr export`) says so in config.json
(`"format": "cxr-report-model"`; it also carries an `auto_map` for Hugging Face's remote-code
loading, which cxr itself never uses). Any other folder is a Hugging Face model, recognised by
its `model_type` or `architectures`: the families below. MAIRA-2 and CheXagent-2 ship their
own Python code (config.json `auto_map`), which runs only with `--trust-remote-code`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from cxr.errors import InputError

CONFIG_FILE = "config.json"
TRUST_REMOTE_CODE_FLAG = "--trust-remote-code"


class Family(str, Enum):
    """A family of models `cxr generate` can run, each with its own prompt builder."""

    CXR = "cxr"
    GEMMA3 = "gemma3"
    QWEN2_5_VL = "qwen2_5_vl"
    QWEN3_VL = "qwen3_vl"
    LLAVA = "llava"
    MAIRA2 = "maira2"
    CHEXAGENT = "chexagent"


@dataclass(frozen=True)
class FamilySpec:
    """How a family is recognised and what it needs."""

    name: str  # as people call it, for messages and the README
    model_types: tuple[str, ...]
    architectures: tuple[str, ...]
    remote_code: bool = False


FAMILIES: dict[Family, FamilySpec] = {
    Family.GEMMA3: FamilySpec(
        "Gemma 3 (MedGemma)", ("gemma3",), ("Gemma3ForConditionalGeneration",)
    ),
    Family.QWEN2_5_VL: FamilySpec(
        "Qwen2.5-VL (Lingshu)", ("qwen2_5_vl",), ("Qwen2_5_VLForConditionalGeneration",)
    ),
    Family.QWEN3_VL: FamilySpec(
        "Qwen3-VL (RadVLM)", ("qwen3_vl",), ("Qwen3VLForConditionalGeneration",)
    ),
    Family.LLAVA: FamilySpec("LLaVA", ("llava",), ("LlavaForConditionalGeneration",)),
    Family.MAIRA2: FamilySpec(
        "MAIRA-2", ("maira2",), ("Maira2ForConditionalGeneration",), remote_code=True
    ),
    Family.CHEXAGENT: FamilySpec(
        "CheXagent-2", ("chexagent",), ("CheXagentForCausalLM",), remote_code=True
    ),
}


def read_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a model folder.

    Raises:
        InputError: the folder has no config.json, or it is not a JSON object.
    """
    path = model_dir / CONFIG_FILE
    if not path.is_file():
        raise InputError(
            model_dir, "not a model folder (no config.json); make one with `cxr export`"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read this model config: {error}") from error
    if not isinstance(config, dict):
        raise InputError(path, "expected a JSON object")
    return config


def detect_family(model_dir: Path) -> Family:
    """The family of the model in `model_dir`, from its config.json.

    Raises:
        InputError: no config.json, or a model of no family cxr runs (the message lists them).
    """
    from cxr.models.report_model import FORMAT

    config = read_config(model_dir)
    if config.get("format") == FORMAT:
        return Family.CXR
    model_type = str(config.get("model_type") or "")
    architectures = [str(a) for a in config.get("architectures") or []]
    for family, spec in FAMILIES.items():
        if model_type in spec.model_types or set(architectures) & set(spec.architectures):
            return family
    # Fine-tunes rename things; the custom-code families are still known by name.
    names = " ".join([model_type, *architectures]).lower()
    for family in (Family.MAIRA2, Family.CHEXAGENT):
        if family.value in names:
            return family
    known = "; ".join(f"{spec.name}: {', '.join(spec.architectures)}" for spec in FAMILIES.values())
    raise InputError(
        model_dir,
        f"a {model_type or 'model without model_type'} model ({', '.join(architectures) or 'no architectures'}), "
        f"which cxr generate does not run; it runs cxr's own folders and these families: {known}",
    )


def remote_code_files(model_dir: Path) -> list[str]:
    """The Python files of the folder that its config.json `auto_map` names."""
    auto_map = read_config(model_dir).get("auto_map") or {}
    references = [ref for value in auto_map.values() for ref in _references(value)]
    return sorted({f"{ref.split('--')[-1].split('.')[0]}.py" for ref in references})


def _references(value: object) -> list[str]:
    # auto_map values are "module.Class", or [slow, fast] pairs of them (tokenizers).
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def require_trust(model_dir: Path, family: Family, trust_remote_code: bool) -> None:
    """Refuses a folder whose own code would run, unless the user asked for it.

    Raises:
        InputError: naming the folder, its code files and the flag that allows them.
    """
    if trust_remote_code or family is Family.CXR or not FAMILIES[family].remote_code:
        return
    files = ", ".join(remote_code_files(model_dir)) or "its auto_map"
    raise InputError(
        model_dir,
        f"a {FAMILIES[family].name} folder that runs its own Python code ({files}); cxr runs "
        f"such code only when asked: read those files, then add {TRUST_REMOTE_CODE_FLAG}",
    )
