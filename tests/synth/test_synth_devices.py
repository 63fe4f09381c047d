"""Devices are drawn in the zone their label says, and stay visible at 128 px."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cxr.synth import Device, DeviceTruth, Placement, StudyTruth, Thorax, Variant, render_view
from cxr.synth.devices import frontal_path, lateral_path, subclavian_confluence, tip
from cxr.synth.phantom import layers_for

EPS = 1e-6


def ett_zone_ok(t: Thorax, d: DeviceTruth) -> bool:
    above = (t.carina_y - tip(t, d)[1]) * t.fov_cm  # cm above the carina
    if d.placement is Placement.NORMAL:
        return 3.0 - EPS <= above <= 7.0 + EPS
    if d.placement is Placement.BORDERLINE:
        return 1.0 - EPS <= above <= 2.5 + EPS or 7.5 - EPS <= above <= 8.5 + EPS
    return above < -1.0 or above >= 9.5 - EPS  # in a bronchus, or high in the neck


def ngt_zone_ok(t: Thorax, d: DeviceTruth) -> bool:
    x, y = tip(t, d)
    gy = t.ge_junction[1]
    if d.placement is Placement.NORMAL:
        return y > t.diaphragm_left_y + t.cm(1.0) and x > t.midline_x
    if d.placement is Placement.BORDERLINE:
        return abs(y - gy) <= t.cm(2.0)
    if d.placement is Placement.INCOMPLETELY_IMAGED:
        return y > 1.05  # below the inferior edge of the image
    return y < t.diaphragm_right_y - t.cm(3.0)  # coiled in the chest or down the airway


def cvc_zone_ok(t: Thorax, d: DeviceTruth) -> bool:
    _, y = tip(t, d)
    below = (y - t.cavoatrial_y) * t.fov_cm  # cm below the cavoatrial junction
    if d.placement is Placement.NORMAL:
        return -2.5 - EPS <= below <= 0.5 + EPS
    if d.placement is Placement.BORDERLINE:
        return -5.5 - EPS <= below <= -4.0 + EPS or 1.5 - EPS <= below <= 2.5 + EPS
    if d.variant is Variant.ATRIAL:
        return below >= 4.5 - EPS
    assert d.access is not None
    return y < subclavian_confluence(t, d.access)[1] - t.cm(2.0)  # turned up the neck


def test_every_device_tip_lies_in_its_labelled_zone(studies: list[StudyTruth]) -> None:
    check = {Device.ETT: ett_zone_ok, Device.NGT: ngt_zone_ok, Device.CVC: cvc_zone_ok}
    counted: dict[tuple[Device, Placement], int] = {}
    for study in studies:
        for device in study.devices:
            if device.device in check:
                assert check[device.device](study.thorax, device), (
                    device,
                    tip(study.thorax, device),
                )
                key = (device.device, device.placement)
                counted[key] = counted.get(key, 0) + 1
    assert len(counted) == 10  # every status of ETT, NGT and CVC was checked


def test_zones_of_different_labels_do_not_overlap(studies: list[StudyTruth]) -> None:
    """Moving a normal ETT tip into a bronchus must fail the normal-zone check."""
    study = next(
        s for s in studies if (d := s.device(Device.ETT)) and d.placement is Placement.NORMAL
    )
    ett = study.device(Device.ETT)
    assert ett is not None
    moved = replace(ett, tip_to_carina_cm=-2.0)
    assert not ett_zone_ok(study.thorax, moved)


def test_swan_ganz_ends_in_a_pulmonary_artery(studies: list[StudyTruth]) -> None:
    seen = 0
    for study in studies:
        swan = study.device(Device.SWAN_GANZ)
        if swan is None:
            continue
        t = study.thorax
        x, y = tip(t, swan)
        assert abs(y - t.carina_y) < t.cm(3.0) and abs(x - t.midline_x) > t.cm(2.0)
        assert (x > t.midline_x) == (swan.side is not None and swan.side.value == "left")
        seen += 1
    assert seen >= 5


def test_lateral_path_keeps_the_heights_of_the_frontal_path(studies: list[StudyTruth]) -> None:
    for study in [s for s in studies if s.devices][:50]:
        for device in study.devices:
            front, side = frontal_path(study.thorax, device), lateral_path(study.thorax, device)
            np.testing.assert_allclose(front[:, 1], side[:, 1])


@pytest.mark.parametrize("size", [128, 224])
def test_devices_are_visible_at_small_sizes(studies: list[StudyTruth], size: int) -> None:
    """Same study with and without its devices: the device must add clear contrast."""
    with_devices = [s for s in studies if s.devices][:24]
    for study in with_devices:
        image = render_view(study, False, size, seed=3)
        bare = render_view(replace(study, devices=()), False, size, seed=3)
        difference = image - bare
        assert difference.max() > 0.15, study.devices
        assert (difference > 0.08).sum() >= size // 4, study.devices


def test_overlay_covers_the_tip_pixel(studies: list[StudyTruth]) -> None:
    size = 128
    for study in [s for s in studies if s.devices][:24]:
        overlay = layers_for(study, False, size, np.random.default_rng(0)).overlay
        for device in study.devices:
            x, y = tip(study.thorax, device)
            if not (0.0 < x < 1.0 and 0.0 < y < 1.0):
                continue
            row, col = int(y * size), int(x * size)
            patch = overlay[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
            assert patch.max() > 0.1, (device, x, y)
