"""A contact sheet of phantom images with their ground truth, for a person to judge at a glance.

Regenerate the README image with:
    python -m cxr.synth.contact_sheet docs/images/phantom_contact_sheet.png
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cxr.synth.phantom import render_view
from cxr.synth.sampling import sample_patient
from cxr.synth.truth import StudyTruth

log = logging.getLogger(__name__)

_SHORT = {
    "Normal": "ok",
    "Borderline": "bord",
    "Abnormal": "ABN",
    "Incompletely Imaged": "incompl",
    "Present": "",
}


def caption(study: StudyTruth) -> str:
    """One short line of devices and findings, e.g. "ETT ABN, CVC ok | effusion_left:small"."""
    devices = ", ".join(
        f"{d.device.value} {_SHORT[d.placement.value]}".strip() for d in study.devices
    )
    findings = ", ".join(
        f"{f.key.replace('pleural_', '')}:{f.severity_word}"
        for f in study.findings
        if f.finding.value != "pneumonia"
    )
    return " | ".join(p for p in (devices, findings) if p) or "normal"


def pick_studies(seed: int, count: int) -> list[StudyTruth]:
    """A varied selection: studies with devices, with findings, normal ones, and laterals."""
    chosen: list[StudyTruth] = []
    number = 0
    while len(chosen) < count and number < 500:
        for study in sample_patient(seed, number).studies[:1]:
            wants_devices = len(chosen) % 3 != 2
            if bool(study.devices) == wants_devices or number > 200:
                chosen.append(study)
        number += 1
    return chosen[:count]


def contact_sheet(
    seed: int = 7, columns: int = 5, rows: int = 3, tile: int = 192, size: int = 512
) -> Image.Image:
    """Frontal images (and one lateral per row) with captions, as one grayscale image."""
    studies = pick_studies(seed, columns * rows)
    sheet = Image.new("L", (columns * tile, rows * (tile + 14)), 0)
    draw = ImageDraw.Draw(sheet)
    for index, study in enumerate(studies):
        lateral = index % columns == columns - 1 and study.lateral is not None
        pixels = render_view(study, lateral, size, seed)
        image = Image.fromarray((pixels * 255).astype(np.uint8)).resize(
            (tile, tile), Image.Resampling.BILINEAR
        )
        x, y = (index % columns) * tile, (index // columns) * (tile + 14)
        sheet.paste(image, (x, y))
        text = ("LAT " if lateral else f"{study.frontal.view.value} ") + caption(study)
        draw.text((x + 2, y + tile + 1), text[: tile // 6], fill=255)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(args.seed).save(args.output, optimize=True)
    log.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
