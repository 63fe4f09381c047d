"""GREEN (Ostmeier et al., 2024): a fine-tuned Llama-2 7B reads each reference/generated report
pair, lists clinically significant errors and matched findings, and the study's score is
matched / (matched + significant errors), parsed from that text.

Computed by RadEval's `radeval.metrics.green_score.green.GREEN`, the class RadEval's "green"
metric adapter wraps, with the adapter's model StanfordAIMI/GREEN-radllama2-7b and RadEval's
settings (green.py of RadEval 2.2.1): its chat template, each report cut to its first 300
words (`make_prompt`), greedy decoding up to 2048 tokens of prompt and answer, float16 on CUDA
and float32 on CPU. An answer that names no matched finding (also an empty or unparseable one)
scores 0, never NaN (`GREEN.compute_green`); RadEval's corpus GREEN is the plain mean of the
per-study scores (`GREEN.process_results`), which is what cxr reports.

Custom code: the hub repo's tokenizer_config.json maps AutoTokenizer to
tokenization_chexagent.CheXagentTokenizer, a Python file of the repo, and RadEval loads with
trust_remote_code=True. cxr runs no code from a weights folder unless
`ScorerOptions.trust_remote_code` is set: a folder whose config.json or tokenizer_config.json
declares code (`auto_map`) is refused otherwise.

What cxr sets around RadEval, and why:
- `output_dir` is a temporary folder, not the adapter's "." (GREEN 2.2.1 writes nothing there,
  but results files must never land in the user's working directory);
- one device: GREEN's multi-GPU path reloads the model by hub id in spawned worker processes,
  outside `hub_cache(folder)`, and it hard-codes cuda:0, so only "cpu", "cuda" and "cuda:0" are
  accepted;
- importing RadEval's green.py sets the process-wide multiprocessing start method to "spawn"
  when none was chosen yet; cxr undoes that, since GREEN's multi-GPU path (unused) asks for its
  own spawn context anyway.
"""

from __future__ import annotations

import importlib.metadata
import json
import multiprocessing
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr.errors import InputError
from cxr.evaluation.hub_cache import HubFile
from cxr.evaluation.scorers import ScorerOptions, ScorerSpec

REPO_ID = "StanfordAIMI/GREEN-radllama2-7b"  # as RadEval's GreenMetric spells it
METRIC = "GREEN"
SHARDS = tuple(f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3))
CONFIG_FILES = ("config.json", "tokenizer_config.json")  # where transformers reads `auto_map`
NEEDS = tuple(
    HubFile(REPO_ID, filename)
    for filename in (
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        *SHARDS,
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "tokenizer.model",
        "tokenization_chexagent.py",  # the tokenizer class tokenizer_config.json names
    )
)
DEVICES = ("cpu", "cuda", "cuda:0")


class GreenRunner:
    """RadEval's GREEN scorer, loaded once, scoring report pairs."""

    corpus_dependent = False  # a study's score depends on its own pair only

    def __init__(self, options: ScorerOptions) -> None:
        green_class = _green_class()
        if options.device not in DEVICES:
            raise ValueError(
                f"GREEN runs on one of {', '.join(DEVICES)} (RadEval hard-codes cuda:0), "
                f"not {options.device!r}"
            )
        self._output_dir = tempfile.TemporaryDirectory(prefix="cxr-green-")
        self._scorer = green_class(
            REPO_ID, output_dir=self._output_dir.name, cpu=options.device == "cpu", num_gpus=1
        )
        self._scorer.batch_size = options.batch_size
        self._progress = options.progress
        dtype = "float32" if self._scorer.cpu else "float16"
        self.version = (
            f"RadEval {importlib.metadata.version('RadEval')} {REPO_ID} greedy "
            f"max_length {self._scorer.max_length} {dtype}"
        )

    def per_study(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> dict[str, np.ndarray]:
        from datasets import are_progress_bars_disabled, disable_progress_bars
        from datasets import enable_progress_bars as restore_dataset_bars
        from tqdm import tqdm

        dataset_bars_were_off = are_progress_bars_disabled()
        disable_progress_bars()  # GREEN's prompt-building `Dataset.map` bar says nothing
        try:
            with tqdm(total=len(hypotheses), desc=METRIC, disable=not self._progress) as bar:
                _, _, scores, _ = self._scorer(
                    list(references), list(hypotheses), on_sample_done=bar.update
                )
        finally:
            if not dataset_bars_were_off:
                restore_dataset_bars()
        return {METRIC: np.asarray(scores, dtype=float)}


def _green_class() -> Any:
    """RadEval's GREEN class, imported without leaving the start method changed."""
    chosen = multiprocessing.get_start_method(allow_none=True)
    from radeval.metrics.green_score.green import GREEN

    if chosen is None:
        multiprocessing.set_start_method(None, force=True)
    return GREEN


def declared_code(folder: Path) -> dict[str, Any]:
    """{config file: its `auto_map`} of the repo's configs that name custom code."""
    from huggingface_hub import try_to_load_from_cache

    declared = {}
    for filename in CONFIG_FILES:
        path = try_to_load_from_cache(REPO_ID, filename, cache_dir=str(folder))
        if isinstance(path, str):
            auto_map = json.loads(Path(path).read_text()).get("auto_map")
            if auto_map:
                declared[filename] = auto_map
    return declared


def load(folder: Path, options: ScorerOptions) -> GreenRunner:
    """GREEN's model and tokenizer from `folder`; refuses custom code unless allowed."""
    declared = declared_code(folder)
    if declared and not options.trust_remote_code:
        named = "; ".join(f"{name}: auto_map {value}" for name, value in declared.items())
        raise InputError(
            folder,
            f"{REPO_ID} declares custom code ({named}) that RadEval's GREEN runs with "
            "trust_remote_code=True; cxr runs code from a weights folder only with "
            "--scorer_trust_remote_code",
        )
    return GreenRunner(options)


SCORERS: tuple[ScorerSpec, ...] = (
    ScorerSpec(
        name="green",
        summary="GREEN: an LLM judge's matched findings / (matched + clinically significant "
        "errors) per study",
        package="RadEval (radeval.metrics.green_score.green.GREEN)",
        needs=NEEDS,
        metrics=(METRIC,),
        parity_test="tests/evaluation/runners/test_green.py",
        load=load,
    ),
)
