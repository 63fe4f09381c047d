"""Contact sheet: a grid of captioned phantom images a person can judge at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cxr.synth.contact_sheet import caption, contact_sheet, pick_studies

README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "phantom_contact_sheet.png"


def test_contact_sheet_is_written_to_the_test_output(tmp_path: Path) -> None:
    sheet = contact_sheet(seed=7, columns=4, rows=2, tile=96, size=192)
    path = tmp_path / "phantom_contact_sheet.png"
    sheet.save(path)
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (2 * (96 + 14), 4 * 96)
    tiles = [
        pixels[r * 110 : r * 110 + 96, c * 96 : (c + 1) * 96] for r in range(2) for c in range(4)
    ]
    assert all(tile.std() > 20 for tile in tiles)  # every tile holds an image, not a blank


def test_selection_mixes_devices_and_no_devices() -> None:
    studies = pick_studies(7, 9)
    assert len(studies) == 9
    assert any(s.devices for s in studies) and any(not s.devices for s in studies)
    assert all(caption(s) for s in studies)


def test_readme_image_is_committed_and_small() -> None:
    assert README_IMAGE.is_file(), "run: python -m cxr.synth.contact_sheet " + str(README_IMAGE)
    assert README_IMAGE.stat().st_size < 400_000
