"""The LightningDataModule: sources -> Study records -> patient-level splits -> loaders."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import PreTrainedTokenizerBase

from cxr.data.collate import ReportCollator
from cxr.data.dataset import ImageLoader, StudyDataset
from cxr.data.datasets import build_adapter, official_splits
from cxr.data.observations import has_observations, label_from_reports
from cxr.data.reports import join_report
from cxr.data.splits import Split, assign_split, read_split_file
from cxr.data.tokenizer import load_tokenizer, train_report_tokenizer
from cxr.data.transforms import Augment
from cxr.errors import CxrError
from cxr.types import Prompt, Study

log = logging.getLogger(__name__)


@dataclass
class DataSource:
    """One dataset in the training mixture.

    Args:
        adapter: Registered adapter name (see cxr.data.datasets.ADAPTERS), e.g. phantom.
        root: The dataset's root folder or manifest file.
        weight: Share of training draws relative to the other sources (sizes are normalised away).
        options: Further keyword arguments of the adapter.
        label_reports: Give studies whose 14 observations are all unknown (after the adapter)
            observation labels from their own report (findings + impression), read by the
            offline labeler (cxr.evaluation.labeler): positive is present, negative or not
            mentioned absent, uncertain unknown. Studies without a report stay unknown.
    """

    adapter: str
    root: Path
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    label_reports: bool = False


class EpochSampler(Sampler[int]):
    """Draws a seeded order per epoch, with per-source weights; resumes to the same order.

    Yields `epoch * n + index`, so the dataset can seed each item's augmentation from the draw
    and a resumed run repeats what an uninterrupted one does. Its state (Lightning's
    `state_dict` / `load_state_dict`) is the epoch and the draws of it the training loop has
    received (`delivered`, counted by `ResumableLoader`: with workers, the sampler itself runs
    ahead of the loop); after `load_state_dict`, the next pass over that epoch starts after
    those draws, so a run resumed mid-epoch continues where it stopped.
    """

    def __init__(self, weights: torch.Tensor, seed: int) -> None:
        self.weights = weights
        self.seed = seed
        self.epoch = 0
        self.delivered = 0
        self._resume: tuple[int, int] | None = None  # (epoch, draws to skip in its next pass)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        # The whole epoch even when resuming: Lightning counts the batches already trained on.
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        start = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            start = self._resume[1]
        self._resume = None
        self.delivered = start
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.weights)
        if bool((self.weights == self.weights[0]).all()):
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return iter((order[start:] + self.epoch * n).tolist())

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "delivered": self.delivered}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.delivered = int(state["delivered"])
        self._resume = (self.epoch, self.delivered)


class ResumableLoader(DataLoader[Any]):
    """The training DataLoader, stateful the way Lightning 2.6 resumes mid-epoch: the fit loop
    saves `state_dict()` of every train loader that has one into the checkpoint and hands it
    back through `load_state_dict` on resume. Counts the draws it has delivered (whole
    batches, as the training loop receives them) into its EpochSampler."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler = self.sampler
        for batch in super().__iter__():
            if isinstance(sampler, EpochSampler):
                sampler.delivered = min(len(sampler), sampler.delivered + (self.batch_size or 1))
            yield batch

    def state_dict(self) -> dict[str, Any]:
        # Under DDP Lightning wraps the sampler in a DistributedSamplerWrapper: no position
        # is kept there, and a resume restarts the epoch (Lightning warns then).
        if isinstance(self.sampler, EpochSampler):
            return {"sampler": self.sampler.state_dict()}
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if isinstance(self.sampler, EpochSampler) and "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])


def drop_prompt_fields(prompt: Prompt, probability: float, generator: torch.Generator) -> Prompt:
    """The prompt with each context field blanked independently with `probability`.

    At inference the indication, technique, comparison or prior report is often unknown; a
    model that always saw all of them in training writes nonsense without them.
    """
    keep = (torch.rand(4, generator=generator) >= probability).tolist()
    return Prompt(
        indication=prompt.indication if keep[0] else "",
        technique=prompt.technique if keep[1] else "",
        comparison=prompt.comparison if keep[2] else "",
        prior_report=prompt.prior_report if keep[3] else "",
    )


class _Augmented(Dataset[dict[str, Any]]):
    """Training view of a StudyDataset: image augmentation and prompt-field dropout, both
    seeded from the sampler's draw."""

    def __init__(
        self, base: StudyDataset, augment: Augment | None, prompt_dropout: float, seed: int
    ) -> None:
        self.base, self.augment, self.prompt_dropout, self.seed = (
            base,
            augment,
            prompt_dropout,
            seed,
        )

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, draw: int) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + draw)
        augment, dropout = self.augment, self.prompt_dropout
        return self.base.item(
            draw % len(self.base),
            (lambda image: augment(image, generator)) if augment else None,
            (lambda prompt: drop_prompt_fields(prompt, dropout, generator)) if dropout else None,
        )


class ReportDataModule(L.LightningDataModule):
    """Studies from one or more sources, split by patient, batched for the ReportModel.

    Args:
        sources: The datasets to read (adapter, root, weight, options).
        image_size: Side of the square images the model sees, in pixels.
        batch_size: Studies per batch.
        num_workers: DataLoader worker processes.
        cache_dir: Where preprocessed images are cached; none decodes every time.
        tokenizer: Local folder of a Hugging Face tokenizer; none trains a byte-level BPE on the
            training reports.
        tokenizer_vocab_size: Vocabulary size of the tokenizer trained when none is given.
        val_fraction: Share of patients in the validation split.
        test_fraction: Share of patients in the test split.
        split_file: CSV of patient_id,split that overrides the hashed split for its patients.
        seed: Seed of the split, the sampling order and the augmentation.
        augment: Training augmentation; none turns it off.
        prompt_dropout: Probability with which each prompt field (indication, technique,
            comparison, prior report) is left out of a training example, so that the model
            also writes reports when that context is unknown.
        max_prompt_tokens: Longest prompt kept (tokens, including bos).
        max_report_tokens: Longest report kept (tokens, including eos).
    """

    def __init__(
        self,
        sources: list[DataSource],
        image_size: int = 128,
        batch_size: int = 16,
        num_workers: int = 2,
        cache_dir: Path | None = None,
        tokenizer: Path | None = None,
        tokenizer_vocab_size: int = 1024,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_file: Path | None = None,
        seed: int = 0,
        augment: Augment | None = None,
        prompt_dropout: float = 0.3,
        max_prompt_tokens: int = 256,
        max_report_tokens: int = 192,
    ) -> None:
        super().__init__()
        if not sources:
            raise CxrError("data.sources is empty: give at least one dataset")
        self.sources = sources
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.tokenizer_path = tokenizer
        self.tokenizer_vocab_size = tokenizer_vocab_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_file = split_file
        self.seed = seed
        self.augment = augment
        self.prompt_dropout = prompt_dropout
        self.max_prompt_tokens = max_prompt_tokens
        self.max_report_tokens = max_report_tokens
        self._train_sampler: EpochSampler | None = None
        self._train_sampler_state: dict[str, int] | None = None

    @cached_property
    def splits(self) -> dict[Split, list[tuple[int, Study]]]:
        """(source index, study) per split; read once from every source."""
        overrides = read_split_file(self.split_file) if self.split_file else None
        splits: dict[Split, list[tuple[int, Study]]] = {split: [] for split in Split}
        adapters = [build_adapter(s.adapter, Path(s.root), **s.options) for s in self.sources]
        # Official splits that datasets ship, pooled so that a patient shared by two sources
        # (MIMIC-CXR and MS-CXR-T) lands in one split; the split file wins over them.
        lookup = {k: v for adapter in adapters for k, v in official_splits(adapter).items()}
        lookup.update(overrides or {})
        for number, (source, adapter) in enumerate(zip(self.sources, adapters, strict=True)):
            studies = list(adapter.studies())
            if source.label_reports:
                labelled = label_from_reports(studies)
                log.info(
                    "source %s: %d studies labelled from their reports", source.adapter, labelled
                )
            for study in studies:
                split = assign_split(
                    study.patient_id, lookup, self.val_fraction, self.test_fraction, self.seed
                )
                splits[split].append((number, study))
            log.info("source %s (%s): %d studies", source.adapter, source.root, len(studies))
        return splits

    def studies(self, split: Split) -> list[Study]:
        return [study for _, study in self.splits[split]]

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer given, or one trained on the training split's reports."""
        if self.tokenizer_path is not None:
            return load_tokenizer(self.tokenizer_path)
        reports = [
            join_report(s.targets.findings, s.targets.impression) for s in self.studies(Split.TRAIN)
        ]
        texts = [text for text in reports if text]
        if not texts:
            raise CxrError("no training reports to train a tokenizer on; give data.tokenizer")
        log.info(
            "training a %d-token BPE tokenizer on %d reports", self.tokenizer_vocab_size, len(texts)
        )
        return train_report_tokenizer(texts, vocab_size=self.tokenizer_vocab_size)

    def _dataset(self, split: Split) -> StudyDataset:
        return StudyDataset(self.studies(split), ImageLoader(self.image_size, self.cache_dir))

    def _loader(
        self, dataset: Dataset[Any], sampler: EpochSampler | None = None
    ) -> DataLoader[Any]:
        kind = DataLoader if sampler is None else ResumableLoader
        return kind(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Its own generator: creating an iterator then leaves torch's global RNG alone.
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=ReportCollator(
                self.tokenizer, self.max_prompt_tokens, self.max_report_tokens
            ),
        )

    def _train_weights(self) -> torch.Tensor:
        entries = self.splits[Split.TRAIN]
        sizes = torch.bincount(
            torch.tensor([number for number, _ in entries]), minlength=len(self.sources)
        )
        return torch.tensor([self.sources[n].weight / float(sizes[n]) for n, _ in entries])

    def train_dataloader(self) -> DataLoader[Any]:
        train = self._dataset(Split.TRAIN)
        if not len(train):
            raise CxrError(
                "the training split is empty: check data.sources and the split fractions"
            )
        augmented = _Augmented(train, self.augment, self.prompt_dropout, self.seed)
        self._train_sampler = EpochSampler(self._train_weights(), self.seed)
        if self._train_sampler_state is not None:
            self._train_sampler.load_state_dict(self._train_sampler_state)
            self._train_sampler_state = None
        return self._loader(augmented, self._train_sampler)

    # Lightning saves the train loader's state (ResumableLoader) and hands it back, but 2.6
    # drops it when configure_optimizers reads trainer.estimated_stepping_batches under
    # max_epochs (the loader is built before the checkpoint is restored; Lightning issue
    # #20550). The data module is restored first, so it carries the sampler's state too and
    # gives it to the sampler it builds; when Lightning does restore the loader, it loads the
    # same state again.
    def state_dict(self) -> dict[str, Any]:
        if self._train_sampler is None:
            return {}
        return {"train_sampler": self._train_sampler.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._train_sampler_state = state_dict.get("train_sampler")

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self._dataset(Split.VAL))

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self._dataset(Split.TEST))

    def summary(self, source: int | None = None) -> dict[Split, dict[str, int]]:
        """Counts of studies, images, reports, labels and priors per split, of every source or
        of the one whose index in `sources` is given."""
        return {
            split: count_studies([s for n, s in self.splits[split] if source in (None, n)])
            for split in Split
        }


def count_studies(studies: Sequence[Study]) -> dict[str, int]:
    """Studies, patients, images, priors and reports; a study counts for a kind of label when
    at least one label of that kind is known."""
    return {
        "studies": len(studies),
        "patients": len({s.patient_id for s in studies}),
        "frontal": sum(s.images.frontal is not None for s in studies),
        "lateral": sum(s.images.lateral is not None for s in studies),
        "prior": sum(s.images.prior_frontal is not None for s in studies),
        "report": sum(s.targets.report is not None for s in studies),
        "tube_line_labels": sum(
            bool((s.targets.tube_line == s.targets.tube_line).any()) for s in studies
        ),
        "change_labels": sum(bool((s.targets.change >= 0).any()) for s in studies),
        "observation_labels": sum(has_observations(s.targets.observations) for s in studies),
    }
