"""One prompt builder per model family: what each model reads, in the form it was trained on.

The chat families (Gemma 3 / MedGemma, Qwen2.5-VL, Qwen3-VL, LLaVA) get a conversation for
their processor's own chat template (`processor.apply_chat_template`): the study's pictures
and one instruction, which says which picture is which and gives the clinical context known
(indication, technique, comparison, prior report; `cxr.data.reports.build_prompt`, the same
lines cxr's own models read). MAIRA-2 takes the study's parts as separate arguments of its
processor; see `cxr.inference.backends.remote_code`.

Each builder feeds the image slots its family was trained with: MedGemma frontal and lateral,
the Qwen families every slot (frontal, lateral, prior frontal), LLaVA-1.5 style models one
image, the frontal. A prior study always reaches the model through its report when known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cxr.data.reports import FINDINGS_HEADER, IMPRESSION_HEADER, build_prompt
from cxr.inference.backends.families import Family
from cxr.inference.backends.images import StudyPictures
from cxr.types import IMAGE_SLOTS, Prompt

REPORT_INSTRUCTION = (
    "Write the radiology report of this chest X-ray study, with a FINDINGS: section and an "
    "IMPRESSION: section."
)

# A section header as chat models write it at the start of a line: any case, Markdown
# emphasis or heading marks, with or without the colon of a heading on its own line.
_ANSWER_HEADER = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?[*_]*[ \t]*(?P<name>findings|impression)[ \t]*[*_]*[ \t]*"
    r"(?::[*_]*|(?=[ \t]*$))",
    re.IGNORECASE | re.MULTILINE,
)
_HEADERS = {"findings": FINDINGS_HEADER, "impression": IMPRESSION_HEADER}


def read_answer(text: str) -> str:
    """A model's answer with its section headers written as cxr's (``FINDINGS:``,
    ``IMPRESSION:``), so that `cxr.data.reports.split_report` finds them: chat models write
    ``**Findings:**`` or ``## Impression`` where the instruction said ``FINDINGS:``."""
    return _ANSWER_HEADER.sub(lambda m: _HEADERS[m.group("name").lower()], text).strip()


VIEW_NAMES = {
    "frontal": "the current frontal view",
    "lateral": "the current lateral view",
    "prior_frontal": "the frontal view of the prior study",
}


def instruction(prompt: Prompt, slots: list[str]) -> str:
    """The instruction: the task, which picture is which (when there are several), then the
    known clinical context, one labelled line each."""
    lines = [REPORT_INSTRUCTION]
    if len(slots) > 1:
        lines.append("The images are, in order: " + "; ".join(VIEW_NAMES[s] for s in slots) + ".")
    context = build_prompt(prompt)
    if context:
        lines.append(context)
    return "\n".join(lines)


@dataclass(frozen=True)
class ChatPrompt:
    """A chat family's prompt: which slots it takes, its system text, where the text goes."""

    slots: tuple[str, ...]
    system: str | None = None
    text_first: bool = False

    def messages(self, item: StudyPictures, with_pictures: bool = True) -> list[dict[str, Any]]:
        """The conversation of one study. With `with_pictures` the image entries hold the
        pictures (for the processor to load); without, only their places (vLLM takes the
        pictures separately)."""
        images: list[dict[str, Any]] = [
            {"type": "image", "image": item.pictures[slot]} if with_pictures else {"type": "image"}
            for slot in item.slots
        ]
        text = [{"type": "text", "text": instruction(item.study.prompt, item.slots)}]
        conversation: list[dict[str, Any]] = []
        if self.system:
            conversation.append(
                {"role": "system", "content": [{"type": "text", "text": self.system}]}
            )
        content = text + images if self.text_first else images + text
        conversation.append({"role": "user", "content": content})
        return conversation


# MedGemma's model card asks for a system turn naming the role and puts the text before the
# image; Qwen's templates add their own default system turn where needed.
CHAT_PROMPTS: dict[Family, ChatPrompt] = {
    Family.GEMMA3: ChatPrompt(
        ("frontal", "lateral"), system="You are an expert radiologist.", text_first=True
    ),
    Family.QWEN2_5_VL: ChatPrompt(IMAGE_SLOTS),
    Family.QWEN3_VL: ChatPrompt(IMAGE_SLOTS),
    Family.LLAVA: ChatPrompt(("frontal",)),
}
