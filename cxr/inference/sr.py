"""One DICOM Comprehensive SR per generated report, so a PACS or viewer can show it.

The SR joins the source study (same StudyInstanceUID, patient and study attributes copied by
highdicom from the first source image) and lists the images it was made from, both in the
CurrentRequestedProcedureEvidenceSequence and in an image library in the content tree.

Content tree (relationship, value type, concept name):

    CONTAINER Diagnostic Imaging Report (LN 18748-4; a CID 7000 document title)
      HAS OBS CONTEXT  TID 1002 observer context: a Device observer named after the model
      CONTAINS CONTAINER Findings (DCM 121070)
        CONTAINS TEXT Finding (DCM 121071) = the model's findings
      CONTAINS CONTAINER Impressions (DCM 121072)
        CONTAINS TEXT Impression (DCM 121073) = the model's impression
      CONTAINS CONTAINER Tubes and lines (99CXR TUBES-LINES)
        CONTAINS CODE <device> = <called status>
          INFERRED FROM NUM Probability of <RANZCR label>, unit UCUM {probability}
        or CONTAINS TEXT <device> = "not assessed" (the model gave no tube/line values)
      CONTAINS CONTAINER Observations (99CXR OBSERVATIONS), one item per CheXpert observation
        CONTAINS CODE <observation> = Present | Absent (SCT; present at OBSERVATION_THRESHOLD)
          INFERRED FROM NUM Probability of presence (99CXR PROB-PRESENT), UCUM {probability}
        or CONTAINS TEXT <observation> = "not assessed" (the findings head gave no probability)
      CONTAINS CONTAINER Comparison to previous studies (DCM 111424)
        CONTAINS UIDREF Study Instance UID (DCM 110180) = the prior study, when assessed
                 (TEXT Prior study identifier (99CXR PRIOR-STUDY) if the id is not a UID)
        CONTAINS CODE <finding> = improving | stable | worsening
          INFERRED FROM NUM Probability of <progression>, unit UCUM {probability}
        or CONTAINS TEXT <finding> = "not assessed" (no prior study, or no call for it)
      CONTAINS CONTAINER Image Library (DCM 111028)
        CONTAINS CONTAINER Image Library Group (DCM 126200)
          CONTAINS IMAGE Source (SCT 260753009), one per source image, frontal first

The Findings and Impressions sections are those of TID 2000 (Basic Diagnostic Imaging Report:
CID 7001 headings holding CID 7002 TEXT items), but the document does not claim TID 2000
because the tube/line, observation and change sections are outside it. The document is marked COMPLETE,
UNVERIFIED and PRELIMINARY: a machine draft that no person has signed.

Codes come from `pydicom.sr.codedict.codes` where the concept exists there. The rest use the
private coding scheme 99CXR (declared in the SR's CodingSchemeIdentificationSequence):

    TUBES-LINES     Tubes and lines              (section)
    OBSERVATIONS    Observations                 (section of the findings head)
    NGT             Nasogastric tube             (device; ETT, CVC and Swan-Ganz are SCT)
    INCOMPLETE-IMG  Incompletely imaged          (status; the others are SCT/DCM)
    ETT-ABNORMAL .. SWAN-GANZ                    (one per RANZCR label, see TUBE_LINE_CODES)
    CONSOLIDATION, PNEUMONIA                     (findings; the others are SCT)
    NO-FINDING .. SUPPORT-DEVICES                (observations not in pydicom's SCT table,
                                                  see OBSERVATION_CODES)
    PROB-PRESENT    Probability of presence      (an observation's probability)
    IMPROVING, STABLE, WORSENING                 (progression values)
    PROB-IMPROVING, PROB-STABLE, PROB-WORSENING  (progression probabilities)
    PRIOR-STUDY     Prior study identifier
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import UID, generate_uid
from pydicom.valuerep import DA, TM

from cxr.errors import InputError
from cxr.inference.outputs import Prediction
from cxr.io import read_dataset
from cxr.types import (
    CHANGE_FINDINGS,
    NOT_ASSESSED,
    OBSERVATION_THRESHOLD,
    OBSERVATIONS,
    TUBE_LINE_DEVICES,
    TUBE_LINE_LABELS,
    Change,
    is_missing,
)

log = logging.getLogger(__name__)

SCHEME = "99CXR"


def _private(value: str, meaning: str) -> Code:
    return Code(value, SCHEME, meaning)


PROBABILITY_UNIT = Code("{probability}", "UCUM", "probability")
TUBES_AND_LINES = _private("TUBES-LINES", "Tubes and lines")
PRIOR_STUDY = _private("PRIOR-STUDY", "Prior study identifier")

DEVICE_CODES: dict[str, Code] = {
    "ETT": codes.SCT.EndotrachealTube,
    "NGT": _private("NGT", "Nasogastric tube"),
    "CVC": codes.SCT.CentralVenousCatheter,
    "Swan Ganz": codes.SCT.SwannGanzCatheter,
}

# Keys are casefolded device statuses (cxr.tube_line.DEVICE_STATUSES).
STATUS_CODES: dict[str, Code] = {
    "absent": codes.SCT.Absent,
    "present": codes.SCT.Present,
    "normal": codes.SCT.Normal,
    "abnormal": codes.SCT.Abnormal,
    "borderline": codes.DCM.Borderline,
    "incompletely imaged": _private("INCOMPLETE-IMG", "Incompletely imaged"),
}

# Code values are at most 16 characters (VR SH), hence a table rather than the label itself.
TUBE_LINE_CODES: dict[str, Code] = {
    label: _private(value, f"Probability of {label}")
    for label, value in zip(
        TUBE_LINE_LABELS,
        (
            "ETT-ABNORMAL",
            "ETT-BORDERLINE",
            "ETT-NORMAL",
            "NGT-ABNORMAL",
            "NGT-BORDERLINE",
            "NGT-INCOMPLETE",
            "NGT-NORMAL",
            "CVC-ABNORMAL",
            "CVC-BORDERLINE",
            "CVC-NORMAL",
            "SWAN-GANZ",
        ),
        strict=True,
    )
}

FINDING_CODES: dict[str, Code] = {
    "consolidation": _private("CONSOLIDATION", "Consolidation"),
    "pleural_effusion": codes.SCT.PleuralEffusion,
    "pneumonia": _private("PNEUMONIA", "Pneumonia"),
    "pneumothorax": codes.SCT.Pneumothorax,
    "edema": codes.SCT.PulmonaryEdema,
}

# The findings head's observations, keyed by OBSERVATIONS names. Those that are change findings
# too are the same concepts, so they share FINDING_CODES; the SR's sections tell them apart.
OBSERVATION_CODES: dict[str, Code] = {
    "No Finding": _private("NO-FINDING", "No finding"),
    "Enlarged Cardiomediastinum": _private("ENLARGED-CM", "Enlarged cardiomediastinum"),
    "Cardiomegaly": codes.SCT.Cardiomegaly,
    "Lung Opacity": _private("LUNG-OPACITY", "Lung opacity"),
    "Lung Lesion": _private("LUNG-LESION", "Lung lesion"),
    "Edema": FINDING_CODES["edema"],
    "Consolidation": FINDING_CODES["consolidation"],
    "Pneumonia": FINDING_CODES["pneumonia"],
    "Atelectasis": _private("ATELECTASIS", "Atelectasis"),
    "Pneumothorax": FINDING_CODES["pneumothorax"],
    "Pleural Effusion": FINDING_CODES["pleural_effusion"],
    "Pleural Other": _private("PLEURAL-OTHER", "Pleural other"),
    "Fracture": _private("FRACTURE", "Fracture"),
    "Support Devices": _private("SUPPORT-DEVICES", "Support devices"),
}
OBSERVATIONS_SECTION = _private("OBSERVATIONS", "Observations")
OBSERVATION_PROBABILITY = _private("PROB-PRESENT", "Probability of presence")

PROGRESSION_CODES: dict[Change, Code] = {
    change: _private(change.name, change.name.capitalize()) for change in Change
}
PROGRESSION_PROBABILITY_CODES: dict[Change, Code] = {
    change: _private(f"PROB-{change.name}", f"Probability of {change.value}") for change in Change
}

# Patient identity attributes dropped when pseudonymizing, besides PatientID/PatientName.
_OTHER_IDENTITY = (
    "OtherPatientIDsSequence",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
)
_REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
# Read by highdicom from the first source with attribute access; empty is valid (type 2).
_TYPE2_COPIED = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
)

_CONTAINS = hd.sr.RelationshipTypeValues.CONTAINS
_INFERRED_FROM = hd.sr.RelationshipTypeValues.INFERRED_FROM


def read_headers(paths: Sequence[str]) -> list[Dataset]:
    """The DICOM headers (no pixel data) of the images a report was made from, in order.

    They are read by `cxr.io.read_dataset`, the reader that indexed the study, so a file is read
    here exactly as it was there (legacy files without preamble included).

    Raises:
        InputError: a file cxr.io cannot read (an UnreadableImage), or one with no SOP class.
    """
    return [_read_source(path) for path in paths]


def _read_source(path: str) -> Dataset:
    header = read_dataset(path)
    if "SOPClassUID" not in header:
        raise InputError(
            path, "no SOPClassUID: not a DICOM image, so a DICOM SR cannot reference it"
        )
    return header


def write_report_sr(
    prediction: Prediction,
    sources: Sequence[Dataset],
    output_dir: Path,
    series_number: int = 990,
    manufacturer: str = "cxr",
    pseudonymize: Callable[[str], str] | None = None,
) -> Path:
    """Writes the study's report as a DICOM Comprehensive SR and returns the file's path.

    The file is `<study id>.sr.dcm` in `output_dir`, written to a temporary name and renamed,
    so a rerun replaces it and a kill never leaves half a file.

    Args:
        prediction: The model's output for the study.
        sources: Headers of the study's images that were used, frontal first, then lateral.
        output_dir: Folder to write into; created if missing.
        series_number: SeriesNumber of the SR's new series.
        manufacturer: Manufacturer of the SR (the software that made it).
        pseudonymize: When given, PatientID and PatientName become pseudonymize(PatientID)
            and other patient ids and names are left out.
    """
    evidence = _evidence(prediction.study_id, sources, pseudonymize)
    try:
        report = hd.sr.ComprehensiveSR(
            evidence=evidence,
            content=_content(prediction, evidence, manufacturer),
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=manufacturer,
            is_complete=True,
            series_description="cxr generated report (unverified)",
            coding_schemes=[
                CodingSchemeIdentificationItem(
                    SCHEME, name="cxr private codes", responsible_organization=manufacturer
                )
            ],
            specific_character_set="ISO_IR 192",
        )
    except KeyError as error:
        # highdicom looks up the source's SOP class to know which attributes to copy.
        raise InputError(
            _where(evidence[0], prediction.study_id),
            f"highdicom cannot copy patient and study attributes from SOP class {evidence[0].SOPClassUID}: {error}",
        ) from error
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{_file_stem(prediction.study_id)}.sr.dcm"
    partial = path.with_name(f".{path.name}.partial")
    report.save_as(partial, enforce_file_format=True)
    os.replace(partial, path)
    log.debug("wrote DICOM SR %s for study %s", path.name, prediction.study_id)
    return path


def _where(source: Dataset, study_id: str) -> str:
    return str(getattr(source, "filename", None) or f"study {study_id}")


def _file_stem(study_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", study_id).lstrip(".") or "study"


def _evidence(
    study_id: str, sources: Sequence[Dataset], pseudonymize: Callable[[str], str] | None
) -> list[Dataset]:
    """Copies of the source headers, checked, with type-2 gaps filled and identity replaced."""
    if not sources:
        raise InputError(f"study {study_id}", "no source DICOM image to reference in the SR")
    evidence = [copy.deepcopy(source) for source in sources]
    for source in evidence:
        missing = [keyword for keyword in _REQUIRED_UIDS if not source.get(keyword)]
        if missing:
            raise InputError(_where(source, study_id), f"DICOM header has no {', '.join(missing)}")
        if source.StudyInstanceUID != evidence[0].StudyInstanceUID:
            raise InputError(
                _where(source, study_id), "source images of one SR must share a StudyInstanceUID"
            )
        if pseudonymize is not None:
            _replace_identity(source, pseudonymize)
    _fill_type2(evidence[0])
    return evidence


def _replace_identity(source: Dataset, pseudonymize: Callable[[str], str]) -> None:
    alias = pseudonymize(str(source.get("PatientID", "")))
    source.PatientID = alias
    # The trailing caret makes the pseudonym the family name of a valid person name.
    source.PatientName = f"{alias}^"
    for keyword in _OTHER_IDENTITY:
        if keyword in source:
            del source[keyword]


def _fill_type2(source: Dataset) -> None:
    """Makes the attributes highdicom copies present, and empties values it would refuse."""
    for keyword in _TYPE2_COPIED:
        if keyword not in source:
            setattr(source, keyword, None)
    if source.PatientSex not in (None, "", "M", "F", "O"):
        source.PatientSex = None
    # Older files write dates as 1995.01.31 and times as 14:04:38 (ACR-NEMA style).
    source.StudyDate = _conformant(source.StudyDate, DA, ".-")
    source.StudyTime = _conformant(source.StudyTime, TM, ":")


def _conformant(value: object, parse: Callable[[str], object], separators: str) -> str | None:
    """`value` without the legacy separators if it then parses, else None (empty)."""
    if not value:
        return None
    text = str(value).strip().translate({ord(c): None for c in separators})
    try:
        parse(text)
    except ValueError:
        return None
    return text


def _content(
    prediction: Prediction, evidence: Sequence[Dataset], manufacturer: str
) -> hd.sr.ContainerContentItem:
    root = hd.sr.ContainerContentItem(name=codes.LN.DiagnosticImagingReport)
    root.ContentSequence = hd.sr.ContentSequence(
        [
            *_observer(prediction.model, manufacturer),
            _text_section(codes.DCM.Findings, codes.DCM.Finding, prediction.findings),
            _text_section(codes.DCM.Impressions, codes.DCM.Impression, prediction.impression),
            _tubes_and_lines(prediction),
            _observations(prediction),
            _comparison(prediction),
            _image_library(evidence),
        ]
    )
    return root


def _container(name: Code, items: Sequence[hd.sr.ContentItem]) -> hd.sr.ContainerContentItem:
    container = hd.sr.ContainerContentItem(name=name, relationship_type=_CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence(list(items))
    return container


def _observer(model: str, manufacturer: str) -> hd.sr.ObserverContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["cxr model", model]),
        name=model or "cxr",
        manufacturer_name=manufacturer,
    )
    return hd.sr.ObserverContext(
        observer_type=codes.cid270.Device, observer_identifying_attributes=device
    )


def _text_section(heading: Code, name: Code, text: str) -> hd.sr.ContainerContentItem:
    # A TEXT item's value is type 1, so an empty section is left without one.
    items = (
        [hd.sr.TextContentItem(name=name, value=text, relationship_type=_CONTAINS)]
        if text.strip()
        else []
    )
    return _container(heading, items)


def _probability(name: Code, value: float) -> hd.sr.NumContentItem:
    return hd.sr.NumContentItem(
        name=name, value=float(value), unit=PROBABILITY_UNIT, relationship_type=_INFERRED_FROM
    )


def _coded_status(device: str, status: str) -> Code:
    try:
        return STATUS_CODES[status.casefold()]
    except KeyError:
        raise ValueError(
            f"unknown {device} status {status!r}; expected one of {sorted(STATUS_CODES)}"
        ) from None


def _tubes_and_lines(prediction: Prediction) -> hd.sr.ContainerContentItem:
    items: list[hd.sr.ContentItem] = []
    for device, indices in TUBE_LINE_DEVICES.items():
        status = prediction.tube_line_status.get(device)
        if status is None:
            continue
        if status == NOT_ASSESSED:
            items.append(
                hd.sr.TextContentItem(
                    name=DEVICE_CODES[device], value=NOT_ASSESSED, relationship_type=_CONTAINS
                )
            )
            continue
        item = hd.sr.CodeContentItem(
            name=DEVICE_CODES[device],
            value=_coded_status(device, status),
            relationship_type=_CONTAINS,
        )
        labels = [
            TUBE_LINE_LABELS[i]
            for i in indices
            if TUBE_LINE_LABELS[i] in prediction.tube_line_probs
        ]
        if labels:
            item.ContentSequence = hd.sr.ContentSequence(
                [
                    _probability(TUBE_LINE_CODES[label], prediction.tube_line_probs[label])
                    for label in labels
                ]
            )
        items.append(item)
    return _container(TUBES_AND_LINES, items)


def _observations(prediction: Prediction) -> hd.sr.ContainerContentItem:
    items: list[hd.sr.ContentItem] = []
    for observation in OBSERVATIONS:
        name = OBSERVATION_CODES[observation]
        probability = prediction.observation_probs.get(observation)
        if probability is None or is_missing(probability):  # None, or NaN
            items.append(
                hd.sr.TextContentItem(name=name, value=NOT_ASSESSED, relationship_type=_CONTAINS)
            )
            continue
        present = probability >= OBSERVATION_THRESHOLD
        item = hd.sr.CodeContentItem(
            name=name,
            value=STATUS_CODES["present" if present else "absent"],
            relationship_type=_CONTAINS,
        )
        item.ContentSequence = hd.sr.ContentSequence(
            [_probability(OBSERVATION_PROBABILITY, probability)]
        )
        items.append(item)
    return _container(OBSERVATIONS_SECTION, items)


def _comparison(prediction: Prediction) -> hd.sr.ContainerContentItem:
    items: list[hd.sr.ContentItem] = []
    if prediction.change and prediction.prior_study_id:
        items.append(_prior_study(prediction.prior_study_id))
    for finding in CHANGE_FINDINGS:
        called = prediction.change.get(finding)
        if called is None:
            items.append(
                hd.sr.TextContentItem(
                    name=FINDING_CODES[finding],
                    value=NOT_ASSESSED,
                    relationship_type=_CONTAINS,
                )
            )
        else:
            items.append(_progression(finding, called, prediction.change_probs.get(finding, {})))
    return _container(codes.DCM.ComparisonToPreviousStudies, items)


def _prior_study(prior_study_id: str) -> hd.sr.ContentItem:
    if UID(prior_study_id).is_valid:
        return hd.sr.UIDRefContentItem(
            name=codes.DCM.StudyInstanceUID, value=prior_study_id, relationship_type=_CONTAINS
        )
    return hd.sr.TextContentItem(
        name=PRIOR_STUDY, value=prior_study_id, relationship_type=_CONTAINS
    )


def _progression(finding: str, called: str, probs: dict[str, float]) -> hd.sr.CodeContentItem:
    try:
        change = Change.parse(called)
    except ValueError as error:
        raise ValueError(f"{finding}: {error}") from None
    item = hd.sr.CodeContentItem(
        name=FINDING_CODES[finding], value=PROGRESSION_CODES[change], relationship_type=_CONTAINS
    )
    known = [c for c in Change if c.value in probs]
    if known:
        item.ContentSequence = hd.sr.ContentSequence(
            [_probability(PROGRESSION_PROBABILITY_CODES[c], probs[c.value]) for c in known]
        )
    return item


def _image_library(evidence: Sequence[Dataset]) -> hd.sr.ContainerContentItem:
    images = [
        hd.sr.ImageContentItem(
            name=codes.SCT.Source,
            referenced_sop_class_uid=source.SOPClassUID,
            referenced_sop_instance_uid=source.SOPInstanceUID,
            relationship_type=_CONTAINS,
        )
        for source in evidence
    ]
    return _container(codes.DCM.ImageLibrary, [_container(codes.DCM.ImageLibraryGroup, images)])
