"""Renders a radiology report from a study's ground truth, with varied phrasing.

Every present finding is stated (sometimes hedged), absent findings are only ever negated
("No pneumothorax."), devices get position statements with measurements, and when a prior
exists, changes are described against it. Positive and negative statements never share a
sentence, so a simple sentence-level reader can recover the truth (the tests do exactly that).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cxr.synth.truth import (
    SIDED_FINDINGS,
    Access,
    Device,
    DeviceTruth,
    Finding,
    FindingTruth,
    Placement,
    Side,
    StudyTruth,
    Variant,
    View,
)


@dataclass(frozen=True)
class Report:
    """The sections of one report, as written to reports.jsonl."""

    study_id: str
    patient_id: str
    study_datetime: str
    prior_study_id: str | None
    indication: str
    technique: str
    comparison: str
    findings: str
    impression: str

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


class _Writer:
    """Picks phrasings with the study's own random generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, *options: str) -> str:
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# --- devices -----------------------------------------------------------------------------


def _ett(w: _Writer, d: DeviceTruth) -> str:
    name = w.pick("endotracheal tube", "ET tube", "the endotracheal tube")
    cm = round(abs(d.tip_to_carina_cm))
    if d.variant is Variant.BRONCHIAL:
        return w.pick(
            f"{name} extends into the right main stem bronchus; recommend withdrawal by "
            f"approximately {cm + 3} cm",
            f"{name} tip is in the right mainstem bronchus, about {cm} cm beyond the carina",
        )
    if d.placement is Placement.ABNORMAL:
        return w.pick(
            f"{name} is high, with the tip approximately {cm} cm above the carina at the "
            "level of the thoracic inlet; recommend advancement",
            f"{name} tip is malpositioned high in the cervical trachea, {cm} cm above the carina",
        )
    if d.placement is Placement.BORDERLINE:
        advice = (
            "could be withdrawn by 1-2 cm"
            if d.variant is Variant.LOW
            else "could be advanced by 1-2 cm"
        )
        return w.pick(
            f"{name} terminates approximately {cm} cm above the carina and {advice}",
            f"{name} tip is {cm} cm above the carina, borderline in position",
        )
    return w.pick(
        f"{name} terminates approximately {cm} cm above the carina",
        f"{name} tip is {cm} cm above the carina, in satisfactory position",
        f"{name} is in standard position, {cm} cm above the carina",
    )


def _ngt(w: _Writer, d: DeviceTruth) -> str:
    name = w.pick("nasogastric tube", "enteric tube", "NG tube")
    if d.placement is Placement.NORMAL:
        return w.pick(
            f"{name} courses below the diaphragm with the tip in the stomach",
            f"{name} tip projects over the stomach",
            f"{name} is in satisfactory position, terminating in the stomach",
        )
    if d.placement is Placement.BORDERLINE:
        return w.pick(
            f"{name} tip is at the gastroesophageal junction; recommend advancement",
            f"{name} terminates near the gastroesophageal junction, with the side port "
            "likely in the distal esophagus",
        )
    if d.placement is Placement.INCOMPLETELY_IMAGED:
        return w.pick(
            f"{name} courses below the diaphragm, with the tip beyond the inferior margin "
            "of the image",
            f"{name} extends below the field of view; its tip is not imaged",
        )
    if d.variant is Variant.COILED:
        return w.pick(
            f"{name} is coiled in the esophagus; recommend repositioning",
            f"{name} is malpositioned, coiled within the esophagus",
        )
    side = (d.side or Side.RIGHT).value
    return w.pick(
        f"{name} is in the airway, with the tip projecting over the {side} lower lobe "
        "bronchus; it should be withdrawn immediately",
        f"{name} has been inadvertently placed into the {side} main bronchus",
    )


def _access(access: Access | None) -> str:
    return (access or Access.RIGHT_IJ).value


def _cvc(w: _Writer, d: DeviceTruth) -> str:
    name = w.pick(
        f"{_access(d.access)} central venous catheter",
        f"{_access(d.access)} central line",
        f"{_access(d.access)} venous catheter",
    )
    if d.placement is Placement.NORMAL:
        where = "at the cavoatrial junction" if d.tip_depth_cm > -1.0 else "in the lower SVC"
        return w.pick(
            f"{name} terminates {where}",
            f"{name} tip projects {where}",
            f"{name} is in satisfactory position with the tip {where}",
        )
    if d.placement is Placement.BORDERLINE:
        if d.variant is Variant.HIGH:
            return w.pick(
                f"{name} terminates in the upper SVC",
                f"{name} tip is high, near the brachiocephalic confluence",
            )
        return w.pick(
            f"{name} tip projects just beyond the cavoatrial junction, in the upper right atrium",
            f"{name} terminates in the upper right atrium",
        )
    if d.variant is Variant.ATRIAL:
        return w.pick(
            f"{name} extends deep into the right atrium; recommend withdrawal",
            f"{name} tip is low, deep within the right atrium",
        )
    vein = "internal jugular vein"
    side = "right" if d.access is Access.RIGHT_SUBCLAVIAN else "left"
    return w.pick(
        f"{name} is misdirected cephalad into the {side} {vein}",
        f"{name} courses superiorly into the {side} {vein}; recommend repositioning",
    )


def _swan(w: _Writer, d: DeviceTruth) -> str:
    side = (d.side or Side.RIGHT).value
    name = w.pick("Swan-Ganz catheter", "pulmonary artery catheter", "Swan-Ganz catheter")
    return w.pick(
        f"{name} tip projects over the {side} pulmonary artery",
        f"{name} terminates in the {side} pulmonary artery",
    )


_DEVICE_NAMES = {
    Device.ETT: ("endotracheal tube", "ET tube"),
    Device.NGT: ("nasogastric tube", "enteric tube"),
    Device.CVC: ("central venous catheter", "central line"),
    Device.SWAN_GANZ: ("Swan-Ganz catheter", "pulmonary artery catheter"),
}


def device_sentences(w: _Writer, study: StudyTruth) -> list[str]:
    """One sentence per present device; removals are stated when a prior had the device."""
    render = {Device.ETT: _ett, Device.NGT: _ngt, Device.CVC: _cvc, Device.SWAN_GANZ: _swan}
    sentences = []
    for device in study.devices:
        text = render[device.device](w, device)
        if study.prior and study.prior.device(device.device) is None and w.chance(0.6):
            text += w.pick(", newly placed since the prior study", " (newly placed)")
        sentences.append(_sentence(text))
    if study.prior:
        for old in study.prior.devices:
            if study.device(old.device) is None:
                name = w.pick(*_DEVICE_NAMES[old.device])
                sentences.append(
                    _sentence(
                        w.pick(f"the {name} has been removed", f"interval removal of the {name}")
                    )
                )
    return sentences


# --- findings ----------------------------------------------------------------------------

_WORSE = ("has increased", "is larger", "has progressed", "has worsened")
_BETTER = ("has decreased", "is smaller", "has improved", "is less prominent")
_SAME = ("is unchanged", "is stable", "is similar to the prior study")


def _trend(w: _Writer, now: int, before: int | None) -> str:
    if before is None:
        return ""
    if before == 0:
        return " " + w.pick(
            "is new", "has developed since the prior study", "is new since the prior"
        )
    if now > before:
        return (
            " " + w.pick(*_WORSE) + w.pick("", " since the prior study", " compared with the prior")
        )
    if now < before:
        return (
            " "
            + w.pick(*_BETTER)
            + w.pick("", " since the prior study", " compared with the prior")
        )
    return " " + w.pick(*_SAME)


def _hedge(w: _Writer, f: FindingTruth) -> str:
    return w.pick("possible ", "probable ", "") if f.severity == 1 else ""


def _prior_level(study: StudyTruth, f: FindingTruth) -> int | None:
    return None if study.prior is None else study.prior.severity(f.finding, f.side)


def _lobe_text(f: FindingTruth) -> str:
    side = (f.side or Side.RIGHT).value
    lobe = f.lobe.value if f.lobe else "lower"
    if lobe == "middle":
        return "right middle lobe"
    return f"{side} {lobe} lobe"


def _finding_sentence(w: _Writer, study: StudyTruth, f: FindingTruth) -> str | None:
    """The positive statement of one present finding, with its change against the prior."""
    trend = _trend(w, f.severity, _prior_level(study, f))
    word, side = f.severity_word, f.side.value if f.side else ""
    if f.finding is Finding.PLEURAL_EFFUSION:
        return _sentence(f"{_hedge(w, f)}{word} {side} pleural effusion{trend}")
    if f.finding is Finding.CONSOLIDATION:
        # Each phrasing names both the consolidation and the opacity it is, so that a reader
        # (and the offline labeler) finds Consolidation and Lung Opacity in every one of them
        # (cxr.synth.observations).
        noun = w.pick(
            "consolidative opacity",
            "airspace opacity with consolidation",
            "consolidative airspace opacity",
        )
        word = w.pick(
            *{1: ("patchy", "mild"), 2: ("moderate", "focal"), 3: ("extensive", "dense", "severe")}[
                f.severity
            ]
        )
        pneumonia = study.severity(Finding.PNEUMONIA, f.side) > 0
        tail = (
            w.pick(", consistent with pneumonia,", ", concerning for pneumonia,")
            if pneumonia
            else ""
        )
        return _sentence(f"{word} {_lobe_text(f)} {noun}{tail}{trend}")
    if f.finding is Finding.EDEMA:
        noun = (
            w.pick("pulmonary edema", "interstitial pulmonary edema")
            if f.severity < 3
            else w.pick("pulmonary edema", "alveolar pulmonary edema")
        )
        return _sentence(f"{_hedge(w, f)}{word} {noun}{trend}")
    if f.finding is Finding.PNEUMOTHORAX:
        return _sentence(f"{word} {side} pneumothorax{trend}")
    if f.finding is Finding.ATELECTASIS:
        noun = w.pick(
            f"{side} basilar atelectasis",
            f"atelectasis at the {side} lung base",
            f"plate-like atelectasis in the {side} lower zone",
        )
        return _sentence(f"{word} {noun}{trend}")
    if f.finding is Finding.CARDIOMEGALY:
        adverb = {1: "mildly", 2: "moderately", 3: "severely"}[f.severity]
        text = w.pick(
            f"the heart is {adverb} enlarged",
            f"{word} cardiomegaly",
            f"the cardiac silhouette is {adverb} enlarged",
        )
        before = _prior_level(study, f)
        if before is not None and before > 0:
            text += (
                w.pick(", unchanged", ", stable")
                if before == f.severity
                else (
                    ", increased since the prior study"
                    if f.severity > before
                    else ", decreased since the prior study"
                )
            )
        return _sentence(text)
    return None  # pneumonia is stated with its consolidation


_NEGATIONS: dict[Finding, tuple[str, ...]] = {
    Finding.PLEURAL_EFFUSION: ("no pleural effusion", "no pleural effusions are seen"),
    Finding.CONSOLIDATION: ("no focal consolidation", "no consolidation"),
    Finding.EDEMA: ("no pulmonary edema", "there is no pulmonary edema"),
    Finding.PNEUMOTHORAX: ("no pneumothorax", "there is no pneumothorax"),
    Finding.ATELECTASIS: ("no atelectasis",),
    Finding.CARDIOMEGALY: (
        "heart size is normal",
        "the cardiomediastinal silhouette is normal",
        "no cardiomegaly",
    ),
}

_RESOLVED: dict[Finding, str] = {
    Finding.PLEURAL_EFFUSION: "pleural effusion",
    Finding.CONSOLIDATION: "consolidation",
    Finding.EDEMA: "pulmonary edema",
    Finding.PNEUMOTHORAX: "pneumothorax",
    Finding.ATELECTASIS: "atelectasis",
}


def _absent_sentences(w: _Writer, study: StudyTruth) -> list[str]:
    """Negations of absent findings; resolutions of findings the prior had."""
    lung = (Finding.CONSOLIDATION, Finding.EDEMA, Finding.ATELECTASIS)
    clear = all(study.severity(f) == 0 for f in lung) and w.chance(0.5)
    sentences = (
        [_sentence(w.pick("the lungs are clear", "lungs are clear without focal consolidation"))]
        if clear
        else []
    )
    for finding in _NEGATIONS:
        resolved = _resolutions(w, study, finding)
        sentences.extend(resolved)
        if study.severity(finding) > 0 or resolved:
            continue
        if finding is Finding.CARDIOMEGALY or (not (clear and finding in lung) and w.chance(0.7)):
            sentences.append(_sentence(w.pick(*_NEGATIONS[finding])))
    return sentences


def _resolutions(w: _Writer, study: StudyTruth, finding: Finding) -> list[str]:
    """ "Previously seen left pleural effusion has resolved." for each side that cleared."""
    if study.prior is None or finding not in _RESOLVED:
        return []
    sides: list[Side | None] = list(Side) if finding in SIDED_FINDINGS else [None]
    sentences = []
    for side in sides:
        if study.prior.severity(finding, side) == 0 or study.severity(finding, side) > 0:
            continue
        noun = _RESOLVED[finding]
        where = f"{side.value} " if side else ""
        if finding is Finding.CONSOLIDATION:
            before = next(
                f for f in study.prior.findings if f.finding is finding and f.side is side
            )
            where = _lobe_text(before) + " "
            if study.prior.severity(Finding.PNEUMONIA, side):
                noun = "consolidation due to pneumonia"
        sentences.append(
            _sentence(
                w.pick(
                    f"previously seen {where}{noun} has resolved",
                    f"interval resolution of the {where}{noun}",
                    f"no residual {where}{noun}",
                )
            )
        )
    return sentences


def finding_sentences(w: _Writer, study: StudyTruth) -> list[str]:
    sentences = [s for f in study.findings if (s := _finding_sentence(w, study, f))]
    return sentences + _absent_sentences(w, study)


# --- sections ----------------------------------------------------------------------------


def technique(w: _Writer, study: StudyTruth) -> str:
    view = study.frontal.view
    if study.lateral is not None:
        return w.pick(
            f"{view.value} and lateral views of the chest.",
            f"Chest, {view.value} and lateral.",
            f"Two views of the chest ({view.value} and lateral).",
        )
    if view is View.AP:
        return w.pick(
            "Single portable AP view of the chest.",
            "Portable AP chest radiograph.",
            "AP view of the chest.",
        )
    return w.pick(
        "Single PA view of the chest.", "PA chest radiograph.", "Frontal view of the chest."
    )


def comparison(w: _Writer, study: StudyTruth) -> str:
    if study.prior is None:
        return w.pick("None.", "No prior studies available.", "None available.")
    when = study.prior.study_datetime
    return w.pick(
        f"Chest radiograph of {when:%B %d, %Y}.",
        f"Prior study from {when:%Y-%m-%d}.",
        f"{when:%m/%d/%Y}.",
    )


def impression(w: _Writer, study: StudyTruth, devices: list[str]) -> str:
    """Abnormal devices first, then present findings with their change, or a normal statement."""
    lines = [
        s
        for s, d in zip(devices, study.devices, strict=False)
        if d.placement in (Placement.ABNORMAL, Placement.BORDERLINE)
    ]
    for f in study.findings:
        if f.finding is Finding.PNEUMONIA:
            continue
        text = _finding_sentence(w, study, f)
        if text:
            lines.append(text)
    if not lines:
        normal = w.pick(
            "No acute cardiopulmonary process.",
            "No acute cardiopulmonary abnormality.",
            "Normal chest radiograph.",
        )
        if study.devices:
            normal = (
                w.pick("Support devices in satisfactory position. ", "Lines and tubes as above. ")
                + normal
            )
        return normal
    if len(lines) == 1:
        return lines[0]
    return " ".join(f"{k}. {line}" for k, line in enumerate(lines, start=1))


def render_report(study: StudyTruth, rng: np.random.Generator) -> Report:
    """The report of one study."""
    w = _Writer(rng)
    devices = device_sentences(w, study)
    present_devices = devices[: len(study.devices)]
    body = devices + finding_sentences(w, study)
    return Report(
        study_id=study.study_uid,
        patient_id=study.patient_id,
        study_datetime=study.study_datetime.isoformat(),
        prior_study_id=study.prior_study_id,
        indication=study.indication,
        technique=technique(w, study),
        comparison=comparison(w, study),
        findings=" ".join(body),
        impression=impression(w, study, present_devices),
    )
