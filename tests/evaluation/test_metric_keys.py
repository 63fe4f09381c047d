"""Metric names (cxr/evaluation/metric_keys.py): the spellings metrics.json promises, and the
per-subject groupings plots and notebooks read."""

from __future__ import annotations

from cxr.evaluation.metric_keys import (
    CHANGE_MACRO_ACCURACY,
    FINDINGS_AUC_MACRO,
    NLG_METRICS,
    REPORT_HEAD_AGREEMENT_MICRO,
    Labeler,
    PerSubject,
    clinical_key,
    is_per_subject,
    per_subject_keys,
    reciprocal_key,
)


def test_names_are_spelled_as_metrics_json_has_them() -> None:
    assert NLG_METRICS == ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
    assert PerSubject.TUBE_LINE_AUC.key("ETT - Normal") == "AUC/ETT - Normal"
    assert PerSubject.STATUS_ACCURACY.key("Swan Ganz") == "StatusAcc/Swan Ganz"
    assert PerSubject.OBSERVATION_F1.key("Edema") == "CE-F1/Edema"
    assert PerSubject.CHANGE_ACCURACY.key("edema") == "ChangeAcc/edema"
    assert PerSubject.CHANGE_F1.key("edema") == "ChangeF1/edema"
    assert clinical_key("F1-micro", 14) == "CE-F1-micro-14"
    assert PerSubject.FINDINGS_AUC.key("Cardiomegaly") == "FindingsAUC/Cardiomegaly"
    assert FINDINGS_AUC_MACRO == "FindingsAUC-macro"
    assert PerSubject.REPORT_HEAD_AGREEMENT.key("Edema") == "ReportHeadAgree/Edema"
    assert REPORT_HEAD_AGREEMENT_MICRO == "ReportHeadAgree-micro"
    assert PerSubject.CHANGE_MACRO_ACCURACY.key("edema") == "ChangeMacroAcc/edema"
    assert CHANGE_MACRO_ACCURACY == "ChangeMacroAcc"
    assert clinical_key("F1-macro", 5, Labeler.CHEXBERT) == "CheXbert-F1-macro-5"
    assert Labeler.CHEXBERT.per_observation.key("Edema") == "CheXbert-F1/Edema"
    assert reciprocal_key("RadCliQ-v1") == "1/RadCliQ-v1"


def test_select_gives_one_familys_subjects_and_nothing_else() -> None:
    metrics = {
        "CE-F1-micro-14": 0.9,  # shares the "CE-F1" start, but is a summary
        "CE-F1/Edema": 0.5,
        "CE-F1/Cardiomegaly": 0.25,
        "ChangeF1/edema": 0.1,
        "AUC-macro": 0.7,
    }
    assert PerSubject.OBSERVATION_F1.select(metrics) == {"Edema": 0.5, "Cardiomegaly": 0.25}
    assert PerSubject.TUBE_LINE_AUC.select(metrics) == {}
    assert [k for k in metrics if is_per_subject(k)] == [
        "CE-F1/Edema",
        "CE-F1/Cardiomegaly",
        "ChangeF1/edema",
    ]
    assert not is_per_subject("CheXbert-F1-micro-14")
    assert per_subject_keys(metrics, [PerSubject.CHANGE_F1]) == ["ChangeF1/edema"]
    # The headline change metric shares its family's start but is no finding's.
    headline = {CHANGE_MACRO_ACCURACY: 0.5, "ChangeMacroAcc/edema": 0.25, "ChangeAcc/edema": 1}
    assert not is_per_subject(CHANGE_MACRO_ACCURACY)
    assert PerSubject.CHANGE_MACRO_ACCURACY.select(headline) == {"edema": 0.25}
    assert PerSubject.CHANGE_ACCURACY.select(headline) == {"edema": 1}
