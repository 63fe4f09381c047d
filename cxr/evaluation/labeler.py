"""An offline, rule-based CheXpert-style report labeler.

`label_reports(texts)` gives, per report, the 14 CheXpert observations as the CheXpert
labeler's output does: 1.0 positive, 0.0 negative, -1.0 uncertain, NaN not mentioned.

How a report is read:

1. Sentences: the text is lower-cased and split at sentence periods (not decimal points),
   "?", "!", ";", line breaks and list numbers ("1.", "2)").
2. Mentions: each observation has phrase patterns (`_RULES`). Some phrases are statements
   of normality ("heart size is normal" is a negative mention of cardiomegaly), some are
   uncertain by themselves ("borderline heart size").
3. Scope: a sentence is cut into clauses at contrastive words ("but", "however", "which",
   "although", "except", "there is"...). A mention is
   - uncertain when its clause holds a hedge ("may", "possible", "suspicious for", "versus",
     "cannot be excluded", ...); "cannot be excluded" / "not ruled out" are double negations
     and so hedges, not negations;
   - else negative when a negation cue ("no", "without", "negative for", "free of", ...) comes
     before it in its clause, or a negating predicate follows it ("is not seen", "has
     resolved", ...). Phrases that look negative but are not ("no change in", "no interval
     increase") are removed first.
4. A report's label per observation: positive if any mention is positive, else uncertain if any
   is uncertain, else negative if any is negative, else NaN. `No Finding` is 1.0 when no
   observation other than `Support Devices` is positive or uncertain (and NaN for empty text).

`label_devices` and `label_changes` read device mentions (ETT, NGT, CVC, Swan-Ganz) and change
statements (improving / stable / worsening) with the same sentence and scope machinery.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import pandas as pd

from cxr.types import CHANGE_FINDINGS, OBSERVATIONS, Change

DEVICES: tuple[str, ...] = ("ETT", "NGT", "CVC", "Swan Ganz")

POSITIVE, NEGATIVE, UNCERTAIN = 1.0, 0.0, -1.0


class Polarity(str, Enum):
    """How a phrase states its observation before context is read."""

    MENTION = "mention"  # a finding named; context decides
    NORMAL = "normal"  # a statement that the finding is absent
    HEDGED = "hedged"  # uncertain by itself


@dataclass(frozen=True)
class Rule:
    """Phrase patterns of one observation, per polarity."""

    mention: tuple[str, ...] = ()
    normal: tuple[str, ...] = ()
    hedged: tuple[str, ...] = ()
    patterns: list[tuple[re.Pattern[str], Polarity]] = field(
        default_factory=list, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for polarity, phrases in (
            (Polarity.NORMAL, self.normal),
            (Polarity.HEDGED, self.hedged),
            (Polarity.MENTION, self.mention),
        ):
            for phrase in phrases:
                self.patterns.append((re.compile(rf"\b(?:{phrase})\b"), polarity))


_HEART = r"(?:heart|cardiac (?:silhouette|shadow|size|contours?)|heart size|cardiac)"
_NORMAL = r"(?:normal|within normal limits|unremarkable|not enlarged|stable|maintained)"
_LINK = r"(?:\s+(?:is|are|appears?|remains?|size|and shape|and contour|in size|\w+))*?\s*"

_RULES: dict[str, Rule] = {
    "Enlarged Cardiomediastinum": Rule(
        mention=(
            r"(?:enlarged|widened|wide|prominent) (?:cardio)?mediastin\w*",
            r"(?:cardio)?mediastin\w* (?:silhouette |contours? )?(?:is |are |appears? )?"
            r"(?:\w+ )?(?:enlarged|widened|widening|prominent)",
            r"mediastinal widening",
        ),
        normal=(rf"(?:cardio)?mediastin\w*(?: silhouette| contours?)?{_LINK}{_NORMAL}",),
    ),
    "Cardiomegaly": Rule(
        mention=(
            r"cardiomegaly",
            r"cardiac (?:enlargement|hypertrophy)",
            r"enlarged (?:heart|cardiac silhouette)",
            r"enlargement of the (?:heart|cardiac silhouette)",
            rf"{_HEART}(?: size)? (?:is |are |appears? |remains? )?(?:\w+ ){{0,2}}"
            r"(?:enlarged|large|increased|prominent)",
            r"cardiomediastinal silhouette (?:is |appears? |remains? )?(?:\w+ )?enlarged",
        ),
        normal=(
            rf"{_HEART}(?: size)?{_LINK}(?:normal|within normal limits|not enlarged|unremarkable)",
            r"normal (?:heart|cardiac)(?: size| silhouette)?",
            r"(?:heart|cardiac) size (?:is )?(?:normal|stable)",
            r"cardiomediastinal silhouette (?:and \w+ )?(?:is |are |appears? )?"
            r"(?:normal|within normal limits|unremarkable)",
            r"normal cardiomediastinal silhouette",
        ),
        hedged=(
            r"(?:heart size|cardiac silhouette|heart)(?: is)? (?:at )?(?:the )?upper limits? (?:of )?normal",
            r"borderline (?:cardiomegaly|heart size|cardiac enlargement|enlarged)",
            r"(?:heart|heart size|cardiac silhouette) (?:is )?borderline",
        ),
    ),
    "Lung Opacity": Rule(
        mention=(
            r"opacit(?:y|ies)",
            r"opacification",
            r"densit(?:y|ies)",
            r"infiltrat\w*",
            r"airspace (?:disease|process)",
            r"haz(?:e|y|iness)",
            r"interstitial (?:marking|prominence|pattern|changes?|disease|lung disease)s?",
            r"reticular\w*",
            r"scar(?:ring)?",
        ),
    ),
    "Lung Lesion": Rule(
        mention=(
            r"mass(?:es|like)?",
            r"nodul(?:e|es|ar|arity)",
            r"(?:lung|pulmonary|cavitary) lesions?",
            r"neoplasm",
            r"tumou?r",
            r"carcinoma",
            r"(?:lung )?cancer",
            r"metasta\w+",
        ),
    ),
    "Edema": Rule(
        mention=(r"o?edema", r"congestive heart failure", r"chf"),
    ),
    "Consolidation": Rule(mention=(r"consolidat\w*",)),
    "Pneumonia": Rule(
        mention=(r"(?:broncho)?pneumonia", r"pneumonitis", r"(?<!granulomatous )infectio(?:n|us)"),
    ),
    "Atelectasis": Rule(
        mention=(r"atelecta\w*", r"(?:lobar|lung|lobe) collapse", r"collapse of the \w+"),
    ),
    "Pneumothorax": Rule(
        mention=(r"pneumothora\w*", r"pleural air(?: collection)?", r"hydropneumothorax"),
    ),
    "Pleural Effusion": Rule(
        mention=(
            r"(?<!pericardial )effusions?",
            r"pleural fluid",
            r"hydrothorax",
            r"blunting of the (?:\w+ )?(?:costophrenic|cp) (?:angle|sulcus|sulci)s?",
            r"(?:costophrenic|cp) (?:angle|sulcus|sulci)s? (?:is |are )?blunt\w*",
        ),
        normal=(r"pleural spaces? (?:is |are )?clear",),
    ),
    "Pleural Other": Rule(
        mention=(
            r"pleural thickening",
            r"pleural (?:plaques?|calcifications?|scarring)",
            r"fibrothorax",
            r"pleural[- ]based (?:opacity|density|thickening)",
        ),
    ),
    "Fracture": Rule(mention=(r"fractures?", r"fx")),
    "Support Devices": Rule(
        mention=(
            r"(?:endotracheal|tracheostomy|nasogastric|feeding|chest|enteric|orogastric|"
            r"dobhoff|gastric|et|ng|og|drainage) tubes?",
            r"catheters?",
            r"(?:picc|central|venous|swan|arterial|subclavian|jugular)(?: \w+)? lines?",
            r"picc",
            r"pacemaker",
            r"pacer",
            r"(?:pacing |pacemaker )?leads?",
            r"defibrillator",
            r"aicd",
            r"port(?:-a-cath|acath)?",
            r"stents?",
            r"(?:prosthetic|replacement) valves?",
            r"valve replacement",
            r"drains?",
            r"hardware",
        ),
    ),
}

# Abnormalities outside the 14 observations. Open-I's "normal" (and a reader's "no finding")
# excludes them, so a positive mention of one also keeps `No Finding` off; they are not output.
_OTHER_FINDINGS = Rule(
    mention=(
        r"granulom\w*",
        r"degenerat\w*",
        r"hyper(?:inflat|expan|lucen|aerat)\w*",
        r"emphysem\w*",
        r"copd",
        r"obstructive (?:lung|pulmonary|airway) disease",
        r"tortu\w*",
        r"ectasia|ectatic",
        r"calcifi\w*",
        r"hernia",
        r"deformit\w*",
        r"spondylo\w*",
        r"osteophyt\w*",
        r"spur\w*",
        r"scolio\w*",
        r"kyphos\w*|kyphotic",
        r"(?:post-?surgical|post-?operative|surgical|sternotomy|cabg|thoracotomy)",
        r"clips?",
        r"elevat\w*(?: \w+)? (?:hemi)?diaphragm",
        r"(?:hemi)?diaphragm\w* (?:is |are )?elevat\w*",
        r"eventration",
        r"(?:low|decreased|diminished) lung volumes?",
        r"hypo-?inflat\w*",
        r"crowding",
        r"fibros\w*|fibrotic",
        r"bronchiectasis",
        r"thickening",
        r"osteopen\w*",
        r"arthrit\w*",
        r"(?:lymph|adeno)path\w*",
        r"cholecystectomy",
        r"implants?",
        r"pneumomediastinum",
        r"subcutaneous (?:emphysema|air)",
        r"(?:bullae|bulla|bullous|blebs?|cysts?|cystic)",
        r"(?:aortic|aorta) (?:is )?(?:dilat\w*|enlarg\w*|aneurysm\w*|calcif\w*|unfold\w*)",
        r"aneurysm\w*",
        r"(?:increased|prominent|coarse) (?:interstitial |lung |pulmonary |bronchovascular )?markings?",
        r"(?:hilar|vascular) prominence",
        r"prominen\w+ (?:of )?(?:the )?(?:hilar?|hila|pulmonary arter\w*|vascular\w*)",
        r"(?:vascular|venous) congestion",
    ),
)

_DEVICE_RULES: dict[str, Rule] = {
    "ETT": Rule(mention=(r"endotracheal tube", r"et tube", r"ett", r"intubat\w*")),
    "NGT": Rule(
        mention=(
            r"nasogastric tube",
            r"ng tube",
            r"ngt",
            r"(?:enteric|feeding|orogastric|og|dobhoff) tube",
        )
    ),
    "CVC": Rule(
        mention=(
            r"central (?:venous )?(?:catheter|line)",
            r"cvc",
            r"picc(?: line)?",
            r"(?:internal jugular|subclavian|ij)(?: venous)? (?:catheter|line)",
            r"port(?:-a-cath|acath)?",
        )
    ),
    "Swan Ganz": Rule(mention=(r"swan[- ]ganz(?: catheter)?", r"pulmonary arter\w* catheter")),
}

# Hedges. The double negations ("cannot be excluded") are hedges and are matched first.
_DOUBLE_NEGATIONS = (
    r"(?:cannot|can ?not|can't|could not|not) (?:be )?(?:excluded|exclude|ruled out|rule out)",
    r"(?:not|cannot) (?:be )?(?:entirely |completely |totally )?(?:excluded|ruled out)",
)
_DOUBLE_NEGATION = re.compile(r"\b(?:" + "|".join(_DOUBLE_NEGATIONS) + r")\b")
_HEDGES = re.compile(
    r"\b(?:"
    + "|".join(
        (
            *_DOUBLE_NEGATIONS,
            r"may",
            r"might",
            r"could",
            r"possibl[ey]",
            r"probabl[ey]",
            r"questionabl[ey]",
            r"question of",
            r"suspicious",
            r"suspect\w*",
            r"suggest\w*",
            r"concern\w*",
            r"versus",
            r"vs",
            r"differential",
            r"consider\w*",
            r"equivocal",
            r"indeterminate",
            r"presum\w*",
            r"likely",
            r"perhaps",
            r"represent\w*",
            r"uncertain",
            r"not (?:definitely|clearly|well) (?:seen|visualized|identified)",
            r"borderline",
            r"rule out",
            r"r/o",
            r"recommend\w*",
            r"correlat\w*",
            r"(?:evaluat\w*|assess\w*) for",
        )
    )
    + r")\b"
)
# Hedges that follow a mention closely ("pneumonia is suspected", "atelectasis versus ...").
_HEDGES_AFTER = re.compile(
    r"(?:\s+\w+){0,3}?\s+(?:"
    + "|".join(
        (
            *_DOUBLE_NEGATIONS,
            r"may|might|could|versus|vs|suspected|questioned|possible|likely|probable",
            r"(?:is|are) (?:not )?(?:suspected|questioned|possible|likely|probable)",
        )
    )
    + r")\b"
)
# Negation cues before a mention, and negating predicates after it.
_NEGATION_BEFORE = re.compile(
    r"\b(?:no|not|without|negative for|free of|clear of|absence of|absent|resolution of|"
    r"resolved|removal of|neither|nor|rather than)\b"
)
_NEGATION_AFTER = re.compile(
    r"\b(?:(?:is|are|was|were|has been|have been)\s+)?(?:not|no longer)\s+(?:\w+\s+)?"
    r"(?:seen|identified|present|evident|visualized|appreciated|demonstrated|noted|detected|"
    r"visible|apparent|enlarged|shown)\b"
    r"|\b(?:has|have)?\s*(?:resolved|cleared)\b|\babsent\b|\b(?:is|are) negative\b"
)
# Phrases that look like negations but assert the finding ("no change in the effusion").
_PSEUDO_NEGATION = re.compile(
    r"\b(?:no|without|not)\s+(?:significant\s+|appreciable\s+|substantial\s+|definite\s+)?"
    r"(?:interval\s+)?(?:change|increase|decrease|progression|worsening|improvement|"
    r"significantly changed|changed)\b(?:\s+(?:in|of))?"
    r"|\bnot only\b|\bno longer\b(?=\s+(?:enlarged))"
)
_CLAUSE_BREAK = re.compile(
    r"\b(?:but|however|although|though|except|aside from|apart from|other than|whereas|while|"
    r"which|with|with the exception of|there is|there are|concerning for|otherwise)\b"
)
# Hedges reach back over weaker breaks ("may be compatible with pneumonia"), not over these.
_STRONG_BREAK = re.compile(r"\b(?:but|however|although|though|whereas|while|except|otherwise)\b")
_SENTENCE_BREAK = re.compile(r"(?<!\d)\.(?!\d)|[?!;\n]|(?:^|\s)\d{1,2}[.)](?=\s)")


def split_sentences(text: str) -> list[str]:
    """Lower-cased sentences of a report (periods inside decimals do not split)."""
    return [s.strip() for s in _SENTENCE_BREAK.split(text.lower()) if s and s.strip()]


def _clauses(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of the sentence's clauses."""
    bounds = [0, *(m.start() for m in _CLAUSE_BREAK.finditer(sentence)), len(sentence)]
    return list(itertools.pairwise(bounds))


def _mention_value(sentence: str, start: int, end: int, polarity: Polarity) -> float:
    """The value of one mention read in its clause."""
    clause_start, clause_end = next(
        ((a, b) for a, b in _clauses(sentence) if a <= start < b), (0, len(sentence))
    )
    clause = sentence[clause_start:clause_end]
    if polarity is Polarity.HEDGED or _DOUBLE_NEGATION.search(clause):
        return UNCERTAIN
    if polarity is Polarity.NORMAL:
        return NEGATIVE
    before = _PSEUDO_NEGATION.sub(" ", sentence[clause_start:start])
    after = _PSEUDO_NEGATION.sub(" ", sentence[end:clause_end])
    if (
        _NEGATION_BEFORE.search(before)
        or _NEGATION_AFTER.search(after)
        or _NEGATION_BEFORE.search(sentence[start:end])
    ):
        return NEGATIVE
    hedge_start = max([0, *(m.end() for m in _STRONG_BREAK.finditer(sentence, 0, start))])
    hedged_before = _HEDGES.search(sentence[hedge_start:start])
    hedged_after = _HEDGES_AFTER.match(sentence, end)
    return UNCERTAIN if hedged_before or hedged_after else POSITIVE


def _mentions(sentence: str, rule: Rule) -> Iterable[float]:
    """Values of the rule's non-overlapping mentions in a sentence, earlier patterns first."""
    taken: list[tuple[int, int]] = []
    for pattern, polarity in rule.patterns:
        for match in pattern.finditer(sentence):
            start, end = match.span()
            if any(start < b and a < end for a, b in taken):
                continue
            taken.append((start, end))
            yield _mention_value(sentence, start, end, polarity)


def _aggregate(values: Iterable[float]) -> float:
    seen = set(values)
    for value in (POSITIVE, UNCERTAIN, NEGATIVE):
        if value in seen:
            return value
    return math.nan


def _label_text(sentences: Sequence[str], rules: dict[str, Rule]) -> dict[str, float]:
    return {
        name: _aggregate(v for s in sentences for v in _mentions(s, rule))
        for name, rule in rules.items()
    }


def _no_finding(labels: dict[str, float], sentences: Sequence[str]) -> float:
    findings = (v for k, v in labels.items() if k not in ("No Finding", "Support Devices"))
    if any(v in (POSITIVE, UNCERTAIN) for v in findings):
        return math.nan
    other = _aggregate(v for s in sentences for v in _mentions(s, _OTHER_FINDINGS))
    return math.nan if other in (POSITIVE, UNCERTAIN) else POSITIVE


def label_report(text: str) -> dict[str, float]:
    """The 14 CheXpert observations of one report (1.0 / 0.0 / -1.0 / NaN)."""
    sentences = split_sentences(text or "")
    if not sentences:
        return dict.fromkeys(OBSERVATIONS, math.nan)
    labels = _label_text(sentences, _RULES)
    labels["No Finding"] = _no_finding(labels, sentences)
    return {name: labels[name] for name in OBSERVATIONS}


def label_reports(texts: Iterable[str]) -> pd.DataFrame:
    """One row per text, the 14 CheXpert observation columns holding 1.0 / 0.0 / -1.0 / NaN."""
    rows = [label_report(t) for t in texts]
    return pd.DataFrame(rows, columns=list(OBSERVATIONS), dtype=float)


def label_devices(texts: Iterable[str]) -> pd.DataFrame:
    """Device mentions per text: columns ETT, NGT, CVC, Swan Ganz (1.0 / 0.0 / -1.0 / NaN)."""
    rows = [_label_text(split_sentences(t or ""), _DEVICE_RULES) for t in texts]
    return pd.DataFrame(rows, columns=list(DEVICES), dtype=float)


_CHANGE_CUES: dict[Change, re.Pattern[str]] = {
    Change.IMPROVING: re.compile(
        r"\b(?:improv\w*|decreas\w*|resolv\w*|resolution|smaller|less|clearing|cleared|"
        r"diminish\w*|regress\w*|reduc\w*)\b"
    ),
    Change.WORSENING: re.compile(
        r"\b(?:wors\w*|increas\w*|progress\w*|larger|enlarg\w*|more|new|developing|"
        r"developed|extension)\b"
    ),
    Change.STABLE: re.compile(
        r"\b(?:stable|unchanged|no (?:significant |interval )?change|similar|persistent|"
        r"persists|again (?:seen|noted)|redemonstrat\w*)\b"
    ),
}
_CHANGE_FINDING_RULES: dict[str, str] = {
    "consolidation": "Consolidation",
    "pleural_effusion": "Pleural Effusion",
    "pneumonia": "Pneumonia",
    "pneumothorax": "Pneumothorax",
    "edema": "Edema",
}


def _change_in(sentence: str, rule: Rule) -> Change | None:
    """The change cue nearest a mention of the finding in the sentence, if any."""
    positions = [m.start() for p, _ in rule.patterns for m in p.finditer(sentence)]
    if not positions:
        return None
    best: tuple[int, Change] | None = None
    for change, cue in _CHANGE_CUES.items():
        for match in cue.finditer(sentence):
            distance = min(abs(match.start() - p) for p in positions)
            if best is None or distance < best[0]:
                best = (distance, change)
    return None if best is None else best[1]


def label_changes(texts: Iterable[str]) -> pd.DataFrame:
    """Change statements per text: one column per CHANGE_FINDINGS holding "improving",
    "stable", "worsening" or None (not stated). The first sentence with a cue decides."""
    rows = []
    for text in texts:
        sentences = split_sentences(text or "")
        row: dict[str, str | None] = {}
        for finding in CHANGE_FINDINGS:
            rule = _RULES[_CHANGE_FINDING_RULES[finding]]
            found = (_change_in(s, rule) for s in sentences)
            change = next((c for c in found if c is not None), None)
            row[finding] = change.value if change is not None else None
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CHANGE_FINDINGS), dtype=object)
