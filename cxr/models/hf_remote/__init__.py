"""The code a saved model folder carries for Hugging Face's trust_remote_code loading.

`configuration_cxr.py` and `modeling_cxr.py` are copied verbatim into every folder
`ReportModel.save_pretrained` writes; config.json's `auto_map` names their classes, so
`AutoConfig` / `AutoModel.from_pretrained(folder, trust_remote_code=True)` load the folder.

Importing this package also registers the config with `AutoConfig`: transformers 5's
`AutoTokenizer` reads config.json first, and without a registered model type a folder with an
`auto_map` makes it ask, on stdin, whether to run the folder's code; registered, cxr's own
tokenizer loading (cxr.data.tokenizer) never asks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import AutoConfig

from cxr.models.hf_remote.configuration_cxr import MODEL_TYPE, CxrReportConfig

REMOTE_CODE_FILES = ("configuration_cxr.py", "modeling_cxr.py")

AutoConfig.register(MODEL_TYPE, CxrReportConfig, exist_ok=True)


def hub_config_fields() -> dict[str, Any]:
    """config.json's Hugging Face keys: model_type, architectures and auto_map."""
    from cxr.models.hf_remote.modeling_cxr import CxrReportModel

    return {
        "model_type": MODEL_TYPE,
        "architectures": [CxrReportModel.__name__],
        "auto_map": {
            "AutoConfig": _class_reference(CxrReportConfig),
            "AutoModel": _class_reference(CxrReportModel),
        },
    }


def write_remote_code(directory: Path) -> None:
    """Copies the files `auto_map` names into `directory`."""
    here = Path(__file__).parent
    for name in REMOTE_CODE_FILES:
        shutil.copyfile(here / name, directory / name)


def _class_reference(cls: type) -> str:
    """`module.Class` as auto_map names a class in a folder's own files."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
