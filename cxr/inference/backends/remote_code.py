"""Models whose snapshots carry their own Python code: MAIRA-2 and CheXagent-2.

Their code runs only with `--trust-remote-code` (`families.require_trust` refuses the folder
before anything in it is imported). Both are written against the APIs their model cards
document; the real models have not been run here: their weights cannot be downloaded in
cxr's test environment, and their code targets the transformers 4 releases it was written
for, which may not load in transformers 5. The tests run the refusal and the prompt builders,
and MAIRA-2's path end to end against a stand-in folder whose own code has MAIRA-2's
documented interface (a tiny LLaVA under `maira2` classes); CheXagent-2's generation is
untested.

- MAIRA-2 (microsoft/maira-2; `AutoModelForCausalLM` + `AutoProcessor`): the processor's
  `format_and_preprocess_reporting_input(current_frontal, current_lateral, prior_frontal,
  indication, technique, comparison, prior_report, return_tensors="pt", get_grounding=False)`
  builds the prompt from every part of the study, and
  `convert_output_to_plaintext_or_grounded_sequence` reads the answer back. It writes the
  findings section. Its processor formats one study at a time, so studies are generated one
  by one within a batch.
- CheXagent-2 (StanfordAIMI/CheXagent-2-3b; `AutoModelForCausalLM` + `AutoTokenizer`): the
  tokenizer's `from_list_format([{"image": path}, ..., {"text": prompt}])` and a
  `{"from": ..., "value": ...}` conversation through `apply_chat_template`. It reads images
  from files, so the pictures are written as PNG files into a temporary folder first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from cxr.inference.backends.base import BackendOptions
from cxr.inference.backends.families import Family
from cxr.inference.backends.hf_vlm import PictureBackend, load_failure
from cxr.inference.backends.images import StudyPictures
from cxr.inference.backends.prompts import instruction

MAIRA2_SLOTS = ("frontal", "lateral", "prior_frontal")
CHEXAGENT_SLOTS = ("frontal", "lateral")

# Python code of a snapshot fails to load in many ways; these are the ones a foreign folder
# gives (missing files, a class its module lacks, an API transformers 5 removed).
_LOAD_ERRORS = (OSError, ValueError, KeyError, ImportError, AttributeError, TypeError)


def maira2_arguments(item: StudyPictures) -> dict[str, Any]:
    """The keyword arguments of MAIRA-2's `format_and_preprocess_reporting_input` for one
    study: its pictures, and each clinical text or None when unknown."""
    prompt = item.study.prompt
    return {
        "current_frontal": item.pictures["frontal"],
        "current_lateral": item.pictures.get("lateral"),
        "prior_frontal": item.pictures.get("prior_frontal"),
        "indication": prompt.indication or None,
        "technique": prompt.technique or None,
        "comparison": prompt.comparison or None,
        "prior_report": prompt.prior_report or None,
        "return_tensors": "pt",
        "get_grounding": False,
    }


def chexagent_query(item: StudyPictures, paths: list[str]) -> list[dict[str, str]]:
    """CheXagent-2's `from_list_format` items for one study: its image files, then the text."""
    return [
        *({"image": path} for path in paths),
        {"text": instruction(item.study.prompt, item.slots)},
    ]


class RemoteCodeBackend(PictureBackend):
    """Shared loading of a custom-code folder (see the module docstring)."""

    def __init__(
        self, model_dir: Path, family: Family, options: BackendOptions, slots: tuple[str, ...]
    ) -> None:
        from transformers import AutoModelForCausalLM

        super().__init__(options, slots)
        self.load_model(AutoModelForCausalLM, model_dir, family, True, _LOAD_ERRORS)

    def _generate(self, input_ids: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """The new token ids of one study's row."""
        torch.manual_seed(self.options.seed)
        output = self.model.generate(
            input_ids=input_ids.to(self.device),
            **{
                k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                for k, v in inputs.items()
            },
            generation_config=self.generation_config,
        )
        return output[0, input_ids.shape[1] :]


class Maira2Backend(RemoteCodeBackend):
    """MAIRA-2 through its own processor and model code (untested here)."""

    def __init__(self, model_dir: Path, options: BackendOptions) -> None:
        from transformers import AutoProcessor

        try:
            self.processor: Any = AutoProcessor.from_pretrained(
                model_dir, local_files_only=True, trust_remote_code=True
            )
        except _LOAD_ERRORS as error:
            raise load_failure(model_dir, "MAIRA-2 processor", error) from error
        super().__init__(model_dir, Family.MAIRA2, options, MAIRA2_SLOTS)

    @torch.inference_mode()
    def write_reports(self, items: list[StudyPictures]) -> list[str]:
        texts = []
        for item in items:
            inputs = dict(
                self.processor.format_and_preprocess_reporting_input(**maira2_arguments(item))
            )
            new_ids = self._generate(inputs.pop("input_ids"), **inputs)
            decoded = self.processor.decode(new_ids, skip_special_tokens=True).lstrip()
            texts.append(
                str(self.processor.convert_output_to_plaintext_or_grounded_sequence(decoded))
            )
        return texts


class CheXagentBackend(RemoteCodeBackend):
    """CheXagent-2 through its own tokenizer and model code (untested here)."""

    def __init__(self, model_dir: Path, options: BackendOptions) -> None:
        from transformers import AutoTokenizer

        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(
                model_dir, local_files_only=True, trust_remote_code=True
            )
        except _LOAD_ERRORS as error:
            raise load_failure(model_dir, "CheXagent-2 tokenizer", error) from error
        super().__init__(model_dir, Family.CHEXAGENT, options, CHEXAGENT_SLOTS)

    @torch.inference_mode()
    def write_reports(self, items: list[StudyPictures]) -> list[str]:
        texts = []
        with tempfile.TemporaryDirectory(prefix="cxr-chexagent-") as folder:
            for number, item in enumerate(items):
                paths = []
                for slot in item.slots:
                    path = Path(folder) / f"{number}-{slot}.png"
                    item.pictures[slot].save(path)
                    paths.append(str(path))
                query = self.tokenizer.from_list_format(chexagent_query(item, paths))
                conversation = [
                    {"from": "system", "value": "You are a helpful assistant."},
                    {"from": "human", "value": query},
                ]
                input_ids = self.tokenizer.apply_chat_template(
                    conversation, add_generation_prompt=True, return_tensors="pt"
                )
                new_ids = self._generate(input_ids)
                texts.append(self.tokenizer.decode(new_ids, skip_special_tokens=True))
        return texts
