"""cxr.io.dicom: the reader on every real file in ../shared/data/cxr-dicom and on generated files."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from cxr.io import DicomHeader, UnreadableImage, XrayImage, read_header, read_image
from cxr.io.dicom import parse_da, parse_dt, parse_tm

# Public test files carry odd values (invalid UIs) and fuzzed ones end early: pydicom warns.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning"),
    pytest.mark.filterwarnings("ignore:End of file reached:UserWarning"),
]

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-dicom"

# Files the reader must refuse, and a word the reason must contain (see README.txt there).
REFUSED = {
    "ExplVR_BigEnd.dcm": "colour photometric RGB",
    "SC_rgb_jpeg_gdcm.dcm": "colour photometric RGB",
    "gdcm-US-RGB-8-esopecho.dcm": "colour photometric RGB",
    "MR_truncated.dcm": "truncated pixel data",
    "RG2_JPLY.dcm": "python-gdcm",
    "nema-mr1_jply.dcm": "python-gdcm",
    "multiframe-test1.dcm": "multi-frame (16 frames)",
    "dwv-test_no-number-rows.dcm": "Rows missing",
}
# Distinct real chest radiographs whose headers are truthful.
CHESTS = (
    "siim-acr-pneumothorax-cr-chest.dcm",
    "nih-cxr14-dx-chest.dcm",
    "CR-MONO1-10-chest",
    "gdcm-CR-MONO1-10-chest.dcm",
)


def _inventory() -> list[dict[str, str]]:
    with (SHARED / "inventory.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _inventory_names() -> list[str]:
    return [row["file"] for row in _inventory()] if SHARED.is_dir() else []


def assert_contract(image: XrayImage) -> None:
    """The output contract every successful read must meet."""
    assert image.pixels.dtype == np.float32
    assert image.pixels.ndim == 2
    assert np.isfinite(image.pixels).all()
    assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0


# --- real files ----------------------------------------------------------------------------------


def test_inventory_lists_every_file(cxr_dicom: Path) -> None:
    on_disk = {p.name for p in cxr_dicom.iterdir() if p.suffix not in (".txt", ".tsv")}
    assert on_disk == set(_inventory_names())


@pytest.mark.parametrize("name", _inventory_names())
def test_real_file_decodes_or_is_refused_with_its_reason(cxr_dicom: Path, name: str) -> None:
    row = next(row for row in _inventory() if row["file"] == name)
    if name in REFUSED:
        with pytest.raises(UnreadableImage) as refused:
            read_image(cxr_dicom / name)
        assert REFUSED[name] in refused.value.reason
        assert refused.value.path == str(cxr_dicom / name)
        return
    image = read_image(cxr_dicom / name)
    assert_contract(image)
    assert image.pixels.shape == (int(row["rows"]), int(row["cols"]))
    assert image.pixels.std() > 0.05, "a real image must not come out flat"
    assert image.header.photometric_interpretation == row["photometric"]
    assert image.header.bits_stored == int(row["bits_stored"])


@pytest.mark.parametrize("name", CHESTS)
def test_real_chests_are_bright_where_dense(cxr_dicom: Path, name: str) -> None:
    pixels = read_image(cxr_dicom / name).pixels
    height, width = pixels.shape

    def region(rows: tuple[float, float], cols: tuple[float, float]) -> float:
        return float(
            pixels[
                int(rows[0] * height) : int(rows[1] * height),
                int(cols[0] * width) : int(cols[1] * width),
            ].mean()
        )

    mediastinum = region((0.3, 0.7), (0.45, 0.55))
    lungs = (region((0.3, 0.6), (0.2, 0.35)) + region((0.3, 0.6), (0.65, 0.8))) / 2
    assert mediastinum > lungs + 0.2


def test_monochrome1_header_inverts_the_same_pixels(cxr_dicom: Path) -> None:
    original = read_image(cxr_dicom / "siim-acr-pneumothorax-cr-chest.dcm").pixels
    relabelled = read_image(cxr_dicom / "Fake_MONOHR1.dcm").pixels
    np.testing.assert_allclose(relabelled, 1.0 - original, atol=1e-6)


def test_headerless_legacy_file_reads_like_its_rewritten_copy(cxr_dicom: Path) -> None:
    legacy = read_image(cxr_dicom / "CR-MONO1-10-chest")
    rewritten = read_image(cxr_dicom / "gdcm-CR-MONO1-10-chest.dcm")
    np.testing.assert_array_equal(legacy.pixels, rewritten.pixels)
    assert legacy.header.transfer_syntax == ImplicitVRLittleEndian
    assert legacy.header.photometric_interpretation == "MONOCHROME1"
    # Legacy ACR-NEMA dates: '1993.02.24' and '17:58:00'.
    assert legacy.header.acquisition_datetime == datetime(1993, 2, 24, 17, 58)


def test_header_fields_of_a_real_chest(cxr_dicom: Path) -> None:
    header = read_header(cxr_dicom / "siim-acr-pneumothorax-cr-chest.dcm")
    dataset = pydicom.dcmread(cxr_dicom / "siim-acr-pneumothorax-cr-chest.dcm")
    assert header.sop_instance_uid == dataset.SOPInstanceUID
    assert header.study_instance_uid == dataset.StudyInstanceUID
    assert header.patient_id == dataset.PatientID
    assert (header.modality, header.view_position, header.body_part_examined) == (
        "CR",
        "PA",
        "CHEST",
    )
    assert (header.rows, header.columns, header.bits_stored) == (1024, 1024, 8)
    assert header.transfer_syntax == JPEGBaseline8Bit
    assert header.study_datetime is not None


def test_undecodable_syntax_names_the_syntax_and_the_package(cxr_dicom: Path) -> None:
    with pytest.raises(UnreadableImage) as refused:
        read_image(cxr_dicom / "RG2_JPLY.dcm")
    assert "JPEG Extended" in refused.value.reason
    assert "python-gdcm" in refused.value.reason


def test_modality_lut_sequence_monochrome1_comes_out_inverted(cxr_dicom: Path) -> None:
    path = cxr_dicom / "CR-ModalitySequenceLUT.dcm"
    stored = pydicom.dcmread(path).pixel_array[::8, ::8].astype(np.float64)
    pixels = read_image(path).pixels[::8, ::8].astype(np.float64)
    assert np.corrcoef(stored.ravel(), pixels.ravel())[0, 1] < -0.8


def test_empty_lut_sequences_are_treated_as_absent(cxr_dicom: Path) -> None:
    path = cxr_dicom / "leadtools-8BitsJpegLossyGrayScale.dcm"
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    pixels = read_image(path).pixels.astype(np.float64)
    assert np.corrcoef(stored.ravel(), pixels.ravel())[0, 1] > 0.95


# --- generated: photometric, BitsStored, signedness --------------------------------------------


def test_monochrome2_and_monochrome1_are_mirror_images(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    values = make.ramp((64, 32), 0, 4095, np.uint16)
    mono2 = read_image(make.write_dicom(tmp_path / "m2.dcm", values, bits_stored=12)).pixels
    mono1 = read_image(
        make.write_dicom(tmp_path / "m1.dcm", values, bits_stored=12, photometric="MONOCHROME1")
    ).pixels
    assert mono2[-1, 0] > mono2[0, 0]  # a higher stored value is denser in MONOCHROME2
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)


@pytest.mark.parametrize("bits_stored", [10, 12, 14, 15, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_bits_stored_and_signedness(
    tmp_path: Path, make: SimpleNamespace, bits_stored: int, signed: bool
) -> None:
    low, high = (
        (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1)
        if signed
        else (0, 2**bits_stored - 1)
    )
    values = make.ramp((200, 16), low, high, np.int16 if signed else np.uint16)
    dataset = make.dicom_dataset(values, bits_stored=bits_stored)
    raw = values.astype(np.int64) & (2**bits_stored - 1)  # two's complement within BitsStored
    if bits_stored < 16:
        raw |= 0b1010 << bits_stored  # garbage above HighBit (e.g. overlay bits) must be ignored
    dataset.PixelData = (raw & 0xFFFF).astype(np.uint16).tobytes()
    dataset.save_as(tmp_path / "bits.dcm", enforce_file_format=True)

    pixels = read_image(tmp_path / "bits.dcm").pixels
    column = pixels[:, 0]
    assert np.all(np.diff(column) >= 0), "output must rise with the stored value"
    assert column[0] == 0.0 and column[-1] == 1.0  # percentile window over the full ramp
    middle = np.searchsorted(values[:, 0], (low + high) / 2)
    assert column[middle] == pytest.approx(0.5, abs=0.03)


# --- generated: Modality LUT, VOI LUT, windows --------------------------------------------------


def _linear_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 scaled to [0, 1]."""
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def test_rescale_then_window_in_rescaled_units(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = make.ramp((256, 16), 0, 4095, np.uint16)
    path = make.write_dicom(
        tmp_path / "rescale.dcm", stored, bits_stored=12,
        RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=1000, WindowWidth=2000,
    )  # fmt: skip
    pixels = read_image(path).pixels[:, 0]
    expected = _linear_window(stored[:, 0] * 2.0 - 1000, 1000, 2000)
    np.testing.assert_allclose(pixels, expected, atol=1e-3)


def test_first_window_pair_is_used(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = make.ramp((256, 16), 0, 4095, np.uint16)
    path = make.write_dicom(
        tmp_path / "two-windows.dcm", stored, bits_stored=12,
        WindowCenter=[1000, 3000], WindowWidth=[800, 400],
    )  # fmt: skip
    np.testing.assert_allclose(
        read_image(path).pixels[:, 0], _linear_window(stored[:, 0], 1000, 800), atol=1e-3
    )


def test_voi_lut_function_sigmoid_and_linear_exact(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = make.ramp((4096, 16), 0, 4095, np.uint16)
    sigmoid = read_image(
        make.write_dicom(
            tmp_path / "sigmoid.dcm",
            stored,
            bits_stored=12,
            WindowCenter=2000,
            WindowWidth=1000,
            VOILUTFunction="SIGMOID",
        )
    ).pixels[:, 0]
    assert sigmoid[2000] == pytest.approx(0.5, abs=1e-3)
    assert sigmoid[2500] == pytest.approx(1 / (1 + math.exp(-2)), abs=1e-3)
    exact = read_image(
        make.write_dicom(
            tmp_path / "exact.dcm",
            stored,
            bits_stored=12,
            WindowCenter=2000,
            WindowWidth=1000,
            VOILUTFunction="LINEAR_EXACT",
        )
    ).pixels[:, 0]
    assert exact[2000] == pytest.approx(0.5, abs=1e-6)
    assert exact[2250] == pytest.approx(0.75, abs=1e-6)
    assert exact[1500] == 0.0 and exact[2500] == 1.0


def _voi_lut_item(entries: np.ndarray, first_mapped: int, bits: int) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [len(entries), first_mapped, bits])  # LUTDescriptor
    item.add_new(0x00283006, "US", [int(v) for v in entries])  # LUTData
    return item


def test_voi_lut_sequence_is_applied_and_preferred_over_the_window(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    stored = make.ramp((256, 16), 0, 255, np.uint8)
    lut = np.round(np.sqrt(np.arange(256) / 255) * 4095).astype(np.uint16)  # a gamma curve
    path = make.write_dicom(
        tmp_path / "voilut.dcm", stored,
        VOILUTSequence=[_voi_lut_item(lut, 0, 12)], WindowCenter=10, WindowWidth=5,
    )  # fmt: skip
    np.testing.assert_allclose(read_image(path).pixels[:, 0], lut[stored[:, 0]] / 4095, atol=1e-6)


def test_modality_lut_sequence_is_applied(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = make.ramp((256, 16), 0, 255, np.uint8)
    lut = (255 - np.arange(256)).astype(np.uint16) * 16  # an inverting modality LUT
    path = make.write_dicom(
        tmp_path / "modlut.dcm", stored, ModalityLUTSequence=[_voi_lut_item(lut, 0, 12)]
    )
    pixels = read_image(path).pixels[:, 0]
    assert pixels[0] == 1.0 and pixels[-1] == 0.0
    assert np.all(np.diff(pixels) <= 0)


def test_percentile_window_ignores_outliers(tmp_path: Path, make: SimpleNamespace) -> None:
    values = make.ramp((200, 200), 1000, 2000, np.uint16)
    values[0, :5] = 60000  # a few hot pixels (e.g. a burnt-in marker)
    pixels = read_image(make.write_dicom(tmp_path / "hot.dcm", values)).pixels
    assert pixels[0, :5].min() == 1.0
    assert pixels[100, 100] == pytest.approx(0.5, abs=0.02)


def test_padding_is_dark_and_excluded_from_the_window(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    values = make.ramp((100, 100), 100, 900, np.uint16)
    values[:, :20] = 4000  # collimator padding, brightest stored value
    path = make.write_dicom(
        tmp_path / "padded.dcm", values, bits_stored=12, photometric="MONOCHROME1",
        PixelPaddingValue=4000,
    )  # fmt: skip
    pixels = read_image(path).pixels
    assert pixels[:, :20].max() == 0.0
    body = pixels[:, 20:]
    assert body.min() == 0.0 and body.max() == 1.0  # the window spans the body only
    assert body[0, 0] > body[-1, 0]  # MONOCHROME1: low stored value is dense


def test_window_that_saturates_everything_falls_back_to_percentiles(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    values = make.ramp((100, 16), 1000, 2000, np.uint16)
    path = make.write_dicom(tmp_path / "bad-window.dcm", values, WindowCenter=30000, WindowWidth=10)
    pixels = read_image(path).pixels
    assert pixels[0, 0] == 0.0 and pixels[-1, 0] == 1.0


def test_generated_chest_phantom_is_bright_where_dense(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    for photometric, values in (
        ("MONOCHROME2", make.chest_phantom()),
        ("MONOCHROME1", 4095 - make.chest_phantom()),
    ):
        path = make.write_dicom(
            tmp_path / f"{photometric}.dcm", values, bits_stored=12, photometric=photometric
        )
        pixels = read_image(path).pixels
        assert pixels[64, 64] > pixels[64, 38] + 0.4  # mediastinum brighter than the lung
        assert pixels[2, 64] < pixels[64, 38]  # air darker than the lung


# --- generated: transfer syntaxes ----------------------------------------------------------------

LOSSLESS = [
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
]


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda uid: uid.name)
def test_lossless_syntaxes_decode_exactly(
    tmp_path: Path, make: SimpleNamespace, syntax: str
) -> None:
    values = make.chest_phantom()
    reference = read_image(make.write_dicom(tmp_path / "native.dcm", values, bits_stored=12))
    encoded = read_image(
        make.write_dicom(tmp_path / "encoded.dcm", values, bits_stored=12, transfer_syntax=syntax)
    )
    assert encoded.header.transfer_syntax == syntax
    np.testing.assert_array_equal(encoded.pixels, reference.pixels)


@pytest.mark.parametrize("syntax", [JPEG2000, JPEGBaseline8Bit], ids=lambda uid: uid.name)
def test_lossy_syntaxes_decode_closely(tmp_path: Path, make: SimpleNamespace, syntax: str) -> None:
    values = (make.chest_phantom() // 16).astype(np.uint8)
    reference = read_image(make.write_dicom(tmp_path / "native.dcm", values))
    encoded = read_image(make.write_dicom(tmp_path / "lossy.dcm", values, transfer_syntax=syntax))
    assert encoded.header.transfer_syntax == syntax
    assert np.abs(encoded.pixels - reference.pixels).mean() < 0.02


def test_file_without_preamble_is_read(tmp_path: Path, make: SimpleNamespace) -> None:
    dataset = make.dicom_dataset(make.chest_phantom(), bits_stored=12)
    del dataset.file_meta  # written as a bare implicit VR little endian data set
    dataset.save_as(tmp_path / "bare", implicit_vr=True, little_endian=True)
    assert (tmp_path / "bare").read_bytes()[128:132] != b"DICM"
    image = read_image(tmp_path / "bare")
    assert image.header.transfer_syntax == ImplicitVRLittleEndian
    assert image.pixels.shape == (128, 128)


# --- generated: refusals -------------------------------------------------------------------------


def _refusal(path: Path) -> str:
    with pytest.raises(UnreadableImage) as refused:
        read_image(path)
    assert refused.value.path == str(path)
    return refused.value.reason


def test_refuses_non_dicom_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image\n" * 20)
    (tmp_path / "empty.dcm").write_bytes(b"")
    assert "not DICOM" in _refusal(tmp_path / "notes.txt")
    assert "not DICOM" in _refusal(tmp_path / "empty.dcm")
    assert "cannot open" in _refusal(tmp_path / "missing.dcm")


def test_refuses_an_object_without_pixel_data(tmp_path: Path, make: SimpleNamespace) -> None:
    dataset = make.dicom_dataset(make.chest_phantom())
    del dataset.PixelData
    dataset.save_as(tmp_path / "nopixels.dcm", enforce_file_format=True)
    assert "no pixel data" in _refusal(tmp_path / "nopixels.dcm")


def test_refuses_colour_palette_multiframe_and_tiny(tmp_path: Path, make: SimpleNamespace) -> None:
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    make.write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB")
    assert "colour photometric RGB" in _refusal(tmp_path / "rgb.dcm")

    make.write_dicom(
        tmp_path / "palette.dcm", np.zeros((32, 32), np.uint8), photometric="PALETTE COLOR"
    )
    assert "palette colour" in _refusal(tmp_path / "palette.dcm")

    make.write_dicom(tmp_path / "frames.dcm", np.zeros((3, 32, 32), np.uint16))
    assert "multi-frame (3 frames)" in _refusal(tmp_path / "frames.dcm")

    make.write_dicom(tmp_path / "tiny.dcm", np.zeros((8, 8), np.uint16))
    assert "implausible size 8x8" in _refusal(tmp_path / "tiny.dcm")


def test_refuses_an_unknown_transfer_syntax(tmp_path: Path, make: SimpleNamespace) -> None:
    dataset = make.dicom_dataset(make.chest_phantom())
    dataset.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    dataset.save_as(
        tmp_path / "unknown.dcm", implicit_vr=False, little_endian=True, enforce_file_format=True
    )
    reason = _refusal(tmp_path / "unknown.dcm")
    assert "1.2.3.4.5.6" in reason


def test_refuses_truncated_pixel_data(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.write_dicom(tmp_path / "full.dcm", make.chest_phantom())
    (tmp_path / "cut.dcm").write_bytes(path.read_bytes()[:-1000])
    assert "truncated pixel data" in _refusal(tmp_path / "cut.dcm")


# --- generated: header values cxr checks before pydicom sees them ------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"BitsStored": 20}, "BitsStored 20 is not between 1 and BitsAllocated (16)"),
        ({"BitsAllocated": 12}, "BitsAllocated 12"),
        ({"BitsAllocated": None}, "BitsAllocated missing"),
        ({"SamplesPerPixel": None}, "SamplesPerPixel missing"),
        ({"PixelRepresentation": 2}, "PixelRepresentation 2: must be 0 (unsigned) or 1"),
        ({"PixelRepresentation": None}, "PixelRepresentation missing"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_refuses_pixel_module_values_naming_the_attribute(
    tmp_path: Path, make: SimpleNamespace, header: dict[str, object], reason: str
) -> None:
    path = make.write_dicom(tmp_path / "bad.dcm", make.chest_phantom(), **header)
    assert reason in _refusal(path)


def test_refuses_a_modality_lut_shorter_than_its_descriptor(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    stored = make.ramp((256, 16), 0, 255, np.uint8)
    short = _voi_lut_item(np.arange(100, dtype=np.uint16), 0, 16)
    short.LUTDescriptor = [256, 0, 16]  # promises 256 entries, holds 100
    path = make.write_dicom(tmp_path / "short-lut.dcm", stored, ModalityLUTSequence=[short])
    assert "invalid Modality LUT: LUTData holds 100 values for 256 entries" in _refusal(path)


def test_refuses_a_modality_lut_with_a_one_value_descriptor_in_implicit_vr(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    """In implicit VR, reading LUT Data makes pydicom index the descriptor (TypeError on one
    value); cxr checks the descriptor first and says what is wrong with it."""
    item = Dataset()
    item.add_new(0x00283002, "US", 256)  # LUTDescriptor: one value instead of three
    item.add_new(0x00283006, "US", list(range(256)))  # LUTData
    path = make.write_dicom(
        tmp_path / "one-value.dcm", make.ramp((256, 16), 0, 255, np.uint8),
        transfer_syntax=ImplicitVRLittleEndian, ModalityLUTSequence=[item],
    )  # fmt: skip
    assert "invalid Modality LUT: LUTDescriptor 256 is not 3 integers" in _refusal(path)


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        ({"WindowWidth": 0}, "WindowWidth 0 is below 1"),
        ({"VOILUTFunction": "GAMMA"}, "unknown VOILUTFunction 'GAMMA'"),
        ({"VOILUTFunction": "SIGMOID", "WindowWidth": -5}, "WindowWidth -5 is not positive"),
    ],
    ids=["zero-width", "unknown-function", "negative-width"],
)
def test_unusable_window_falls_back_to_percentiles_saying_why(
    tmp_path: Path,
    make: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
    window: dict[str, object],
    problem: str,
) -> None:
    stored = make.ramp((256, 16), 0, 4095, np.uint16)
    plain = read_image(make.write_dicom(tmp_path / "plain.dcm", stored, bits_stored=12)).pixels
    path = make.write_dicom(
        tmp_path / "window.dcm",
        stored,
        bits_stored=12,
        **({"WindowCenter": 1000, "WindowWidth": 800} | window),
    )
    with caplog.at_level("WARNING", logger="cxr.io.dicom"):
        pixels = read_image(path).pixels
    np.testing.assert_array_equal(pixels, plain)
    assert problem in caplog.text


def test_empty_voi_lut_function_means_linear(tmp_path: Path, make: SimpleNamespace) -> None:
    stored = make.ramp((256, 16), 0, 4095, np.uint16)
    path = make.write_dicom(
        tmp_path / "empty-function.dcm", stored, bits_stored=12,
        WindowCenter=1000, WindowWidth=800, VOILUTFunction="",
    )  # fmt: skip
    np.testing.assert_allclose(
        read_image(path).pixels[:, 0], _linear_window(stored[:, 0], 1000, 800), atol=1e-3
    )


def test_unusable_voi_lut_gives_way_to_the_window(
    tmp_path: Path, make: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    stored = make.ramp((256, 16), 0, 255, np.uint8)
    nine_bit = _voi_lut_item(np.arange(256, dtype=np.uint16), 0, 9)  # pydicom has no 9-bit LUT
    path = make.write_dicom(
        tmp_path / "nine-bit.dcm", stored,
        VOILUTSequence=[nine_bit], WindowCenter=100, WindowWidth=101,
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="cxr.io.dicom"):
        pixels = read_image(path).pixels[:, 0]
    np.testing.assert_allclose(pixels, _linear_window(stored[:, 0], 100, 101), atol=1e-3)
    assert "9 bits per LUT entry" in caplog.text


def test_corrupt_element_is_named(tmp_path: Path, make: SimpleNamespace) -> None:
    path = make.write_dicom(tmp_path / "chest.dcm", make.chest_phantom(), PatientID="PATIENT-7")
    data = path.read_bytes()
    at = data.index(b"LO" + len(b"PATIENT-7 ").to_bytes(2, "little") + b"PATIENT-7")
    (tmp_path / "bad-vr.dcm").write_bytes(data[:at] + b"ZZ" + data[at + 2 :])  # no such VR
    with pytest.raises(UnreadableImage) as refused:
        read_header(tmp_path / "bad-vr.dcm")
    assert "corrupt PatientID element" in refused.value.reason
    assert "ZZ" in refused.value.reason


# --- PNG / JPEG ----------------------------------------------------------------------------------


def test_png_8_and_16_bit(tmp_path: Path, make: SimpleNamespace) -> None:
    eight = read_image(
        make.write_png(tmp_path / "eight.png", make.ramp((64, 16), 0, 255, np.uint8))
    )
    assert_contract(eight)
    assert eight.pixels[0, 0] == 0.0 and eight.pixels[-1, 0] == 1.0
    assert eight.header.sop_instance_uid is None and eight.header.bits_stored == 8

    twelve_bit = make.ramp((64, 16), 0, 4095, np.uint16)  # 12-bit data in a 16-bit PNG
    sixteen = read_image(make.write_png(tmp_path / "sixteen.png", twelve_bit))
    assert sixteen.header.bits_stored == 12
    np.testing.assert_allclose(sixteen.pixels[:, 0], twelve_bit[:, 0] / 4095, atol=1e-6)


def test_jpeg_and_grey_rgb_are_read_colour_is_refused(
    tmp_path: Path, make: SimpleNamespace
) -> None:
    grey = (make.chest_phantom() // 16).astype(np.uint8)
    from PIL import Image

    Image.fromarray(grey).save(tmp_path / "chest.jpg", quality=95)
    jpeg = read_image(tmp_path / "chest.jpg")
    assert np.abs(jpeg.pixels - grey / 255).mean() < 0.02

    make.write_png(tmp_path / "grey-rgb.png", np.stack([grey] * 3, axis=-1))
    np.testing.assert_allclose(read_image(tmp_path / "grey-rgb.png").pixels, grey / 255, atol=1e-6)

    colour = np.stack([grey, grey // 2, grey], axis=-1)
    make.write_png(tmp_path / "colour.png", colour)
    assert "colour RGB image" in _refusal(tmp_path / "colour.png")

    (tmp_path / "cut.png").write_bytes((tmp_path / "grey-rgb.png").read_bytes()[:200])
    assert "corrupt PNG/JPEG" in _refusal(tmp_path / "cut.png")


# --- dates ---------------------------------------------------------------------------------------


def test_dicom_date_and_time_parsing() -> None:
    assert parse_da("20240131") == date(2024, 1, 31)
    assert parse_da("1993.02.24") == date(1993, 2, 24)
    assert parse_da("20241399") is None and parse_da("") is None and parse_da(None) is None
    assert parse_tm("0930") == time(9, 30)
    assert parse_tm("235960.5") == time(23, 59, 59, 500000)
    assert parse_tm("17:58:00") == time(17, 58)
    assert parse_tm("9") is None
    assert parse_dt("20240131093000.25+0100") == datetime(2024, 1, 31, 9, 30, 0, 250000)
    assert DicomHeader(study_date="20240131").study_datetime == datetime(2024, 1, 31)


# --- fuzzing: nothing but UnreadableImage escapes -------------------------------------------------

FUZZ_SOURCES = (
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEG2000.dcm",
    "CR-MONO1-10-chest",
    "gdcm-CR-MONO1-10-chest.dcm",
)
FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read_or_refuse(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        image = read_image(path)
    except UnreadableImage as refused:
        assert refused.reason
        return
    assert_contract(image)


@FUZZ
@given(data=st.binary(min_size=0, max_size=2048))
def test_random_bytes_only_raise_unreadable_image(tmp_path: Path, data: bytes) -> None:
    _read_or_refuse(tmp_path / "random.dcm", data)


@FUZZ
@given(source=st.sampled_from(FUZZ_SOURCES), fraction=st.floats(0.0, 1.0))
def test_truncated_real_files_only_raise_unreadable_image(
    tmp_path: Path, cxr_dicom: Path, source: str, fraction: float
) -> None:
    data = (cxr_dicom / source).read_bytes()
    _read_or_refuse(tmp_path / "truncated.dcm", data[: int(len(data) * fraction)])


@FUZZ
@given(
    source=st.sampled_from(FUZZ_SOURCES),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), min_size=1, max_size=8),
    in_header=st.booleans(),
)
def test_bit_flipped_real_files_only_raise_unreadable_image(
    tmp_path: Path,
    cxr_dicom: Path,
    source: str,
    flips: list[tuple[float, int]],
    in_header: bool,
) -> None:
    data = bytearray((cxr_dicom / source).read_bytes())
    span = min(len(data), 1500) if in_header else len(data)  # headers are where flips bite
    for position, bit in flips:
        data[int(position * (span - 1))] ^= 1 << bit
    _read_or_refuse(tmp_path / "flipped.dcm", bytes(data))


def test_missing_decoder_plugin_names_the_package(
    tmp_path: Path, make: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make.write_dicom(tmp_path / "rle.dcm", make.chest_phantom(), transfer_syntax=RLELossless)
    unavailable = SimpleNamespace(
        is_available=False, missing_dependencies=["gdcm - requires gdcm>=3.0.10"]
    )
    monkeypatch.setattr("cxr.io.dicom.get_decoder", lambda syntax: unavailable)
    reason = _refusal(path)
    assert "RLE Lossless" in reason and "install python-gdcm" in reason


# --- cxr's own errors are not the file's ---------------------------------------------------------


_WINDOW = {"WindowCenter": 2000, "WindowWidth": 3000}


@pytest.mark.parametrize(
    ("helper", "error", "header"),
    [
        ("_percentile_window", TypeError, {}),
        ("_voi_output_range", KeyError, _WINDOW),
        ("_rescale", AttributeError, _WINDOW),
        ("_padding_mask", AssertionError, {}),
        ("_sample", RuntimeError, _WINDOW),
        ("_spacing", IndexError, {}),
        ("_acquisition_datetime", ValueError, {}),
    ],
)
def test_a_bug_in_cxr_code_propagates_instead_of_refusing_the_file(
    tmp_path: Path,
    make: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    helper: str,
    error: type[Exception],
    header: dict[str, object],
) -> None:
    """A valid file read through a broken cxr helper: the helper's error must reach the caller,
    neither as UnreadableImage ("corrupt file") nor as a warning and a percentile window."""
    path = make.write_dicom(tmp_path / "chest.dcm", make.chest_phantom(), bits_stored=12, **header)
    assert_contract(read_image(path))

    def broken(*args: object, **kwargs: object) -> None:
        raise error(f"bug in cxr.io.dicom.{helper}")

    monkeypatch.setattr(f"cxr.io.dicom.{helper}", broken)
    with caplog.at_level("WARNING", logger="cxr.io.dicom"), pytest.raises(error, match="bug in"):
        read_image(path)
    assert caplog.text == ""
