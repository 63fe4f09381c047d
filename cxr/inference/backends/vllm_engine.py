"""The vLLM engine (`--engine vllm`): the chat families on a CUDA GPU, batched by vLLM.

vLLM pins its own torch and transformers (vllm 0.33.0: torch==2.14.0, transformers<5.21),
which cannot live beside cxr's pins (torch 2.14.1, transformers 5.24), so it is installed in a
separate environment: `make vllm-env` builds `.venv-vllm` from requirements-vllm.txt, and
`.venv-vllm/bin/cxr generate ... --engine vllm` runs there. vllm is imported only when this
engine is chosen.

The prompt is the family's own (`prompts.CHAT_PROMPTS`), rendered by the folder's processor
chat template as text with image placeholders; vLLM takes the pictures beside it. Decoding
follows the same resolved GenerationConfig as the transformers engine, translated into vLLM's
SamplingParams: greedy is temperature 0; beam search is refused (vLLM runs it through another
API). Only the families vLLM supports natively run here; custom-code folders never do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import GenerationConfig

from cxr.errors import CxrError
from cxr.inference.backends.base import BackendOptions, resolve_folder_generation_config
from cxr.inference.backends.families import FAMILIES, Family
from cxr.inference.backends.hf_vlm import PictureBackend, load_failure
from cxr.inference.backends.images import StudyPictures
from cxr.inference.backends.prompts import CHAT_PROMPTS, ChatPrompt

VLLM_FAMILIES = (Family.GEMMA3, Family.QWEN2_5_VL, Family.QWEN3_VL, Family.LLAVA)
VLLM_ENVIRONMENT = (
    "vLLM pins its own torch and transformers, so it lives in its own environment: build it "
    "with `make vllm-env` (requirements-vllm.txt, into .venv-vllm) on a machine with a CUDA "
    "GPU and run `.venv-vllm/bin/cxr generate ... --engine vllm` there"
)


def import_vllm() -> Any:
    """The vllm module, or a CxrError saying where it is installed."""
    try:
        import vllm
    except ImportError as error:
        raise CxrError(
            f"--engine vllm: vllm is not installed here ({error}). {VLLM_ENVIRONMENT}"
        ) from error
    return vllm


def sampling_parameters(vllm: Any, generation_config: GenerationConfig, seed: int) -> Any:
    """vLLM's SamplingParams for a resolved GenerationConfig.

    Raises:
        CxrError: beam search, which vLLM does not run through `LLM.generate`.
    """
    if (generation_config.num_beams or 1) > 1:
        raise CxrError("--engine vllm decodes greedily or by sampling; use --num-beams 1")
    sampling = bool(generation_config.do_sample)
    return vllm.SamplingParams(
        max_tokens=generation_config.max_new_tokens,
        temperature=(generation_config.temperature or 1.0) if sampling else 0.0,
        top_p=(generation_config.top_p or 1.0) if sampling else 1.0,
        top_k=(generation_config.top_k or 0) if sampling else 0,
        repetition_penalty=generation_config.repetition_penalty or 1.0,
        seed=seed,
    )


class VllmBackend(PictureBackend):
    """A chat-family folder run by vLLM (see the module docstring)."""

    def __init__(self, model_dir: Path, family: Family, options: BackendOptions) -> None:
        if family not in VLLM_FAMILIES:
            names = ", ".join(FAMILIES[f].name for f in VLLM_FAMILIES)
            raise CxrError(f"--engine vllm runs {names}; {model_dir} is {FAMILIES[family].name}")
        vllm = import_vllm()
        from transformers import AutoProcessor

        from cxr.models.report_model import default_generation_config

        self.prompt: ChatPrompt = CHAT_PROMPTS[family]
        super().__init__(options, self.prompt.slots)
        try:
            self.processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            raise load_failure(model_dir, "processor", error) from error
        try:
            folder_config = GenerationConfig.from_pretrained(model_dir, local_files_only=True)
        except OSError:  # no generation_config.json: cxr's defaults
            folder_config = GenerationConfig()
        self.generation_config: GenerationConfig = resolve_folder_generation_config(
            default_generation_config(), folder_config, options.generation_config
        )
        self.sampling = sampling_parameters(vllm, self.generation_config, options.seed)
        self.llm = vllm.LLM(
            model=str(model_dir),
            trust_remote_code=False,
            seed=options.seed,
            limit_mm_per_prompt={"image": len(self.slots)},
            max_num_seqs=options.batch_size,
        )

    def write_reports(self, items: list[StudyPictures]) -> list[str]:
        requests = [
            {
                "prompt": self.processor.apply_chat_template(
                    self.prompt.messages(item, with_pictures=False),
                    add_generation_prompt=True,
                    tokenize=False,
                ),
                "multi_modal_data": {"image": [item.pictures[slot] for slot in item.slots]},
            }
            for item in items
        ]
        results = self.llm.generate(requests, self.sampling, use_tqdm=False)
        return [result.outputs[0].text for result in results]
