"""One reader for every X-ray file cxr meets: DICOM (any decodable transfer syntax) and PNG/JPEG.

`read_image` returns float32 pixels in [0, 1] with bright = dense (bone, devices and fluid
bright, air dark) and the header fields the rest of cxr needs. The DICOM pixel pipeline follows
the standard's order: Modality LUT -> VOI LUT or window -> (if neither) a robust percentile
window -> MONOCHROME1 inverted -> PixelPaddingValue set to 0. `read_dataset` is how every part
of cxr reads a DICOM header, legacy files without the Part 10 preamble included.

A file cxr cannot interpret raises `UnreadableImage(path, reason)`. Two kinds of problem get
there: what pydicom, its codecs and Pillow raise about the file, caught at the one call that
raised it, and header values cxr checks itself before handing them to pydicom (a value pydicom
would trip over with a TypeError is refused here with its name). Any other exception is a bug
in cxr and propagates.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing, get_decoder
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from cxr.errors import UnreadableImage

log = logging.getLogger(__name__)

GREYSCALE_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
MIN_IMAGE_SIDE = 16
MAX_IMAGE_SIDE = 10_000
# Percentiles of the fallback window when the file carries neither a VOI LUT nor a window.
PERCENTILE_WINDOW = (0.5, 99.5)
# A header window that leaves fewer than this fraction of pixels unsaturated is ignored.
MIN_UNSATURATED_FRACTION = 0.01
_PERCENTILE_SAMPLES = 65_536
# Largest stored-value range pushed through the LUT/window as a lookup table.
_MAX_TABLE = 1 << 20

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Groups a DICOM data set without preamble (ACR-NEMA style) plausibly starts with.
_RAW_FIRST_GROUPS = (0x0002, 0x0008)

# What pydicom 3 raises about the bytes of a corrupt element, in dcmread and again on the first
# access to an element (values are converted lazily, pydicom.hooks.raw_element_value):
# EOFError, OSError ("No tag to read at file position", filereader.read_sequence_item),
# struct.error (a tag or length cut short, filereader.data_element_generator),
# BytesLengthException (a numeric value of the wrong length), NotImplementedError (an unknown
# VR) and ValueError (a value its converter rejects, UnicodeDecodeError included).
_ELEMENT_ERRORS: tuple[type[Exception], ...] = (
    EOFError,
    OSError,
    struct.error,
    BytesLengthException,
    NotImplementedError,
    ValueError,
)
# dcmread also raises InvalidDicomError: no 'DICM' marker, or a malformed File Meta group.
_READ_ERRORS: tuple[type[Exception], ...] = (InvalidDicomError, *_ELEMENT_ERRORS)
# Dataset.pixel_array: ValueError for pixel data pydicom finds malformed (fewer bytes than the
# header promises, broken encapsulation: pixels.decoders.base, encaps), RuntimeError when every
# decoding plugin failed (decoders.base._decode_frame wraps each codec's exception in it),
# struct.error from a cut-short offset table, and the element errors of what it reads.
_DECODE_ERRORS: tuple[type[Exception], ...] = (RuntimeError, *_ELEMENT_ERRORS)
# Pillow: OSError (UnidentifiedImageError, truncated or undecodable data), SyntaxError (a broken
# PNG chunk), ValueError (a truncated IHDR chunk), EOFError, DecompressionBombError.
_RASTER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

# Image Pixel attributes pydicom's decoder reads (pydicom.pixels.utils.as_pixel_options); each
# must be one integer or it fails with a TypeError deep inside.
_PIXEL_INTEGERS = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
)
_BITS_ALLOCATED = (8, 16, 32)
# pydicom.pixels.processing: entry sizes apply_modality_lut (as uint{bits}) and apply_voi accept.
_MODALITY_LUT_BITS = (8, 16)
_VOI_LUT_BITS = (8, *range(10, 17))
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

# pip packages behind pydicom's decoder plugin names, for actionable reasons.
_PLUGIN_PACKAGES = {
    "gdcm": "python-gdcm",
    "pylibjpeg": "pylibjpeg with pylibjpeg-libjpeg / pylibjpeg-openjpeg / pylibjpeg-rle",
    "pyjpegls": "pyjpegls",
    "pillow": "pillow",
}

VoiStep = Literal["lut", "window"]


@dataclass(frozen=True)
class DicomHeader:
    """The header items cxr uses; any may be None (PNG/JPEG inputs have almost none)."""

    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    patient_id: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    modality: str | None = None
    view_position: str | None = None
    laterality: str | None = None
    body_part_examined: str | None = None
    patient_orientation: str | None = None
    pixel_spacing: tuple[float, float] | None = None
    photometric_interpretation: str | None = None
    bits_stored: int | None = None
    manufacturer: str | None = None
    series_description: str | None = None
    protocol_name: str | None = None
    rows: int | None = None
    columns: int | None = None
    transfer_syntax: str | None = None
    samples_per_pixel: int | None = None
    number_of_frames: int | None = None
    acquisition_datetime: datetime | None = None

    @property
    def study_datetime(self) -> datetime | None:
        """StudyDate + StudyTime (midnight when the time is missing), None without a date."""
        return combine_date_time(self.study_date, self.study_time)


@dataclass
class XrayImage:
    """Pixels (float32, H x W, [0, 1], bright = dense) with the header they came from."""

    pixels: np.ndarray
    header: DicomHeader
    path: str


def read_image(path: str | Path) -> XrayImage:
    """Reads one DICOM, PNG or JPEG file into bright = dense float32 pixels in [0, 1].

    Raises:
        UnreadableImage: the file is not an image cxr can interpret; the reason says why.
    """
    path = Path(path)
    if _raster_format(path) is not None:
        return _read_raster(path)
    dataset = _read_dataset(path, stop_before_pixels=False)
    header = _header_from_dataset(dataset, path)
    reason = unusable_reason(header)
    if reason is not None:
        raise UnreadableImage(path, reason)
    stored = _decode_pixels(dataset, path)
    return XrayImage(_to_display(stored, dataset, header, path), header, str(path))


def read_header(path: str | Path) -> DicomHeader:
    """Reads the header only (pixel data is not read); PNG/JPEG give size and bit depth.

    Raises:
        UnreadableImage: the file is neither DICOM nor PNG/JPEG, or its header is corrupt.
    """
    path = Path(path)
    if _raster_format(path) is not None:
        return _raster_header(path)
    return _header_from_dataset(_read_dataset(path, stop_before_pixels=True), path)


def read_dataset(path: str | Path) -> Dataset:
    """The pydicom data set of a DICOM file without its pixel data, read as all of cxr reads one.

    A file without the Part 10 preamble and 'DICM' marker (ACR-NEMA style) is read when it starts
    like a data set, and gets the transfer syntax the parser found. pydicom converts element
    values on first access, so a corrupt element the caller reads may still raise pydicom's own
    errors then; `read_header` reads the header items cxr uses with those caught.

    Raises:
        UnreadableImage: the file cannot be opened, is PNG/JPEG, is not DICOM, or is corrupt.
    """
    path = Path(path)
    kind = _raster_format(path)
    if kind is not None:
        raise UnreadableImage(path, f"a {kind} image, not DICOM: it has no DICOM header")
    return _read_dataset(path, stop_before_pixels=True)


def unusable_reason(header: DicomHeader) -> str | None:
    """Why a header cannot belong to an image cxr reads, or None when it can."""
    if header.rows is None or header.columns is None:
        missing = " and ".join(
            name
            for name, value in (("Rows", header.rows), ("Columns", header.columns))
            if value is None
        )
        return f"no image: {missing} missing (not an image object, or a corrupt header)"
    photometric = header.photometric_interpretation
    if photometric is None:
        return "PhotometricInterpretation missing: cannot tell how pixel values map to brightness"
    if photometric not in GREYSCALE_PHOTOMETRICS:
        kind = "palette colour" if photometric.startswith("PALETTE") else "colour"
        return f"{kind} photometric {photometric}: cxr reads greyscale radiographs only"
    if header.samples_per_pixel not in (None, 1):
        return f"{header.samples_per_pixel} samples per pixel: cxr reads greyscale radiographs only"
    if header.number_of_frames not in (None, 0, 1):
        return (
            f"multi-frame ({header.number_of_frames} frames): cxr reads single-frame "
            "radiographs; split the frames into separate files first"
        )
    return _size_reason(header.rows, header.columns)


def combine_date_time(date_text: str | None, time_text: str | None) -> datetime | None:
    """A datetime from DICOM DA and TM strings (also legacy '1993.02.24' / '17:58:00')."""
    day = parse_da(date_text)
    if day is None:
        return None
    return datetime.combine(day, parse_tm(time_text) or time())


def parse_da(text: str | None) -> date | None:
    """A DICOM DA value ('YYYYMMDD', legacy 'YYYY.MM.DD') as a date, None when malformed."""
    digits = re.sub(r"[.\-/]", "", (text or "").strip())
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def parse_tm(text: str | None) -> time | None:
    """A DICOM TM value ('HH', 'HHMM', 'HHMMSS.FFFFFF', legacy 'HH:MM:SS') as a time."""
    match = re.fullmatch(
        r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", (text or "").strip().replace(":", "")
    )
    if match is None:
        return None
    hour, minute, second, fraction = match.groups()
    try:
        return time(
            int(hour),
            int(minute or 0),
            min(int(second or 0), 59),  # leap second 60 is legal in TM
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None


def parse_dt(text: str | None) -> datetime | None:
    """A DICOM DT value ('YYYYMMDDHHMMSS.FFFFFF&ZZXX') as a naive datetime, offset dropped."""
    value = re.split(r"[+\-]", (text or "").strip(), maxsplit=1)[0]
    if len(value) < 8:
        return None
    return combine_date_time(value[:8], value[8:] or None)


# --- DICOM data set ----------------------------------------------------------------------


def _read_dataset(path: Path, stop_before_pixels: bool) -> Dataset:
    dataset: Dataset
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        if not _looks_like_raw_dicom(path):
            raise UnreadableImage(
                path,
                "not DICOM: no 'DICM' marker at byte 128 and the file does not start "
                "with a DICOM tag (nor is it PNG/JPEG)",
            ) from None
        dataset = _read_raw_dataset(path, stop_before_pixels)
    except _ELEMENT_ERRORS as error:
        raise UnreadableImage(path, f"corrupt DICOM: {_describe(error)}") from error
    _ensure_transfer_syntax(dataset)
    return dataset


def _read_raw_dataset(path: Path, stop_before_pixels: bool) -> Dataset:
    """A data set without preamble and file meta, which pydicom reads only when forced."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except _READ_ERRORS as error:
        raise UnreadableImage(path, f"corrupt DICOM: {_describe(error)}") from error


def _looks_like_raw_dicom(path: Path) -> bool:
    """True when a file without preamble starts like a data set: a plausible first tag."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise UnreadableImage(path, f"cannot open: {error.strerror or error}") from error
    if len(head) < 8:
        return False
    for order in ("<", ">"):
        group, _element, length = struct.unpack(f"{order}HHI", head)
        if group in _RAW_FIRST_GROUPS and length < 1 << 20:
            return True
        # Explicit VR: the length field starts with two VR letters.
        if group in _RAW_FIRST_GROUPS and head[4:6].isalpha() and head[4:6].isupper():
            return True
    return False


def _ensure_transfer_syntax(dataset: Dataset) -> None:
    """Files without file meta (legacy ACR-NEMA) get the syntax the parser actually used."""
    if not hasattr(dataset, "file_meta") or dataset.file_meta is None:
        dataset.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in dataset.file_meta:
        return
    implicit, little = dataset.original_encoding
    if implicit is None or little is None:
        return
    if implicit:
        dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        dataset.file_meta.TransferSyntaxUID = (
            ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )


def _value(dataset: Dataset, keyword: str, path: Path) -> Any:
    """The element's value, None when absent.

    pydicom converts an element's bytes on first access, so this is where a corrupt element
    fails; the converted element is kept, so pydicom's own functions do not meet it again.
    """
    try:
        return dataset.get(keyword)
    except _ELEMENT_ERRORS as error:
        raise UnreadableImage(path, f"corrupt {keyword} element: {_describe(error)}") from error


def _header_from_dataset(dataset: Dataset, path: Path) -> DicomHeader:
    def text(keyword: str) -> str | None:
        return _as_text(_value(dataset, keyword, path))

    def integer(keyword: str) -> int | None:
        return _as_integer(_value(dataset, keyword, path))

    return DicomHeader(
        study_instance_uid=text("StudyInstanceUID"),
        series_instance_uid=text("SeriesInstanceUID"),
        sop_instance_uid=text("SOPInstanceUID"),
        patient_id=text("PatientID"),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        modality=text("Modality"),
        view_position=text("ViewPosition"),
        laterality=text("ImageLaterality") or text("Laterality"),
        body_part_examined=text("BodyPartExamined"),
        patient_orientation=text("PatientOrientation"),
        pixel_spacing=_spacing(dataset, path),
        photometric_interpretation=text("PhotometricInterpretation"),
        bits_stored=integer("BitsStored"),
        manufacturer=text("Manufacturer"),
        series_description=text("SeriesDescription"),
        protocol_name=text("ProtocolName"),
        rows=integer("Rows"),
        columns=integer("Columns"),
        transfer_syntax=_as_text(_value(dataset.file_meta, "TransferSyntaxUID", path)),
        samples_per_pixel=integer("SamplesPerPixel"),
        number_of_frames=integer("NumberOfFrames"),
        acquisition_datetime=_acquisition_datetime(text),
    )


def _is_list(value: object) -> TypeGuard[list[Any] | tuple[Any, ...] | MultiValue[Any]]:
    """A multi-valued element (pydicom's MultiValue), or a list a writer put there."""
    return isinstance(value, (list, tuple, MultiValue))


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if _is_list(value):
        text = "\\".join(str(item).strip() for item in value)
    elif isinstance(value, bytes):
        text = value.decode("ascii", errors="replace")
    else:
        text = str(value)
    text = text.strip().strip("\x00").strip()
    return text or None


def _as_integer(value: object) -> int | None:
    """An integer header value (the first of several), None when absent or not an integer."""
    if _is_list(value):
        value = value[0] if len(value) else None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _as_number(value: object) -> float | None:
    """A finite number as a float; None for anything else, text included (pydicom needs numbers)."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _is_one_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: object) -> str:
    return repr(value)[:60]


def _spacing(dataset: Dataset, path: Path) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _value(dataset, keyword, path)
        if not _is_list(value) or len(value) != 2:
            continue
        row, column = (_as_number(item) for item in value)
        if row is not None and column is not None:
            return row, column
    return None


def _acquisition_datetime(text: Callable[[str], str | None]) -> datetime | None:
    """AcquisitionDateTime, else AcquisitionDate/Time, else ContentDate/Time (image creation)."""
    moment = parse_dt(text("AcquisitionDateTime"))
    if moment is not None:
        return moment
    for date_keyword, time_keyword in (
        ("AcquisitionDate", "AcquisitionTime"),
        ("ContentDate", "ContentTime"),
    ):
        moment = combine_date_time(text(date_keyword), text(time_keyword))
        if moment is not None:
            return moment
    return None


def _size_reason(rows: int, columns: int) -> str | None:
    if min(rows, columns) < MIN_IMAGE_SIDE or max(rows, columns) > MAX_IMAGE_SIDE:
        return (
            f"implausible size {rows}x{columns}: a radiograph has {MIN_IMAGE_SIDE} to "
            f"{MAX_IMAGE_SIDE} pixels per side (corrupt Rows/Columns?)"
        )
    return None


# --- pixel data ----------------------------------------------------------------------------


def _decode_pixels(dataset: Dataset, path: Path) -> np.ndarray:
    """The stored values (BitsStored and signedness applied by pydicom), H x W."""
    _check_pixel_module(dataset, path)
    syntax = _transfer_syntax(dataset, path)
    _check_decoder(syntax, path)
    try:
        stored = dataset.pixel_array
    except _DECODE_ERRORS as error:
        raise UnreadableImage(path, _decode_failure(syntax, error)) from error
    except BaseException as error:
        # Rust codecs (pylibjpeg-rle) panic on corrupt streams; pyo3's PanicException derives
        # from BaseException and cannot be imported by name.
        if type(error).__name__ != "PanicException":
            raise
        raise UnreadableImage(
            path, f"corrupt {syntax.name} pixel data: the decoder failed ({_describe(error)})"
        ) from error
    if stored.ndim != 2:
        raise UnreadableImage(
            path, f"unexpected pixel array shape {stored.shape} for one greyscale frame"
        )
    return stored


def _check_pixel_module(dataset: Dataset, path: Path) -> None:
    """Refuses Image Pixel values pydicom's decoder cannot work with, naming the attribute.

    `unusable_reason` has already refused colour, multi-frame and implausible sizes.
    """
    if "PixelData" not in dataset:
        kinds = [kw for kw in ("FloatPixelData", "DoubleFloatPixelData") if kw in dataset]
        detail = f" ({kinds[0]} is not supported)" if kinds else ""
        raise UnreadableImage(path, f"no pixel data{detail}")
    photometric = _value(dataset, "PhotometricInterpretation", path)
    if photometric not in GREYSCALE_PHOTOMETRICS:
        raise UnreadableImage(
            path, f"PhotometricInterpretation {_show(photometric)} is not exactly MONOCHROME1/2"
        )
    values = {keyword: _pixel_integer(dataset, keyword, path) for keyword in _PIXEL_INTEGERS}
    allocated, stored = values["BitsAllocated"], values["BitsStored"]
    if allocated not in _BITS_ALLOCATED:
        raise UnreadableImage(
            path, f"BitsAllocated {allocated}: cxr reads greyscale pixels of 8, 16 or 32 bits"
        )
    if not 1 <= stored <= allocated:
        raise UnreadableImage(
            path, f"BitsStored {stored} is not between 1 and BitsAllocated ({allocated})"
        )
    if values["PixelRepresentation"] not in (0, 1):
        raise UnreadableImage(
            path,
            f"PixelRepresentation {values['PixelRepresentation']}: must be 0 (unsigned) "
            "or 1 (signed)",
        )
    _value(dataset, "PixelData", path)  # a corrupt element fails here, with its name
    frames = _value(dataset, "NumberOfFrames", path)
    if isinstance(frames, str) and not frames.strip():
        del dataset.NumberOfFrames  # empty means one frame; pydicom would int('') it
    elif frames is not None and not _is_one_integer(frames):
        raise UnreadableImage(path, f"NumberOfFrames {_show(frames)} is not one integer")


def _pixel_integer(dataset: Dataset, keyword: str, path: Path) -> int:
    value = _value(dataset, keyword, path)
    if value is None or value == "":
        raise UnreadableImage(path, f"{keyword} missing: the pixel data cannot be decoded")
    if not _is_one_integer(value):
        raise UnreadableImage(path, f"{keyword} is {_show(value)}, not one integer")
    return int(value)


def _transfer_syntax(dataset: Dataset, path: Path) -> UID:
    value = _value(dataset.file_meta, "TransferSyntaxUID", path)
    if not value:
        raise UnreadableImage(path, "no transfer syntax: cannot tell how the pixel data is encoded")
    if not isinstance(value, str):
        raise UnreadableImage(path, f"TransferSyntaxUID is {_show(value)}, not one UID")
    return UID(value)


def _check_decoder(syntax: UID, path: Path) -> None:
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnreadableImage(
            path, f"unsupported transfer syntax {syntax} ({syntax.name}): no pydicom decoder exists"
        ) from None
    if not decoder.is_available:
        raise UnreadableImage(
            path,
            f"cannot decode transfer syntax {syntax.name}: no decoder plugin installed; "
            f"install {_packages(decoder.missing_dependencies)}",
        )


def _decode_failure(syntax: UID, error: BaseException) -> str:
    message = str(error)
    if "less than expected" in message:
        return f"truncated pixel data: {message.splitlines()[0]}"
    if "Unable to decode" in message and "plugins" in message:
        decoder = get_decoder(syntax)
        first_error = next((line.strip() for line in message.splitlines()[1:] if line.strip()), "")
        others = _packages(decoder.missing_dependencies) if decoder.missing_dependencies else ""
        suggestion = f"; {others} may decode it" if others else ""
        return (
            f"cannot decode {syntax.name} pixel data with the installed plugins "
            f"({', '.join(decoder.available_plugins)}): {first_error}{suggestion}"
        )
    return f"pixel data cannot be decoded ({syntax.name}): {_describe(error)}"


def _packages(missing_dependencies: list[str]) -> str:
    names = [entry.split(" - ")[0].strip() for entry in missing_dependencies]
    return " or ".join(_PLUGIN_PACKAGES.get(name, name) for name in names) or "a decoder plugin"


def _describe(error: BaseException) -> str:
    first_line = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:300]


# --- display: Modality LUT, VOI, percentile window -------------------------------------------


def _to_display(
    stored: np.ndarray, dataset: Dataset, header: DicomHeader, path: Path
) -> np.ndarray:
    """Stored values -> [0, 1] float32, bright = dense, in DICOM's order of operations.

    With a LUT or window, the pipeline runs once over every stored value between the image's
    minimum and maximum and the image is then looked up in that table: the same pydicom
    functions, a fraction of the work on large images.
    """
    padding = _padding_mask(stored, dataset, path)
    has_modality_lut = _check_modality_lut(dataset, path)
    _check_rescale(dataset, path)
    voi = _usable_voi(dataset, path)
    sample = _sample(stored, padding)
    minimum = int(stored.min())
    span = int(stored.max()) - minimum
    tabulate = (has_modality_lut or voi is not None) and span < min(_MAX_TABLE, stored.size)
    if tabulate:
        domain = np.arange(minimum, minimum + span + 1, dtype=np.int64)
    elif has_modality_lut:
        domain = stored.astype(np.int64)
    else:
        domain = stored
    if has_modality_lut:
        # pydicom subtracts the LUT's first mapped value in the input's dtype: a negative one
        # would overflow unsigned stored values.
        sample = sample.astype(np.int64)
    values = apply_modality_lut(domain, dataset)
    sample_values = apply_modality_lut(sample, dataset)
    display = None if voi is None else _voi_window(values, sample_values, dataset, voi, path)
    if display is None:
        display = _percentile_window(values, sample_values)
    if tabulate:
        display = np.take(
            display, stored if minimum == 0 else np.subtract(stored, minimum, dtype=np.int32)
        )
    if header.photometric_interpretation == "MONOCHROME1":
        np.subtract(1.0, display, out=display)
    if padding is not None:
        display[padding] = 0.0
    return display


def _padding_mask(stored: np.ndarray, dataset: Dataset, path: Path) -> np.ndarray | None:
    """Pixels equal to PixelPaddingValue (or within PixelPaddingRangeLimit), None if none."""
    padding = _as_integer(_value(dataset, "PixelPaddingValue", path))
    if padding is None:
        return None
    limit = _as_integer(_value(dataset, "PixelPaddingRangeLimit", path))
    if limit is None:
        mask = stored == padding
    else:
        mask = (stored >= min(padding, limit)) & (stored <= max(padding, limit))
    return mask if mask.any() else None


def _sample(stored: np.ndarray, padding: np.ndarray | None) -> np.ndarray:
    """About _PERCENTILE_SAMPLES evenly spread non-padding stored values, flat."""
    step = max(1, math.ceil(math.sqrt(stored.size / _PERCENTILE_SAMPLES)))
    sample = stored[::step, ::step]
    if padding is not None:
        return sample[~padding[::step, ::step]]
    return sample.ravel()


def _check_modality_lut(dataset: Dataset, path: Path) -> bool:
    """True when the file has a Modality LUT pydicom can apply; refuses one it cannot.

    A LUT item without LUT Descriptor or Data, which some writers emit, means no LUT.
    """
    sequence = _value(dataset, "ModalityLUTSequence", path)
    if not sequence:
        return False
    if _holds_no_lut(sequence, path):
        log.debug("%s: ignoring ModalityLUTSequence without LUT Descriptor/Data", path.name)
        del dataset.ModalityLUTSequence
        return False
    problem = _lut_problem(sequence, path, modality=True)
    if problem is not None:
        raise UnreadableImage(path, f"invalid Modality LUT: {problem}")
    return True


def _check_rescale(dataset: Dataset, path: Path) -> None:
    """An empty or non-numeric RescaleSlope/Intercept means no rescale (identity): dropped."""
    if "RescaleSlope" not in dataset and "RescaleIntercept" not in dataset:
        return
    slope = _as_number(_value(dataset, "RescaleSlope", path))
    intercept = _as_number(_value(dataset, "RescaleIntercept", path))
    if slope is None or intercept is None or slope == 0:
        log.debug("%s: ignoring unusable RescaleSlope/RescaleIntercept", path.name)
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in dataset:
                del dataset[keyword]


def _usable_voi(dataset: Dataset, path: Path) -> VoiStep | None:
    """The VOI step to apply: the VOI LUT, else the first window, else None (percentile window).

    A VOI LUT or window whose values pydicom cannot use is skipped with a warning that says why.
    """
    sequence = _value(dataset, "VOILUTSequence", path)
    if sequence and not _holds_no_lut(sequence, path):
        problem = _lut_problem(sequence, path, modality=False)
        if problem is None:
            return "lut"
        # The file name only: export folders are often named after the patient.
        log.warning("%s: ignoring unusable VOI LUT (%s)", path.name, problem)
    center, width = _value(dataset, "WindowCenter", path), _value(dataset, "WindowWidth", path)
    if center is None or width is None:
        return None
    problem = _window_problem(dataset, center, width, path)
    if problem is None:
        return "window"
    log.warning("%s: ignoring unusable window (%s); using a percentile window", path.name, problem)
    return None


def _holds_no_lut(sequence: Any, path: Path) -> bool:
    """A LUT sequence whose first item has no LUT Descriptor or no LUT Data."""
    if not isinstance(sequence, Sequence) or not isinstance(sequence[0], Dataset):
        return False
    item = sequence[0]
    if _value(item, "LUTDescriptor", path) is None:
        return True
    # Reading LUT Data in an implicit VR file makes pydicom index the descriptor to resolve the
    # data's VR (US or OW), which fails on a malformed one: _lut_problem reports that instead.
    return _lut_descriptor(item, path) is not None and _value(item, "LUTData", path) is None


def _lut_descriptor(item: Dataset, path: Path) -> tuple[int, int, int] | None:
    """(entries, first mapped value, bits per entry), 0 entries read as 65536; None if malformed."""
    descriptor = _value(item, "LUTDescriptor", path)
    if not _is_list(descriptor) or len(descriptor) != 3:
        return None
    if not all(_is_one_integer(value) for value in descriptor):
        return None
    entries, first_mapped, bits = (int(value) for value in descriptor)
    return entries or 1 << 16, first_mapped, bits


def _lut_problem(sequence: Any, path: Path, modality: bool) -> str | None:
    """Why pydicom cannot apply the first item of a Modality or VOI LUT sequence, or None."""
    if not isinstance(sequence, Sequence) or not isinstance(sequence[0], Dataset):
        return "the LUT sequence holds no items (corrupt element)"
    item = sequence[0]
    descriptor = _lut_descriptor(item, path)
    if descriptor is None:
        return f"LUTDescriptor {_show(_value(item, 'LUTDescriptor', path))} is not 3 integers"
    entries, first_mapped, bits = descriptor
    if modality and 8 < bits < 16:
        # pydicom holds Modality LUT entries as uint{bits}; 9-15 bit LUTs are stored as uint16.
        raw_entries = entries if entries < 1 << 16 else 0
        item.LUTDescriptor = [raw_entries, first_mapped, 16]
        bits = 16
    allowed = _MODALITY_LUT_BITS if modality else _VOI_LUT_BITS
    if bits not in allowed:
        return f"{bits} bits per LUT entry (pydicom applies {', '.join(map(str, allowed))})"
    return _lut_data_problem(item, entries, 8 if bits == 8 else 16, path, exact=modality)


def _lut_data_problem(
    item: Dataset, entries: int, entry_bits: int, path: Path, exact: bool
) -> str | None:
    """Why the LUT Data cannot fill `entries` entries of `entry_bits` bits, or None.

    pydicom unpacks OW data with struct (exactly `entries` values for a Modality LUT, at least
    that many for a VOI LUT) and indexes US data up to `entries`.
    """
    data = _value(item, "LUTData", path)
    if item["LUTData"].VR == "OW":
        size = len(data) if isinstance(data, bytes) else None
        if size is None or size < 2 * entries or (exact and size != 2 * entries):
            return f"OW LUTData of {size} bytes for {entries} 16-bit entries"
        return None
    if not _is_list(data) or len(data) < entries:
        count = len(data) if _is_list(data) else 1
        return f"LUTData holds {count} values for {entries} entries"
    table = np.asarray(data)
    if table.dtype.kind not in "iu" or table.min() < 0 or table.max() >= 1 << entry_bits:
        return f"LUTData values do not fit {entry_bits}-bit entries"
    return None


def _window_problem(dataset: Dataset, center: Any, width: Any, path: Path) -> str | None:
    """Why pydicom's apply_windowing cannot use the first window, or None when it can."""
    first_center, first_width = _first_number(center), _first_number(width)
    if first_center is None or first_width is None:
        return f"WindowCenter {_show(center)} / WindowWidth {_show(width)} are not numbers"
    function = _value(dataset, "VOILUTFunction", path)
    if function is None or function == "":
        if "VOILUTFunction" in dataset:
            del dataset.VOILUTFunction  # empty means the default, LINEAR; pydicom needs text
        function = "LINEAR"
    if not isinstance(function, str) or function.upper() not in _VOI_FUNCTIONS:
        return f"unknown VOILUTFunction {_show(function)}"
    if function.upper() == "LINEAR" and first_width < 1:
        return f"WindowWidth {first_width:g} is below 1"
    if first_width <= 0:
        return f"WindowWidth {first_width:g} is not positive"
    return None


def _first_number(value: Any) -> float | None:
    """The first value of a window attribute as pydicom reads it: indexed only when VM > 1."""
    if _is_list(value):
        return _as_number(value[0]) if len(value) > 1 else None
    return _as_number(value)


def _voi_window(
    values: np.ndarray, sample_values: np.ndarray, dataset: Dataset, voi: VoiStep, path: Path
) -> np.ndarray | None:
    """The VOI LUT or window applied and scaled to [0, 1]; None when it is no use.

    A window whose output is a single value, or that leaves almost every sampled pixel
    saturated, is a wrong header: None then, and the caller uses a percentile window.
    """
    output_range = _voi_output_range(dataset, voi, path)
    if output_range is None:
        log.warning(
            "%s: VOI %s has a single output value; using a percentile window", path.name, voi
        )
        return None
    low, high = output_range
    sample_display = _rescale(_apply_voi(sample_values, dataset, voi), low, high)
    if _unsaturated_fraction(sample_display) < MIN_UNSATURATED_FRACTION:
        log.warning("%s: header window saturates the image; using a percentile window", path.name)
        return None
    return _rescale(_apply_voi(values, dataset, voi), low, high)


def _apply_voi(values: np.ndarray, dataset: Dataset, voi: VoiStep) -> np.ndarray:
    if voi == "window":
        return apply_windowing(values, dataset, index=0)
    # A LUT is indexed by integers, in int64 so that subtracting its first mapped value (which
    # may be negative) cannot overflow.
    if np.issubdtype(values.dtype, np.integer):
        return apply_voi(values.astype(np.int64, copy=False), dataset, index=0)
    return apply_voi(np.rint(values).astype(np.int64), dataset, index=0)


def _voi_output_range(dataset: Dataset, voi: VoiStep, path: Path) -> tuple[float, float] | None:
    """The lowest and highest value the VOI step can output; None if they are one value."""
    if voi == "lut":
        descriptor = _lut_descriptor(dataset.VOILUTSequence[0], path)
        assert descriptor is not None, "checked by _lut_problem"
        entries, first_mapped, _bits = descriptor
        probe = np.arange(first_mapped, first_mapped + entries, dtype=np.int64)
    else:
        probe = np.array([-1e30, 1e30])
    with np.errstate(over="ignore"):
        output = _apply_voi(probe, dataset, voi)
    low, high = float(np.min(output)), float(np.max(output))
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        return None
    return low, high


def _percentile_window(values: np.ndarray, sample_values: np.ndarray) -> np.ndarray:
    """A robust window for files that bring none: the 0.5th to 99.5th percentile of the image."""
    if sample_values.size == 0:
        return np.zeros(values.shape, dtype=np.float32)
    low, high = _percentiles(sample_values)
    if high <= low:
        low, high = float(np.min(sample_values)), float(np.max(sample_values))
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return _rescale(values, low, high)


def _percentiles(sample: np.ndarray) -> tuple[float, float]:
    """PERCENTILE_WINDOW of a flat sample; integers by histogram, which is several times faster."""
    if np.issubdtype(sample.dtype, np.integer):
        minimum = int(sample.min())
        span = int(sample.max()) - minimum
        if span < _MAX_TABLE:
            counts = np.bincount(np.subtract(sample, minimum, dtype=np.intp), minlength=span + 1)
            cumulative = np.cumsum(counts)
            ranks = [fraction / 100 * (sample.size - 1) for fraction in PERCENTILE_WINDOW]
            low, high = (int(np.searchsorted(cumulative, rank, side="right")) for rank in ranks)
            return float(minimum + low), float(minimum + high)
    low, high = np.percentile(sample, PERCENTILE_WINDOW)
    return float(low), float(high)


def _rescale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    scale = np.float32(1.0 / (high - low))
    display = np.multiply(values, scale, dtype=np.float32)
    display -= np.float32(low) * scale
    np.clip(display, 0.0, 1.0, out=display)
    return display


def _unsaturated_fraction(display: np.ndarray) -> float:
    return float(np.count_nonzero((display > 0.0) & (display < 1.0))) / max(1, display.size)


# --- PNG / JPEG ------------------------------------------------------------------------------


def _raster_format(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise UnreadableImage(path, f"cannot open: {error.strerror or error}") from error
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    if head.startswith(_JPEG_MAGIC):
        return "JPEG"
    return None


def _raster_header(path: Path) -> DicomHeader:
    try:
        with Image.open(path) as image:
            mode, (columns, rows) = image.mode, image.size
    except _RASTER_ERRORS as error:
        raise UnreadableImage(path, f"corrupt PNG/JPEG: {_describe(error)}") from error
    bits = 8 if mode in ("L", "LA", "RGB", "RGBA", "P", "1") else 16
    return DicomHeader(
        photometric_interpretation="MONOCHROME2",
        bits_stored=bits,
        rows=rows,
        columns=columns,
        samples_per_pixel=1,
    )


def _read_raster(path: Path) -> XrayImage:
    """PNG/JPEG (8 or 16 bit greyscale, or RGB with equal channels) -> the same contract."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except _RASTER_ERRORS as error:
        raise UnreadableImage(path, f"corrupt PNG/JPEG: {_describe(error)}") from error
    grey = _greyscale(array, mode, path)
    reason = _size_reason(*grey.shape)
    if reason is not None:
        raise UnreadableImage(path, reason)
    bits = 8 if grey.dtype == np.uint8 else _bit_depth(grey)
    pixels = grey.astype(np.float32)
    pixels *= np.float32(1.0 / (2**bits - 1))
    np.clip(pixels, 0.0, 1.0, out=pixels)
    header = DicomHeader(
        photometric_interpretation="MONOCHROME2",
        bits_stored=bits,
        rows=grey.shape[0],
        columns=grey.shape[1],
        samples_per_pixel=1,
    )
    return XrayImage(pixels, header, str(path))


def _greyscale(array: np.ndarray, mode: str, path: Path) -> np.ndarray:
    if mode in ("L", "I;16", "I;16L", "I;16B"):
        return array
    if mode == "I":  # 16-bit PNGs open as 32-bit integers in some Pillow versions
        if array.size and (array.min() < 0 or array.max() > 0xFFFF):
            raise UnreadableImage(path, "32-bit integer image: save as 8 or 16 bit greyscale")
        return array.astype(np.uint16)
    if mode == "LA":
        return array[..., 0]
    if mode in ("RGB", "RGBA"):
        colour = array[..., :3].astype(np.int16)
        if np.abs(colour - colour[..., :1]).max() > 2:
            raise UnreadableImage(
                path, f"colour {mode} image: cxr reads greyscale radiographs only"
            )
        return array[..., 0]
    raise UnreadableImage(path, f"unsupported image mode {mode!r}: save as 8 or 16 bit greyscale")


def _bit_depth(values: np.ndarray) -> int:
    """16-bit PNGs often hold 10-14 bit data: scale by the smallest usual depth that holds it."""
    peak = int(values.max())
    return next((bits for bits in (8, 10, 12, 14, 16) if peak < 2**bits), 16)
