"""The `cxr evaluate` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from cxr.errors import InputError
from cxr.evaluation import rexrank
from cxr.evaluation.clinical_efficacy import UncertainMapping
from cxr.evaluation.evaluate import EvaluationOptions, evaluate_files
from cxr.evaluation.nlg import java_available
from cxr.evaluation.outputs import format_table, write_outputs
from cxr.evaluation.records import split_paths
from cxr.evaluation.scorers import (
    ScorerOptions,
    default_cache_folder,
    load_scorers,
    parse_scorer_specs,
    scorer_help,
)
from cxr.evaluation.studies import Section, read_matched
from cxr.jsonl import read_json

log = logging.getLogger(__name__)


def evaluate(
    predictions: str | None = None,
    references: str | list[str] | None = None,
    output: str = "evaluation",
    section: Literal["findings", "impression", "report"] = "report",
    uncertain: Literal["positive", "negative", "ignore"] = "negative",
    bootstrap: int = 1000,
    seed: int = 0,
    compare: str | None = None,
    baselines: bool = False,
    train_references: str | list[str] | None = None,
    retrieval_features: str | None = None,
    scorer: str | list[str] | None = None,
    scorer_device: str = "cpu",
    scorer_batch_size: int = 16,
    scorer_cache: str | None = None,
    scorer_trust_remote_code: bool = False,
    meteor: bool | None = None,
    plots: bool = True,
    rexrank_json: str | None = None,
) -> int:
    """Scores generated reports against references (NLG, clinical efficacy, consistency, AUC, status, change) with intervals.

    Writes metrics.json ({metric: {value, ci_low, ci_high}} of the predictions), systems.json
    (every system, baselines included), differences.json (with --compare), run_info.json,
    unmatched_ids.csv and PNG plots to OUT_DIR (-o), and prints the table.

    Args:
        predictions: `cxr generate` output (.jsonl or .csv) keyed by study_id, or a ReXrank output .json (its model_prediction, split at "Findings:" / "Impression:").
        references: reference file(s) joined on study_id: .jsonl/.csv (e.g. `cxr synth`'s reports.jsonl and labels.csv), an R2Gen annotation .json (test split, text only) or a ReXrank .json (its section_findings and section_impression). Several: a comma list, [a,b], or --references+ FILE repeated.
        output: folder (OUT_DIR) for metrics.json, plots and the other outputs.
        section: text compared: findings, impression, or report (findings + impression, else a report column). ReXrank's findings track is findings, its findings+impression track report.
        uncertain: how an uncertain (-1) observation counts: the labeler's, in clinical efficacy and report-to-head consistency, and a reference label's, in findings-head AUC: positive, negative, or ignore (that study and observation left out).
        bootstrap: number of patient-level bootstrap resamples (0: point estimates only).
        seed: seed of the bootstrap and of the random-report baseline.
        compare: a second predictions file; adds its metrics and paired-bootstrap differences (predictions - compare).
        baselines: add the most-common-report and retrieval baselines (needs --train_references).
        train_references: training references for the baselines (same formats; annotation .json uses its train split).
        retrieval_features: .npz with arrays study_ids and features (train and test studies) for nearest-neighbour retrieval; without it the retrieval baseline is a seeded random training report, named random-train-report.
        scorer: model-based scorers to run, as NAME=DIR with DIR a local Hugging Face hub cache holding that scorer's files (listed below, with the command that fetches them); never downloaded. Repeat or comma-list for several.
        scorer_device: device the model-based scorers run on (cpu, cuda, cuda:1, ...).
        scorer_batch_size: reports per batch in the model-based scorers.
        scorer_cache: folder of the per-study score cache (default: $XDG_CACHE_HOME/cxr/scores, i.e. ~/.cache/cxr/scores); "none" keeps nothing between runs.
        scorer_trust_remote_code: let a scorer run the Python code its weights folder ships (GREEN's tokenizer class); off by default.
        meteor: compute METEOR (needs java); default: when java is on PATH.
        plots: write the PNG plots.
        rexrank_json: also write the evaluated studies as ReXrank's output JSON for the --section's track (findings, or report for findings+impression): each study's reference entry (a ReXrank reference file's own entry, else its sections) with model_prediction added, the file ReXrank's evaluation scripts read.
    """
    if not predictions:
        raise InputError("--predictions", "required")
    if not references:
        raise InputError("--references", "required")
    if bootstrap < 0:
        raise InputError("--bootstrap", "must be 0 or more")
    if baselines and not train_references:
        raise InputError("--baselines", "needs --train_references")
    if meteor and not java_available():
        raise InputError("--meteor", "METEOR needs java on PATH")
    if scorer_batch_size < 1:
        raise InputError("--scorer_batch_size", "must be 1 or more")
    track = rexrank.track_of(Section(section)) if rexrank_json else None
    cache = (
        None
        if scorer_cache == "none"
        else Path(scorer_cache).expanduser()
        if scorer_cache
        else default_cache_folder()
    )
    scorers = load_scorers(
        parse_scorer_specs(split_paths(scorer) if scorer else []),
        ScorerOptions(scorer_device, scorer_batch_size, trust_remote_code=scorer_trust_remote_code),
        cache_folder=cache,
    )
    options = EvaluationOptions(
        Section(section), UncertainMapping(uncertain), bootstrap, seed, meteor
    )
    evaluation = evaluate_files(
        predictions,
        split_paths(references),
        options,
        compare=compare,
        train_references=split_paths(train_references) if baselines and train_references else (),
        retrieval_features=retrieval_features,
        scorers=scorers,
    )
    written = write_outputs(evaluation, Path(output), make_plots=plots)
    if track is not None and rexrank_json:
        written.append(
            _write_rexrank(predictions, split_paths(references), Path(rexrank_json), track)
        )
    print(format_table(evaluation))
    info = evaluation.info
    print(
        f"\n{info['studies_evaluated']} studies ({info['studies_with_reference_text']} with reference text), "
        f"{info['bootstrap_resamples']} bootstrap resamples of {info['clusters']} clusters "
        f"(unit: {info['bootstrap_unit']}), seed {info['seed']}; 95% percentile intervals."
    )
    print(f"METEOR: {info['METEOR']}")
    for name, note in info["model_scorers"].items():
        print(f"{name}: {note}")
    if info["model_scorers"]:
        print(
            f"CheXbert-F1 counts uncertain mentions as {info['uncertain_model_labelers']} "
            "(the papers' convention), whatever --uncertain says"
        )
    if evaluation.unmatched:
        print(
            f"{len(evaluation.unmatched)} study ids not evaluated: see {Path(output) / 'unmatched_ids.csv'}"
        )
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return 0


def _write_rexrank(
    predictions: str, references: list[str], output: Path, track: rexrank.Track
) -> Path:
    """The matched studies of `predictions` as ReXrank's output JSON (see --rexrank_json)."""
    matched = read_matched({"predictions": predictions}, references)
    given: dict[str, dict[str, Any]] = {}  # the entries of ReXrank reference files, kept whole
    for path in (p for p in references if p.lower().endswith(".json")):
        data = read_json(path)
        if rexrank.is_rexrank(data):
            given |= rexrank.entries_of(data)
    entries = {
        study_id: given.get(study_id, entry)
        for study_id, entry in rexrank.reference_entries(matched.references).items()
    }
    rows = [
        {str(column): value for column, value in row.items()}
        for row in matched.predictions["predictions"].to_dict("records")
    ]
    written = rexrank.write_predictions(rows, output, track, entries)
    log.info("wrote %d studies as ReXrank's %s track to %s", len(written), track.value, output)
    return output


evaluate.epilog = scorer_help  # type: ignore[attr-defined]
