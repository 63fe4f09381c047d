"""`ReportGenerator`: load a saved model once, turn batches of studies into `Prediction`s."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from transformers import GenerationConfig

from cxr.data.reports import split_report
from cxr.errors import CxrError
from cxr.inference.backends import BackendOptions, Engine, StudyOutput, load_backend
from cxr.inference.outputs import ErrorRecord, Prediction
from cxr.models.hub import resolve_model_folder
from cxr.tube_line import study_statuses
from cxr.types import (
    CHANGE_FINDINGS,
    IMAGE_SLOTS,
    OBSERVATIONS,
    TUBE_LINE_LABELS,
    Change,
    Study,
)

log = logging.getLogger(__name__)


def model_fingerprint(model_dir: Path) -> str:
    """`<folder name>@<first 12 hex of the weights' sha256>`, to tell models apart in outputs."""
    digest = hashlib.sha256()
    # rglob: an adapter-only folder keeps its LoRA weights in decoder_adapter/
    for weights in sorted(model_dir.rglob("*.safetensors")):
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"{model_dir.resolve().name}@{digest.hexdigest()[:12]}"


class ReportGenerator:
    """Generates reports, tube/line, findings and change calls for studies.

    The model folder is cxr's own or a Hugging Face vision-language model of a family cxr runs
    (see `cxr.inference.backends`); either way every study becomes one `Prediction`. What a
    model does not give (tube/line, findings and change from a model without label heads) is
    "not assessed".

    Args:
        model_dir: A folder written by `ReportModel.save_pretrained` (or `cxr export`), or of a
            Hugging Face vision-language model; or a Hub repo id of one in the local cache.
        device: Torch device, e.g. cpu or cuda:0.
        batch_size: Studies per forward pass.
        num_workers: DataLoader processes that decode and preprocess images.
        cache_dir: Preprocessed-image cache shared with training; none decodes every time
            (cxr's own models only: the processors of the others resize images themselves).
        generation_config: Decoding settings. The fields it sets replace the model folder's
            (its generation_config.json); those it leaves unset (None) keep them. None
            decodes exactly as the folder says.
        seed: Seed of sampling, set before every batch.
        trust_remote_code: Run the Python code of a folder that ships its own (MAIRA-2,
            CheXagent-2); without it such a folder is refused.
        engine: What runs a Hugging Face model: transformers, or vLLM (a separate environment).

    Raises:
        InputError: not a model folder, a model family cxr does not run, or a folder with its
            own code without `trust_remote_code`.
        CxrError: The resolved decoding settings contradict each other (e.g. a temperature
            without `do_sample`, which Hugging Face would silently ignore).
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        batch_size: int = 8,
        num_workers: int = 0,
        cache_dir: Path | None = None,
        generation_config: GenerationConfig | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        engine: Engine | str = Engine.TRANSFORMERS,
    ) -> None:
        model_dir = resolve_model_folder(model_dir)
        options = BackendOptions(
            device=device,
            batch_size=batch_size,
            num_workers=num_workers,
            cache_dir=cache_dir,
            generation_config=generation_config,
            seed=seed,
            trust_remote_code=trust_remote_code,
            engine=Engine(engine),
        )
        self.backend = load_backend(model_dir, options)
        self.model_name = model_fingerprint(model_dir)
        self.generation_config = self.backend.generation_config
        _refuse_ignored_settings(self.generation_config, model_dir)

    def generate(self, studies: Iterable[Study]) -> Iterator[Prediction | ErrorRecord]:
        """Predictions in input order; a study that cannot be reported yields an ErrorRecord."""
        for batch in self.generate_batches(studies):
            yield from batch

    def generate_batches(
        self, studies: Iterable[Study]
    ) -> Iterator[list[Prediction | ErrorRecord]]:
        """Like `generate`, one list per batch, so callers can write each batch durably."""
        study_list = list(studies)
        by_id = {study.study_id: study for study in study_list}
        for batch in self.backend.batches(study_list):
            results: list[Prediction | ErrorRecord] = list(batch.errors)
            results.extend(
                self._prediction(by_id[output.study_id], output, batch.seconds_per_study)
                for output in batch.outputs
            )
            yield results

    def _prediction(self, study: Study, output: StudyOutput, seconds: float) -> Prediction:
        """One study's prediction. Labels the model did not give are left out (not assessed);
        change is assessed only when the model gave it and the prior image was read."""
        findings, impression = split_report(output.text)
        labels = output.labels
        probs: dict[str, float] = {}
        observation_probs: dict[str, float] = {}
        if labels is not None:
            probs = {
                label: round(float(p), 6)
                for label, p in zip(TUBE_LINE_LABELS, labels.tube_line, strict=True)
            }
            observation_probs = {
                name: round(float(p), 6)
                for name, p in zip(OBSERVATIONS, labels.observations, strict=True)
            }
        # Slots whose file was missing or could not be read were not used: they are not listed.
        used = output.used
        images = {slot: getattr(study.images, slot) for slot in IMAGE_SLOTS if used.get(slot)}
        assessed = labels is not None and used.get("frontal") and used.get("prior_frontal")
        calls, change_probs = {}, {}
        if labels is not None and assessed:
            for finding, row in zip(CHANGE_FINDINGS, labels.change, strict=True):
                change_probs[finding] = {c.value: round(float(row[c.code]), 6) for c in Change}
                calls[finding] = Change.from_code(int(row.argmax())).value
        return Prediction(
            study_id=study.study_id,
            patient_id=study.patient_id,
            findings=findings,
            impression=impression,
            tube_line_probs=probs,
            tube_line_status=study_statuses(probs, self.backend.tube_line_thresholds),
            observation_probs=observation_probs,
            change=calls,
            change_probs=change_probs,
            prior_study_id=study.prior_study_id if assessed else None,
            images=images,
            model=self.model_name,
            seconds=seconds,
        )


def _refuse_ignored_settings(generation_config: GenerationConfig, model_dir: Path) -> None:
    """Raises a CxrError when a setting would be ignored: Hugging Face only logs a warning."""
    try:
        generation_config.validate(strict=True)
    except ValueError as error:
        raise CxrError(
            f"decoding settings (the options given, over {model_dir}/generation_config.json) "
            f"contradict each other: {error}"
        ) from error
