"""Report text conventions: the prompt the model reads and the report text it writes.

The model writes one text, ``FINDINGS: ... IMPRESSION: ...``; `split_report` turns it back into
the two sections. The prompt lists the clinical context that is known, one labelled line each.
"""

from __future__ import annotations

import re

from cxr.types import Prompt

FINDINGS_HEADER = "FINDINGS:"
IMPRESSION_HEADER = "IMPRESSION:"

_PROMPT_FIELDS = (
    ("INDICATION", "indication"),
    ("TECHNIQUE", "technique"),
    ("COMPARISON", "comparison"),
    ("PRIOR REPORT", "prior_report"),
)
_SECTION = re.compile(r"\b(FINDINGS|IMPRESSION)\s*:", re.IGNORECASE)


def build_prompt(prompt: Prompt) -> str:
    """The text before the image tokens: the known context fields, one per line."""
    lines = []
    for label, attribute in _PROMPT_FIELDS:
        value = " ".join(getattr(prompt, attribute).split())
        if value:
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def join_report(findings: str | None, impression: str | None) -> str | None:
    """The target text for a study, or None when neither section is known."""
    parts = []
    if findings:
        parts.append(f"{FINDINGS_HEADER} {' '.join(findings.split())}")
    if impression:
        parts.append(f"{IMPRESSION_HEADER} {' '.join(impression.split())}")
    return "\n".join(parts) if parts else None


def split_report(text: str) -> tuple[str, str]:
    """(findings, impression) from a generated text; text without headers counts as findings."""
    sections = {"FINDINGS": "", "IMPRESSION": ""}
    matches = list(_SECTION.finditer(text))
    if not matches:
        return " ".join(text.split()), ""
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = " ".join(text[match.end() : end].split())
        name = match.group(1).upper()
        sections[name] = f"{sections[name]} {body}".strip()
    return sections["FINDINGS"], sections["IMPRESSION"]
