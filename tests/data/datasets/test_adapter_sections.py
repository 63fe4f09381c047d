"""Report sectioning: real IU reports rewritten as free text, and MIMIC-style layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr.data.datasets.iu_xray import read_open_i_xml
from cxr.data.datasets.sections import ReportSections, split_sections

ORDER = ("comparison", "indication", "findings", "impression")


@pytest.fixture(scope="module")
def iu_reports(shared_data: Path) -> list[dict[str, str]]:
    paths = sorted((shared_data / "iu-xray-reports" / "openi-xml-sample").glob("*.xml"))
    return [read_open_i_xml(path).sections for path in paths]


def _inline(sections: dict[str, str]) -> str:
    return " ".join(f"{name.upper()}: {sections[name]}" for name in ORDER if sections.get(name))


def _mimic_layout(sections: dict[str, str]) -> str:
    blocks = [f" {name.upper()}:\n \n {sections[name]}\n" for name in ORDER if sections.get(name)]
    return "                                 FINAL REPORT\n" + "\n".join(blocks)


@pytest.mark.parametrize("layout", [_inline, _mimic_layout], ids=["inline", "header-lines"])
def test_findings_and_impression_recovered_from_every_real_iu_report(
    iu_reports: list[dict[str, str]], layout: object
) -> None:
    assert len(iu_reports) == 989
    with_findings = with_impression = 0
    for sections in iu_reports:
        parsed = split_sections(layout(sections))  # type: ignore[operator]
        for name in ("comparison", "findings", "impression"):
            assert getattr(parsed, name) == sections.get(name, ""), (name, sections)
        # Two XML indications repeat their own label ("INDICATION: INDICATION: ..."); the text
        # after the repeated label is what stays.
        assert (
            parsed.indication and parsed.indication in sections["indication"]
        ) or not sections.get("indication")
        with_findings += bool(sections.get("findings"))
        with_impression += bool(sections.get("impression"))
    assert with_findings > 600 and with_impression > 900


def test_mimic_report_sections_and_sub_headings() -> None:
    text = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with new onset ascites  // eval for infection

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  None.

 FINDINGS:

 No focal consolidation.
 LINES/TUBES:  None.

 IMPRESSION:

 No acute cardiopulmonary process.

 RECOMMENDATION(S):  Follow-up in one year.
"""
    assert split_sections(text) == ReportSections(
        indication="___F with new onset ascites // eval for infection",
        technique="Chest PA and lateral",
        comparison="None.",
        findings="No focal consolidation. LINES/TUBES: None.",
        impression="No acute cardiopulmonary process.",
    )


def test_report_without_findings_header_keeps_its_last_paragraph() -> None:
    text = " HISTORY:  Cough.\n\n PA and lateral views of the chest.\n\n The lungs are clear.\n"
    sections = split_sections(text)
    assert sections.indication == "Cough."
    assert sections.findings == "The lungs are clear."
    assert sections.impression == ""


def test_lower_case_words_before_a_colon_are_not_headers() -> None:
    sections = split_sections(
        "FINDINGS: Compared with the prior, impression: stable. IMPRESSION: Stable."
    )
    assert sections.findings == "Compared with the prior, impression: stable."
    assert sections.impression == "Stable."
