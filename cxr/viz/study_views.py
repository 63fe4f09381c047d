"""One study at a time: its images beside its generated and reference report, and the prior
frontal beside the current one with the change head's probabilities.

Image paths that are relative are resolved against `image_root` (the folder `cxr generate`
ran in); an image that cannot be read is drawn as its reason, so one bad file does not stop a
notebook.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cxr.errors import UnreadableImage
from cxr.io import read_image
from cxr.types import IMAGE_SLOTS, Study, is_missing
from cxr.viz.head_calls import plot_change_probabilities
from cxr.viz.rows import PredictionLike, ReferenceLike, as_row, labelled_report, reference_text

SLOT_TITLES = {"frontal": "frontal", "lateral": "lateral", "prior_frontal": "prior frontal"}
_TEXT_WIDTH = 56


def image_paths(source: Study | PredictionLike, image_root: Path | None = None) -> dict[str, Path]:
    """The study's image paths by slot (frontal, lateral, prior_frontal), present ones only.

    Args:
        source: a Study, a Prediction, or a reports.jsonl row (columns `<slot>_image`).
        image_root: folder that relative paths start from; None keeps them as they are.
    """
    if isinstance(source, Study):
        found = {slot: getattr(source.images, slot) for slot in IMAGE_SLOTS}
    else:
        row = as_row(source)
        found = {slot: row.get(f"{slot}_image") for slot in IMAGE_SLOTS}
    paths = {}
    for slot, path in found.items():
        if is_missing(path):
            continue
        resolved = Path(path)
        if image_root is not None and not resolved.is_absolute():
            resolved = Path(image_root) / resolved
        paths[slot] = resolved
    return paths


def _draw_image(axes: Axes, path: Path | None, title: str) -> None:
    axes.set_axis_off()
    axes.set_title(title, fontsize=9)
    if path is None:
        axes.text(0.5, 0.5, "missing", ha="center", va="center", color="grey")
        return
    try:
        pixels = read_image(path).pixels
    except UnreadableImage as error:
        # One bad file should not stop a notebook: say why in place of the image.
        axes.text(
            0.5,
            0.5,
            textwrap.fill(f"unreadable: {error.reason}", 30),
            ha="center",
            va="center",
            color="tab:red",
            fontsize=7,
        )
        return
    axes.imshow(pixels, cmap="gray", vmin=0.0, vmax=1.0)


def _draw_text(axes: Axes, sections: Sequence[tuple[str, str]]) -> None:
    axes.set_axis_off()
    blocks = []
    for heading, text in sections:
        paragraphs = [textwrap.fill(p, _TEXT_WIDTH) for p in (text or "(empty)").splitlines()]
        blocks.append(f"{heading}\n" + "\n".join(paragraphs))
    axes.text(0.0, 1.0, "\n\n".join(blocks), va="top", ha="left", fontsize=8, family="monospace")


def show_study(
    source: Study | PredictionLike,
    reference: ReferenceLike | None = None,
    image_root: Path | None = None,
    slots: Sequence[str] = IMAGE_SLOTS,
) -> Figure:
    """The study's images (frontal, lateral, prior) beside its generated and reference report.

    Args:
        source: a Prediction or reports.jsonl row (its text is the generated report), or a
            Study (its known report is shown as the reference).
        reference: the reference report: text, a Study, or a row with findings/impression.
        image_root: folder that relative image paths start from.
        slots: image slots to draw, in order; a missing image is drawn as a labelled blank.
    """
    paths = image_paths(source, image_root)
    sections: list[tuple[str, str]] = []
    if isinstance(source, Study):
        study_id = source.study_id
        reference = source if reference is None else reference
    else:
        row = as_row(source)
        study_id = str(row.get("study_id", ""))
        sections.append(("GENERATED", labelled_report(row)))
    shown_reference = reference_text(reference)
    if shown_reference is not None:
        sections.append(("REFERENCE", shown_reference))
    figure, grid = plt.subplots(
        1,
        len(slots) + 1,
        figsize=(3.0 * len(slots) + 5.0, 3.6),
        gridspec_kw={"width_ratios": [1.0] * len(slots) + [1.8]},
        squeeze=False,
    )
    axes = grid[0]
    for axis, slot in zip(axes[:-1], slots, strict=True):
        _draw_image(axis, paths.get(slot), SLOT_TITLES.get(slot, slot))
    _draw_text(axes[-1], sections)
    figure.suptitle(study_id, fontsize=9)
    figure.tight_layout()
    return figure


def show_prior_comparison(prediction: PredictionLike, image_root: Path | None = None) -> Figure:
    """Prior and current frontal image side by side, with the change head's probabilities."""
    row = as_row(prediction)
    paths = image_paths(row, image_root)
    figure, axes = plt.subplots(
        1, 3, figsize=(11.0, 3.6), gridspec_kw={"width_ratios": [1.0, 1.0, 1.4]}
    )
    _draw_image(axes[0], paths.get("prior_frontal"), "prior")
    _draw_image(axes[1], paths.get("frontal"), "current")
    plot_change_probabilities(row, axes[2])
    prior = row.get("prior_study_id")
    figure.suptitle(
        f"{row.get('study_id', '')} (prior: {'none' if is_missing(prior) else prior})", fontsize=9
    )
    figure.tight_layout()
    return figure
