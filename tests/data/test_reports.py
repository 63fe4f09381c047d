"""The prompt text and the report text conventions of cxr/data/reports.py."""

from __future__ import annotations

from cxr.data.reports import build_prompt, join_report, split_report
from cxr.types import Prompt


def test_prompt_lists_known_fields_only() -> None:
    prompt = build_prompt(Prompt(indication="Cough.", comparison="", prior_report="No  effusion."))
    assert prompt == "INDICATION: Cough.\nPRIOR REPORT: No effusion."
    assert build_prompt(Prompt()) == ""


def test_report_round_trips_through_its_sections() -> None:
    text = join_report("Small left effusion.", "1. Effusion. 2. No pneumothorax.")
    assert text == "FINDINGS: Small left effusion.\nIMPRESSION: 1. Effusion. 2. No pneumothorax."
    assert split_report(text) == ("Small left effusion.", "1. Effusion. 2. No pneumothorax.")
    assert join_report(None, None) is None


def test_generated_text_without_headers_counts_as_findings() -> None:
    assert split_report("Lungs are clear.") == ("Lungs are clear.", "")
    assert split_report("IMPRESSION: Normal.") == ("", "Normal.")
