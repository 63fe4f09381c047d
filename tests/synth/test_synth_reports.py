"""Reports state every present finding and device, negate absent ones, and describe change.

The reader below is deliberately independent of cxr.synth.reports: keyword sentences plus
negation cues, the way a simple rule-based labeler would read the text.
"""

from __future__ import annotations

import re

import numpy as np

from cxr.synth import Device, Finding, StudyTruth, render_report

KEYWORDS: dict[Finding, tuple[str, ...]] = {
    Finding.CARDIOMEGALY: ("cardiomegaly", "enlarged"),
    Finding.PLEURAL_EFFUSION: ("effusion",),
    Finding.CONSOLIDATION: ("consolidati", "airspace opacity"),
    Finding.PNEUMONIA: ("pneumonia",),
    Finding.EDEMA: ("edema",),
    Finding.PNEUMOTHORAX: ("pneumothorax",),
    Finding.ATELECTASIS: ("atelectasis",),
}
DEVICE_WORDS: dict[Device, tuple[str, ...]] = {
    Device.ETT: ("endotracheal", "et tube"),
    Device.NGT: ("nasogastric", "enteric", "ng tube"),
    Device.CVC: ("central venous", "central line", "venous catheter"),
    Device.SWAN_GANZ: ("swan-ganz", "pulmonary artery catheter"),
}
NEGATION = re.compile(r"\b(no|without|resolved|resolution|removed|removal|normal|clear)\b")
WORSE = re.compile(r"increase|larger|progress|worse|new\b|developed")
BETTER = re.compile(r"decrease|smaller|improv|less|resol|no residual")


def sentences(text: str) -> list[str]:
    return [s.strip().lower() for s in re.split(r"(?<=[.])\s+", text) if s.strip()]


def mentions(sentence: str, words: tuple[str, ...]) -> bool:
    return any(w in sentence for w in words)


def report_text(study: StudyTruth, seed: int = 0) -> tuple[str, str]:
    report = render_report(study, np.random.default_rng([seed, study.study_index]))
    return report.findings, report.impression


def test_every_present_finding_is_stated_with_its_side(studies: list[StudyTruth]) -> None:
    for study in studies:
        findings, _ = report_text(study)
        positive = [s for s in sentences(findings) if not NEGATION.search(s)]
        for f in study.findings:
            hits = [s for s in positive if mentions(s, KEYWORDS[f.finding])]
            assert hits, (f.key, findings)
            if f.side is not None and f.finding is not Finding.PNEUMONIA:
                assert any(f.side.value in s for s in hits), (f.key, findings)


def test_nothing_absent_is_stated_as_present(studies: list[StudyTruth]) -> None:
    for study in studies:
        findings, impression = report_text(study)
        for sentence in sentences(findings + " " + impression):
            if NEGATION.search(sentence):
                continue
            for finding, words in KEYWORDS.items():
                if mentions(sentence, words):
                    assert study.severity(finding) > 0, (finding, sentence)
            for device, words in DEVICE_WORDS.items():
                if mentions(sentence, words):
                    assert study.device(device) is not None, (device, sentence)


def test_absent_findings_when_mentioned_are_negated(studies: list[StudyTruth]) -> None:
    negated = 0
    for study in studies:
        findings, _ = report_text(study)
        for sentence in sentences(findings):
            for finding, words in KEYWORDS.items():
                if study.severity(finding) == 0 and mentions(sentence, words):
                    assert NEGATION.search(sentence), sentence
                    negated += 1
    assert negated > len(studies)  # negations are common, e.g. "No pneumothorax."


def test_every_consolidation_statement_names_an_opacity(studies: list[StudyTruth]) -> None:
    # The observation labels call a consolidation a Lung Opacity too (cxr.synth.observations);
    # a reader of the report must find both words in each statement of one.
    stated = 0
    for study in studies:
        if study.severity(Finding.CONSOLIDATION) == 0:
            continue
        findings, impression = report_text(study)
        for sentence in sentences(findings + " " + impression):
            if "consolidati" in sentence and not NEGATION.search(sentence):
                assert "opacity" in sentence, sentence
                stated += 1
    assert stated > 100


def test_every_device_has_a_position_statement(studies: list[StudyTruth]) -> None:
    for study in studies:
        findings, _ = report_text(study)
        for device in study.devices:
            assert any(
                mentions(s, DEVICE_WORDS[device.device]) and not NEGATION.search(s)
                for s in sentences(findings)
            ), (device, findings)


def test_ett_measurement_matches_the_truth(studies: list[StudyTruth]) -> None:
    checked = 0
    for study in studies:
        ett = study.device(Device.ETT)
        if ett is None or ett.tip_to_carina_cm < 0:
            continue
        findings, _ = report_text(study)
        numbers = re.findall(r"(\d+) cm above the carina", findings)
        assert numbers and int(numbers[0]) == round(ett.tip_to_carina_cm), findings
        checked += 1
    assert checked > 20


def test_change_statements_agree_with_change_labels(studies: list[StudyTruth]) -> None:
    counted = 0
    for study in studies:
        changes = study.changes()
        if changes is None:
            continue
        findings, _ = report_text(study)
        text = sentences(findings)
        for name, change in changes.items():
            words = KEYWORDS[Finding(name)]
            if change.name == "WORSENING":
                assert any(mentions(s, words) and WORSE.search(s) for s in text), (name, findings)
                counted += 1
            elif change.name == "IMPROVING":
                assert any(mentions(s, words) and BETTER.search(s) for s in text), (name, findings)
                counted += 1
    assert counted > 50


def test_phrasing_varies_and_sections_are_filled(studies: list[StudyTruth]) -> None:
    reports = [render_report(s, np.random.default_rng(i)) for i, s in enumerate(studies)]
    assert all(
        r.indication and r.technique and r.comparison and r.findings and r.impression
        for r in reports
    )
    effusion_phrases = {s for r in reports for s in sentences(r.findings) if "no pleural" in s}
    assert len(effusion_phrases) >= 2
    assert len({r.technique for r in reports}) >= 6
    assert any("possible" in r.findings.lower() for r in reports)
    with_prior = [r for r, s in zip(reports, studies, strict=True) if s.prior]
    assert all(r.comparison not in ("None.", "No prior studies available.") for r in with_prior)
