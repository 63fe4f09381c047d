"""The data module on phantom studies: patient-level splits, batches, the training sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cxr.data.datamodule import DataSource, EpochSampler, ReportDataModule
from cxr.data.splits import Split
from cxr.types import IMAGE_SLOTS, OBSERVATIONS, TUBE_LINE_LABELS, Study


@pytest.fixture(scope="module")
def datamodule(phantom_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportDataModule:
    return ReportDataModule(
        sources=[DataSource(adapter="phantom", root=phantom_folder)],
        image_size=64,
        batch_size=4,
        num_workers=0,
        cache_dir=tmp_path_factory.mktemp("cache"),
        tokenizer_vocab_size=300,
        val_fraction=0.25,
        test_fraction=0.25,
    )


def test_no_patient_crosses_splits(datamodule: ReportDataModule) -> None:
    patients = {split: {s.patient_id for s in datamodule.studies(split)} for split in Split}
    assert all(patients.values()), patients
    assert not patients[Split.TRAIN] & patients[Split.VAL]
    assert not patients[Split.TRAIN] & patients[Split.TEST]
    assert not patients[Split.VAL] & patients[Split.TEST]


def test_studies_carry_priors_reports_and_labels(datamodule: ReportDataModule) -> None:
    studies = [s for split in Split for s in datamodule.studies(split)]
    with_prior = [s for s in studies if s.prior_study_id]
    assert with_prior, "phantom patients have serial studies"
    assert all(s.images.prior_frontal and s.prompt.prior_report for s in with_prior)
    # Change is labelled only for findings present in one study of the pair (MS-CXR-T).
    assert all(((s.targets.change >= -1) & (s.targets.change <= 2)).all() for s in with_prior)
    assert any((s.targets.change >= 0).any() for s in with_prior)
    assert any((s.targets.change == -1).any() for s in with_prior)
    assert all((s.targets.change == -1).all() for s in studies if not s.prior_study_id)
    assert all(s.targets.report and s.images.frontal for s in studies)
    # Phantom observations are all known.
    assert all(not np.isnan(s.targets.observations).any() for s in studies)
    counts = datamodule.summary()
    assert counts["train"]["studies"] + counts["val"]["studies"] + counts["test"]["studies"] == len(
        studies
    )
    assert all(c["observation_labels"] == c["studies"] for c in counts.values())
    assert sum(c["change_labels"] for c in counts.values()) <= len(with_prior)


def test_training_batch_shapes_and_padding(datamodule: ReportDataModule) -> None:
    batch = next(iter(datamodule.train_dataloader()))
    size = len(batch["study_id"])
    assert batch["images"].shape == (size, len(IMAGE_SLOTS), 1, 64, 64)
    assert batch["tube_line"].shape == (size, len(TUBE_LINE_LABELS))
    assert batch["observations"].shape == (size, len(OBSERVATIONS))
    assert batch["observations"].dtype == torch.float32 and batch["change"].dtype == torch.int64
    by_id = {s.study_id: s for s in datamodule.studies(Split.TRAIN)}
    for study_id, observations in zip(batch["study_id"], batch["observations"], strict=True):
        assert observations.tolist() == by_id[study_id].targets.observations.tolist()
    assert float(batch["images"].min()) >= 0.0 and float(batch["images"].max()) <= 1.0
    tokenizer = datamodule.tokenizer
    # Prompts are left-padded and start with bos; reports are right-padded and end with eos.
    assert bool((batch["prompt_mask"][:, -1] == 1).all())
    for ids, mask in zip(batch["report_ids"], batch["report_mask"], strict=True):
        assert int(ids[int(mask.sum()) - 1]) == tokenizer.eos_token_id
    first_prompt = batch["prompt_ids"][0][batch["prompt_mask"][0].bool()]
    assert int(first_prompt[0]) == tokenizer.bos_token_id


def test_sampler_repeats_an_epoch_and_varies_between_epochs() -> None:
    sampler = EpochSampler(torch.ones(10), seed=3)
    sampler.set_epoch(2)
    first, again = list(sampler), list(sampler)
    sampler.set_epoch(3)
    assert first == again
    assert sorted(i % 10 for i in first) == list(range(10))
    assert [i % 10 for i in sampler] != [i % 10 for i in first]


def test_weighted_sources_are_drawn_by_weight() -> None:
    # Source A: 2 studies with weight 3; source B: 8 studies with weight 1 -> A drawn 3/4 of the time.
    weights = torch.tensor([3 / 2] * 2 + [1 / 8] * 8)
    sampler = EpochSampler(weights, seed=0)
    draws = [i % 10 for epoch in range(200) for i in (sampler.set_epoch(epoch), list(sampler))[1]]
    share_a = sum(d < 2 for d in draws) / len(draws)
    assert 0.70 < share_a < 0.80


def test_prompt_dropout_blanks_fields_independently() -> None:
    from cxr.data.datamodule import drop_prompt_fields
    from cxr.types import Prompt

    prompt = Prompt(
        indication="Cough.", technique="PA.", comparison="Prior.", prior_report="Clear."
    )
    generator = torch.Generator().manual_seed(0)
    assert drop_prompt_fields(prompt, 0.0, generator) == prompt
    assert drop_prompt_fields(prompt, 1.0, generator) == Prompt()
    kept = [drop_prompt_fields(prompt, 0.5, generator) for _ in range(200)]
    share = sum(p.indication == "Cough." for p in kept) / len(kept)
    assert 0.35 < share < 0.65
    assert len({(p.indication, p.technique, p.comparison, p.prior_report) for p in kept}) > 8


def test_unknown_adapter_option_is_named(phantom_folder: Path) -> None:
    from cxr.data.datasets import build_adapter
    from cxr.errors import CxrError

    with pytest.raises(CxrError, match="reports_dir"):
        build_adapter("phantom", phantom_folder, reports_dir="x")
    with pytest.raises(CxrError, match="unknown dataset adapter"):
        build_adapter("mimic", phantom_folder)


def test_a_source_can_label_its_unlabelled_reports(tmp_path: Path) -> None:
    table = tmp_path / "studies.csv"
    table.write_text(
        "study_id,patient_id,findings,impression,Edema\n"
        "a,p1,Moderate cardiomegaly.,Possible pneumonia.,\n"  # no label known: labelled
        "b,p2,Large right pleural effusion.,,0\n"  # has a label: left as it is
        "c,p3,,,\n"  # no report: stays unknown
    )

    def studies(label_reports: bool) -> dict[str, Study]:
        source = DataSource("manifest", table, label_reports=label_reports)
        module = ReportDataModule([source], num_workers=0, val_fraction=0.0, test_fraction=0.0)
        return {s.study_id: s for s in module.studies(Split.TRAIN)}

    unlabelled = studies(False)
    assert np.isnan(unlabelled["a"].targets.observations).all()
    assert int(np.isnan(unlabelled["b"].targets.observations).sum()) == 13  # Edema only
    labelled = studies(True)
    a = dict(zip(OBSERVATIONS, labelled["a"].targets.observations.tolist(), strict=True))
    assert a["Cardiomegaly"] == 1.0 and a["Edema"] == 0.0 and np.isnan(a["Pneumonia"])
    b = dict(zip(OBSERVATIONS, labelled["b"].targets.observations.tolist(), strict=True))
    assert b["Edema"] == 0.0 and np.isnan(b["Pleural Effusion"])  # not the labeler's 1.0
    assert np.isnan(labelled["c"].targets.observations).all()
