"""One reader for every X-ray file cxr meets: DICOM (any decodable transfer syntax) and PNG/JPEG.

`read_image` returns float32 pixels in [0, 1] with bright = dense (bone, devices and fluid
bright, air dark) and the header fields the rest of cxr needs. The DICOM pixel pipeline follows
the standard's order: Modality LUT -> VOI LUT or window -> (if neither) a robust percentile
window -> MONOCHROME1 inverted -> PixelPaddingValue set to 0. Anything it cannot interpret raises
`UnreadableImage(path, reason)`; no other exception type escapes for a bad file.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
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

# Exceptions third-party parsers and codecs raise on corrupt input. They are converted to
# UnreadableImage at this boundary; MemoryError and KeyboardInterrupt are not.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,
    NotImplementedError,
    ArithmeticError,
    OSError,
    EOFError,
    struct.error,
    zlib.error,
    AssertionError,
    Image.DecompressionBombError,
    BytesLengthException,
    InvalidDicomError,
)

# pip packages behind pydicom's decoder plugin names, for actionable reasons.
_PLUGIN_PACKAGES = {
    "gdcm": "python-gdcm",
    "pylibjpeg": "pylibjpeg with pylibjpeg-libjpeg / pylibjpeg-openjpeg / pylibjpeg-rle",
    "pyjpegls": "pyjpegls",
    "pillow": "pillow",
}


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
    try:
        pixels = _to_display(stored, dataset, header, path)
    except _PARSE_ERRORS as error:
        raise UnreadableImage(path, f"corrupt pixel module: {_describe(error)}") from error
    return XrayImage(pixels, header, str(path))


def read_header(path: str | Path) -> DicomHeader:
    """Reads the header only (pixel data is not read); PNG/JPEG give size and bit depth.

    Raises:
        UnreadableImage: the file is neither DICOM nor PNG/JPEG, or its header is corrupt.
    """
    path = Path(path)
    if _raster_format(path) is not None:
        return _raster_header(path)
    return _header_from_dataset(_read_dataset(path, stop_before_pixels=True), path)


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
    try:
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            if not _looks_like_raw_dicom(path):
                raise UnreadableImage(
                    path,
                    "not DICOM: no 'DICM' marker at byte 128 and the file does not start "
                    "with a DICOM tag (nor is it PNG/JPEG)",
                ) from None
            dataset = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
        _ensure_transfer_syntax(dataset)
    except UnreadableImage:
        raise
    except _PARSE_ERRORS as error:
        raise UnreadableImage(path, f"corrupt DICOM: {_describe(error)}") from error
    return dataset


def _looks_like_raw_dicom(path: Path) -> bool:
    """True when a file without preamble starts like a data set: a plausible first tag."""
    with path.open("rb") as handle:
        head = handle.read(8)
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


def _header_from_dataset(dataset: Dataset, path: Path) -> DicomHeader:
    try:
        return DicomHeader(
            study_instance_uid=_text(dataset, "StudyInstanceUID"),
            series_instance_uid=_text(dataset, "SeriesInstanceUID"),
            sop_instance_uid=_text(dataset, "SOPInstanceUID"),
            patient_id=_text(dataset, "PatientID"),
            study_date=_text(dataset, "StudyDate"),
            study_time=_text(dataset, "StudyTime"),
            modality=_text(dataset, "Modality"),
            view_position=_text(dataset, "ViewPosition"),
            laterality=_text(dataset, "ImageLaterality") or _text(dataset, "Laterality"),
            body_part_examined=_text(dataset, "BodyPartExamined"),
            patient_orientation=_text(dataset, "PatientOrientation"),
            pixel_spacing=_spacing(dataset),
            photometric_interpretation=_text(dataset, "PhotometricInterpretation"),
            bits_stored=_integer(dataset, "BitsStored"),
            manufacturer=_text(dataset, "Manufacturer"),
            series_description=_text(dataset, "SeriesDescription"),
            protocol_name=_text(dataset, "ProtocolName"),
            rows=_integer(dataset, "Rows"),
            columns=_integer(dataset, "Columns"),
            transfer_syntax=_text(dataset.file_meta, "TransferSyntaxUID"),
            samples_per_pixel=_integer(dataset, "SamplesPerPixel"),
            number_of_frames=_integer(dataset, "NumberOfFrames"),
            acquisition_datetime=_acquisition_datetime(dataset),
        )
    except _PARSE_ERRORS as error:
        raise UnreadableImage(path, f"corrupt DICOM header: {_describe(error)}") from error


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        text = "\\".join(str(item).strip() for item in value)
    elif isinstance(value, bytes):
        text = value.decode("ascii", errors="replace")
    else:
        text = str(value)
    text = text.strip().strip("\x00").strip()
    return text or None


def _integer(dataset: Dataset, keyword: str) -> int | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _spacing(dataset: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dataset.get(keyword)
        if value is None or isinstance(value, (str, bytes)):
            continue
        try:
            row, column = (float(item) for item in value)
        except (TypeError, ValueError):
            continue
        return row, column
    return None


def _acquisition_datetime(dataset: Dataset) -> datetime | None:
    """AcquisitionDateTime, else AcquisitionDate/Time, else ContentDate/Time (image creation)."""
    moment = parse_dt(_text(dataset, "AcquisitionDateTime"))
    if moment is not None:
        return moment
    for date_keyword, time_keyword in (
        ("AcquisitionDate", "AcquisitionTime"),
        ("ContentDate", "ContentTime"),
    ):
        moment = combine_date_time(_text(dataset, date_keyword), _text(dataset, time_keyword))
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
    if "PixelData" not in dataset:
        kinds = [kw for kw in ("FloatPixelData", "DoubleFloatPixelData") if kw in dataset]
        detail = f" ({kinds[0]} is not supported)" if kinds else ""
        raise UnreadableImage(path, f"no pixel data{detail}")
    syntax = UID(str(dataset.file_meta.get("TransferSyntaxUID", "")))
    if not syntax:
        raise UnreadableImage(path, "no transfer syntax: cannot tell how the pixel data is encoded")
    _check_decoder(syntax, path)
    try:
        stored = dataset.pixel_array
    except _PARSE_ERRORS as error:
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


def _to_display(
    stored: np.ndarray, dataset: Dataset, header: DicomHeader, path: Path
) -> np.ndarray:
    """Stored values -> [0, 1] float32, bright = dense, in DICOM's order of operations.

    With a LUT or window, the pipeline runs once over every stored value between the image's
    minimum and maximum and the image is then looked up in that table: the same pydicom
    functions, a fraction of the work on large images.
    """
    padding = _padding_mask(stored, dataset)
    _repair_lut_attributes(dataset, path)
    sample = _sample(stored, padding)
    minimum = int(stored.min())
    span = int(stored.max()) - minimum
    tabulate = _has_lut_or_window(dataset) and span < min(_MAX_TABLE, stored.size)
    domain = np.arange(minimum, minimum + span + 1, dtype=np.int64) if tabulate else stored
    try:
        values = apply_modality_lut(domain, dataset)
        sample_values = apply_modality_lut(sample, dataset)
    except _PARSE_ERRORS as error:
        raise UnreadableImage(path, f"invalid Modality LUT: {_describe(error)}") from error
    display = _voi_window(values, sample_values, dataset, path)
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


def _padding_mask(stored: np.ndarray, dataset: Dataset) -> np.ndarray | None:
    """Pixels equal to PixelPaddingValue (or within PixelPaddingRangeLimit), None if none."""
    padding = _integer(dataset, "PixelPaddingValue")
    if padding is None:
        return None
    limit = _integer(dataset, "PixelPaddingRangeLimit")
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


def _repair_lut_attributes(dataset: Dataset, path: Path) -> None:
    """Fixes what real writers get wrong before pydicom's LUT functions see the data set."""
    _drop_empty_lut(dataset, "ModalityLUTSequence", path)
    _drop_empty_lut(dataset, "VOILUTSequence", path)
    _drop_empty_rescale(dataset, path)
    _widen_modality_lut_entries(dataset)


def _has_lut_or_window(dataset: Dataset) -> bool:
    return bool(dataset.get("ModalityLUTSequence")) or _has_voi_lut(dataset) or _has_window(dataset)


def _voi_window(
    values: np.ndarray, sample_values: np.ndarray, dataset: Dataset, path: Path
) -> np.ndarray | None:
    """The VOI LUT Sequence or first window applied and scaled to [0, 1]; None without one.

    A window that leaves almost every sampled pixel saturated is a wrong header: None then too.
    """
    has_lut = _has_voi_lut(dataset)
    if not has_lut and not _has_window(dataset):
        return None
    try:
        low, high = _voi_output_range(dataset, has_lut)
        sample_display = _rescale(_apply_voi(sample_values, dataset, has_lut), low, high)
        output = _apply_voi(values, dataset, has_lut)
    except _PARSE_ERRORS as error:
        # The file name only: export folders are often named after the patient.
        log.warning("%s: ignoring unusable VOI LUT/window (%s)", path.name, _describe(error))
        return None
    if _unsaturated_fraction(sample_display) < MIN_UNSATURATED_FRACTION:
        log.warning("%s: header window saturates the image; using a percentile window", path.name)
        return None
    return _rescale(output, low, high)


def _apply_voi(values: np.ndarray, dataset: Dataset, has_lut: bool) -> np.ndarray:
    if has_lut and not np.issubdtype(values.dtype, np.integer):
        values = np.rint(values).astype(np.int64)  # a LUT is indexed by integer values
    return apply_voi_lut(values, dataset, index=0, prefer_lut=True)


def _drop_empty_lut(dataset: Dataset, keyword: str, path: Path) -> None:
    """Some writers emit a LUT sequence whose item has no descriptor or data: it means no LUT."""
    sequence = dataset.get(keyword)
    if not sequence:
        return
    item = sequence[0]
    if item.get("LUTDescriptor") is None or item.get("LUTData") is None:
        log.debug("%s: ignoring %s without LUT Descriptor/Data", path, keyword)
        del dataset[keyword]


def _widen_modality_lut_entries(dataset: Dataset) -> None:
    """pydicom holds Modality LUT entries as uint{bits}; 9-15 bit LUTs are stored as uint16."""
    sequence = dataset.get("ModalityLUTSequence")
    if not sequence:
        return
    descriptor = list(sequence[0].LUTDescriptor)
    if len(descriptor) == 3 and 8 < descriptor[2] < 16:
        sequence[0].LUTDescriptor = [descriptor[0], descriptor[1], 16]


def _drop_empty_rescale(dataset: Dataset, path: Path) -> None:
    """An empty or non-numeric RescaleSlope/Intercept means no rescale (identity)."""
    if "RescaleSlope" not in dataset and "RescaleIntercept" not in dataset:
        return
    try:
        slope, intercept = float(dataset.RescaleSlope), float(dataset.RescaleIntercept)
        usable = math.isfinite(slope) and math.isfinite(intercept) and slope != 0
    except (AttributeError, TypeError, ValueError):
        usable = False
    if not usable:
        log.debug("%s: ignoring unusable RescaleSlope/RescaleIntercept", path)
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in dataset:
                del dataset[keyword]


def _has_voi_lut(dataset: Dataset) -> bool:
    return bool(dataset.get("VOILUTSequence"))


def _has_window(dataset: Dataset) -> bool:
    return dataset.get("WindowCenter") is not None and dataset.get("WindowWidth") is not None


def _voi_output_range(dataset: Dataset, has_lut: bool) -> tuple[float, float]:
    """The lowest and highest value pydicom's VOI step can output for this data set."""
    if has_lut:
        entries, first_mapped, _bits = dataset.VOILUTSequence[0].LUTDescriptor
        probe = np.arange(first_mapped, first_mapped + (entries or 1 << 16), dtype=np.int64)
    else:
        probe = np.array([-1e30, 1e30])
    with np.errstate(over="ignore"):
        output = apply_voi_lut(probe, dataset, index=0, prefer_lut=True)
    low, high = float(np.min(output)), float(np.max(output))
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"empty VOI output range [{low}, {high}]")
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
    except _PARSE_ERRORS as error:
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
    except _PARSE_ERRORS as error:
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
