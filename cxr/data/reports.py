"""Report text conventions: the prompt the model reads and the report text it writes.

The model writes one text, ``FINDINGS: ... IMPRESSION: ...``; `split_report` turns it back into
the two sections. The prompt lists the clinical context that is known, one labelled line each.
"""

from __future__ import annotations

from cxr.data.datasets.sections import split_sections
from cxr.types import Prompt

FINDINGS_HEADER = "FINDINGS:"
IMPRESSION_HEADER = "IMPRESSION:"

_PROMPT_FIELDS = (
    ("INDICATION", "indication"),
    ("TECHNIQUE", "technique"),
    ("COMPARISON", "comparison"),
    ("PRIOR REPORT", "prior_report"),
)


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
    """(findings, impression) from a generated text; text without headers counts as findings.

    The same sectioning as for free-text reports of datasets (cxr.data.datasets.sections).
    """
    sections = split_sections(text)
    return sections.findings, sections.impression
