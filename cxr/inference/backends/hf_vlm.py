"""Hugging Face image-text-to-text models as report writers (the transformers engine).

`PictureBackend` is what every vision-language backend shares: studies read into pictures
by DataLoader workers, batch by batch, a record for each unreadable image, and the time per
study. `ChatTemplateBackend` runs the chat families (Gemma 3 / MedGemma, Qwen2.5-VL, Qwen3-VL,
LLaVA): `AutoProcessor` and `AutoModelForImageTextToText` from the local folder only, each
batch rendered by the processor's chat template, left-padded, and decoded in one `generate`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import GenerationConfig

from cxr.errors import InputError
from cxr.inference.backends.base import (
    BackendOptions,
    BatchOutput,
    StudyOutput,
    image_errors,
    resolve_folder_generation_config,
)
from cxr.inference.backends.families import FAMILIES, Family
from cxr.inference.backends.images import PictureDataset, StudyPictures, collate_pictures
from cxr.inference.backends.prompts import CHAT_PROMPTS, ChatPrompt, read_answer
from cxr.types import IMAGE_SLOTS, Study

log = logging.getLogger(__name__)


class PictureBackend:
    """Batches of studies as pictures; subclasses write the reports of each batch."""

    # Per-label tube/line thresholds: none, these models give no tube/line values.
    tube_line_thresholds: np.ndarray | None = None

    def __init__(self, options: BackendOptions, slots: Sequence[str]) -> None:
        self.options = options
        self.slots = tuple(slots)
        if options.cache_dir is not None:
            log.info("--cache-dir is not used: this model's processor resizes the images itself")

    def load_model(
        self,
        auto_class: Any,
        model_dir: Path,
        family: Family,
        trust_remote_code: bool,
        errors: tuple[type[Exception], ...],
    ) -> None:
        """Loads the folder's model with `auto_class` (local files only) onto the options'
        device as `self.model`, and its decoding settings as `self.generation_config`: cxr's
        defaults, then the folder's, then the options given.

        Raises:
            InputError: loading failed with one of `errors`.
        """
        from cxr.models.report_model import default_generation_config

        self.device = torch.device(self.options.device)
        try:
            model: Any = auto_class.from_pretrained(
                model_dir,
                local_files_only=True,
                trust_remote_code=trust_remote_code,
                dtype=torch_dtype(self.device),
            )
        except errors as error:
            raise load_failure(model_dir, f"{FAMILIES[family].name} model", error) from error
        self.model: Any = model.to(self.device).eval()
        self.generation_config: GenerationConfig = resolve_folder_generation_config(
            default_generation_config(),
            self.model.generation_config,
            self.options.generation_config,
        )

    def write_reports(self, items: list[StudyPictures]) -> list[str]:
        """The report texts of studies that each have a frontal picture, in order."""
        raise NotImplementedError

    def batches(self, studies: Sequence[Study]) -> Iterator[BatchOutput]:
        loader = DataLoader(
            PictureDataset(studies, self.slots),
            batch_size=self.options.batch_size,
            num_workers=self.options.num_workers,
            collate_fn=collate_pictures,
        )
        for items in loader:
            errors = [
                record
                for item in items
                for record in image_errors(
                    item.study.study_id, item.errors, "frontal" in item.pictures
                )
            ]
            usable = [item for item in items if "frontal" in item.pictures]
            started = time.perf_counter()
            texts = self.write_reports(usable) if usable else []
            seconds = (time.perf_counter() - started) / max(1, len(usable))
            outputs = [
                StudyOutput(
                    item.study.study_id,
                    read_answer(text),
                    {slot: slot in item.pictures for slot in IMAGE_SLOTS},
                )
                for item, text in zip(usable, texts, strict=True)
            ]
            yield BatchOutput(outputs, errors, seconds)


def torch_dtype(device: torch.device) -> Any:
    """float32 on a CPU (half precision is slow there); the folder's own dtype elsewhere."""
    return torch.float32 if device.type == "cpu" else "auto"


def load_failure(model_dir: Path, what: str, error: Exception) -> InputError:
    return InputError(model_dir, f"cannot load the {what} of this folder: {error}")


class ChatTemplateBackend(PictureBackend):
    """A chat-template vision-language model run by transformers (see the module docstring).

    Raises:
        InputError: the folder's processor or model cannot be loaded from it.
    """

    def __init__(self, model_dir: Path, family: Family, options: BackendOptions) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.prompt: ChatPrompt = CHAT_PROMPTS[family]
        super().__init__(options, self.prompt.slots)
        try:
            self.processor: Any = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            raise load_failure(model_dir, "processor", error) from error
        # Generation continues every row from the same position.
        self.processor.tokenizer.padding_side = "left"
        self.load_model(
            AutoModelForImageTextToText, model_dir, family, False, (OSError, ValueError, KeyError)
        )
        self._fill_token_ids()

    def _fill_token_ids(self) -> None:
        """pad and eos from the tokenizer where the folder's generation config has none."""
        tokenizer = self.processor.tokenizer
        if self.generation_config.eos_token_id is None:
            self.generation_config.eos_token_id = tokenizer.eos_token_id
        if self.generation_config.pad_token_id is None:
            pad = tokenizer.pad_token_id
            self.generation_config.pad_token_id = tokenizer.eos_token_id if pad is None else pad

    def model_inputs(self, items: list[StudyPictures]) -> Any:
        """The batch as the model takes it: chat template, pictures, left padding."""
        conversations = [self.prompt.messages(item) for item in items]
        return self.processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )

    @torch.inference_mode()
    def write_reports(self, items: list[StudyPictures]) -> list[str]:
        inputs = self.model_inputs(items).to(self.device, dtype=self.model.dtype)
        torch.manual_seed(self.options.seed)
        token_ids = self.model.generate(**inputs, generation_config=self.generation_config)
        new_ids = token_ids[:, inputs["input_ids"].shape[1] :]
        return list(self.processor.batch_decode(new_ids, skip_special_tokens=True))
