"""Report writers behind `ReportGenerator`, one per kind of model folder.

`load_backend` reads the folder's config.json (`families.detect_family`) and picks: cxr's own
model (`cxr_model`), a chat-template vision-language model run by transformers (`hf_vlm`) or
by vLLM (`vllm_engine`), or a model with its own code, MAIRA-2 or CheXagent-2
(`remote_code`, only with `--trust-remote-code`). Each family's prompt builder is in
`prompts` (and `remote_code` for the custom-code families).
"""

from __future__ import annotations

from pathlib import Path

from cxr.errors import CxrError
from cxr.inference.backends.base import (
    BackendOptions,
    BatchOutput,
    Engine,
    ReportBackend,
    StudyLabels,
    StudyOutput,
)
from cxr.inference.backends.families import Family, detect_family, require_trust

__all__ = [
    "BackendOptions",
    "BatchOutput",
    "Engine",
    "Family",
    "ReportBackend",
    "StudyLabels",
    "StudyOutput",
    "detect_family",
    "load_backend",
]


def load_backend(model_dir: Path, options: BackendOptions) -> ReportBackend:
    """The backend that runs the model in `model_dir` (a local folder).

    Raises:
        InputError: not a model folder, a family cxr does not run, or a folder with its own
            code without `options.trust_remote_code`.
        CxrError: an engine that cannot run this folder.
    """
    family = detect_family(model_dir)
    require_trust(model_dir, family, options.trust_remote_code)
    engine = Engine(options.engine)
    if family is Family.CXR:
        if engine is not Engine.TRANSFORMERS:
            raise CxrError(
                f"--engine {engine.value} runs Hugging Face models; {model_dir} is cxr's own"
            )
        from cxr.inference.backends.cxr_model import CxrModelBackend

        return CxrModelBackend(model_dir, options)
    if engine is Engine.VLLM:
        from cxr.inference.backends.vllm_engine import VllmBackend

        return VllmBackend(model_dir, family, options)
    if family is Family.MAIRA2:
        from cxr.inference.backends.remote_code import Maira2Backend

        return Maira2Backend(model_dir, options)
    if family is Family.CHEXAGENT:
        from cxr.inference.backends.remote_code import CheXagentBackend

        return CheXagentBackend(model_dir, options)
    from cxr.inference.backends.hf_vlm import ChatTemplateBackend

    return ChatTemplateBackend(model_dir, family, options)
