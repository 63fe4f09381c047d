"""Free-text radiology reports split into indication, technique, comparison, findings, impression.

Reports such as MIMIC-CXR's `s50414267.txt` are free text with upper-case headers
(``INDICATION:``, ``FINDINGS:``, ``IMPRESSION:``, ...), sometimes with the header on its own
line, sometimes inline. A known header (or one of its aliases) opens a section wherever it
stands, when written in capitals and followed by a colon. An unknown capitalised header at the
start of a line (``LINES/TUBES:``) is a sub-heading of the section it is in, or, before any
known section, starts text that belongs nowhere. A report without a findings or an impression
header keeps its last unlabelled paragraph as findings, which is where such reports put them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import Enum


class Section(str, Enum):
    """Where a header's text goes."""

    INDICATION = "indication"
    TECHNIQUE = "technique"
    COMPARISON = "comparison"
    FINDINGS = "findings"
    IMPRESSION = "impression"
    OTHER = "other"


# Header text (upper case, single spaces) -> section. "OTHER" headers end the section before.
HEADER_SECTIONS: dict[str, Section] = {
    **dict.fromkeys(
        ("INDICATION", "INDICATIONS", "HISTORY", "CLINICAL HISTORY", "CLINICAL INDICATION",
         "CLINICAL INFORMATION", "CLINICAL DATA", "REASON FOR EXAM", "REASON FOR EXAMINATION",
         "REASON FOR STUDY", "REASON FOR THE EXAM"),
        Section.INDICATION,
    ),
    **dict.fromkeys(("TECHNIQUE", "TECHNIQUES"), Section.TECHNIQUE),
    **dict.fromkeys(("COMPARISON", "COMPARISONS", "PRIOR STUDIES", "PRIOR STUDY"), Section.COMPARISON),
    **dict.fromkeys(
        ("FINDINGS", "FINDING", "FINDINGS AND IMPRESSION", "FINDINGS/IMPRESSION",
         "FINDINGS AND IMPRESSIONS"),
        Section.FINDINGS,
    ),
    **dict.fromkeys(
        ("IMPRESSION", "IMPRESSIONS", "CONCLUSION", "CONCLUSIONS", "SUMMARY", "OPINION"),
        Section.IMPRESSION,
    ),
    **dict.fromkeys(
        ("EXAMINATION", "EXAM", "PROCEDURE", "WET READ", "NOTIFICATION", "NOTIFICATIONS",
         "RECOMMENDATION", "RECOMMENDATIONS", "RECOMMENDATION(S)", "ADDENDUM", "FINAL REPORT"),
        Section.OTHER,
    ),
}  # fmt: skip

_KNOWN = "|".join(
    re.escape(h).replace(r"\ ", r"\s+") for h in sorted(HEADER_SECTIONS, key=len, reverse=True)
)
# A known header anywhere (capitals, colon); or any capitalised header at the start of a line.
_HEADER = re.compile(
    rf"(?<![A-Za-z])(?P<known>{_KNOWN})\s*:"
    rf"|^[ \t]*(?!(?:{_KNOWN})\s*:)(?P<unknown>[A-Z][A-Z /&(),-]{{1,40}}[A-Z)])[ \t]*:",
    re.MULTILINE,
)
_FINAL_REPORT = re.compile(r"^\s*FINAL REPORT\s*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass
class ReportSections:
    """The sections of one report; a section the report lacks is empty."""

    indication: str = ""
    technique: str = ""
    comparison: str = ""
    findings: str = ""
    impression: str = ""

    def as_row(self) -> dict[str, str]:
        """The report row `studies_from_index` reads (keys as in reports.jsonl)."""
        return asdict(self)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _label(header: str) -> str:
    return " ".join(header.upper().split())


def split_sections(text: str) -> ReportSections:
    """The sections of a free-text report; see the module docstring for the rules."""
    text = _FINAL_REPORT.sub("\n", text)
    parts: dict[Section, list[str]] = {section: [] for section in Section}
    unlabelled: list[str] = []
    current: Section | None = None
    position = 0
    for match in _HEADER.finditer(text):
        body = text[position : match.start()]
        known = match.group("known")
        if known is None and current in (Section.FINDINGS, Section.IMPRESSION):
            continue  # a sub-heading inside findings or impression stays part of it
        _append(parts, unlabelled, current, body)
        current = HEADER_SECTIONS[_label(known)] if known else Section.OTHER
        position = match.end()
    _append(parts, unlabelled, current, text[position:])
    sections = ReportSections(
        **{s.value: _clean(" ".join(parts[s])) for s in Section if s is not Section.OTHER}
    )
    if not sections.findings and not sections.impression and unlabelled:
        paragraphs = [p for p in _PARAGRAPH_BREAK.split("\n\n".join(unlabelled)) if p.strip()]
        sections.findings = _clean(paragraphs[-1]) if paragraphs else ""
    return sections


def _append(
    parts: dict[Section, list[str]], unlabelled: list[str], section: Section | None, body: str
) -> None:
    if not body.strip():
        return
    if section is None:
        unlabelled.append(body)
    elif section in (Section.FINDINGS, Section.IMPRESSION):
        parts[section].append(body)
    else:
        # Context sections are one paragraph long; what follows a blank line is unlabelled.
        first, *rest = _PARAGRAPH_BREAK.split(body.strip(), maxsplit=1)
        parts[section].append(first)
        unlabelled.extend(rest)
