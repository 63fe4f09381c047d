"""preprocessor_config.json: everything that turns a DICOM file into a model's input.

Each value is read from where cxr decides it: the pixel pipeline and its constants from
`cxr.io.dicom` (`read_image`), the resize and pad from `cxr.io.cache` (`preprocess`), the image
size and the normalisation from the model's EncoderConfig, the slots from `cxr.types`.
"""

from __future__ import annotations

from typing import Any

from cxr.io import cache, dicom
from cxr.models.config import EncoderConfig
from cxr.types import IMAGE_SLOTS

PREPROCESSOR_CONFIG_FILE = "preprocessor_config.json"

# The order of cxr.io.dicom's pixel pipeline (its module docstring states the same).
_DICOM_STEPS = (
    "decode stored values (BitsStored, signedness)",
    "Modality LUT (or rescale slope/intercept)",
    "VOI LUT, else the header window, else the percentile window",
    "scale to [0, 1]",
    "invert MONOCHROME1 (bright = dense)",
    "PixelPaddingValue pixels set to 0",
)


def preprocessor_config(encoder: EncoderConfig) -> dict[str, Any]:
    """The preprocessing a model built with `encoder` expects, as a JSON-ready record."""
    return {
        "processor": "cxr",
        "image_slots": list(IMAGE_SLOTS),
        "image_size": encoder.image_size,
        "read_image": {
            "function": f"{dicom.read_image.__module__}.{dicom.read_image.__name__}",
            "output": "float32 H x W in [0, 1], bright = dense",
            "dicom_steps": list(_DICOM_STEPS),
            "photometric_interpretations": list(dicom.GREYSCALE_PHOTOMETRICS),
            "percentile_window": list(dicom.PERCENTILE_WINDOW),
            "min_unsaturated_fraction_of_header_window": dicom.MIN_UNSATURATED_FRACTION,
            "min_image_side": dicom.MIN_IMAGE_SIDE,
            "max_image_side": dicom.MAX_IMAGE_SIDE,
        },
        "preprocess": {
            "function": f"{cache.preprocess.__module__}.{cache.preprocess.__name__}",
            **cache.preprocessing_parameters(encoder.image_size),
        },
        "normalisation": {
            "applied_by": "the model (cxr.models.encoders.ImageEncoder.forward)",
            # One value per channel: the grey image is repeated to that many (a vision-language
            # model's tower reads three).
            "channels": len(encoder.pixel_mean) if isinstance(encoder.pixel_mean, list) else 1,
            "pixel_mean": encoder.pixel_mean,
            "pixel_std": encoder.pixel_std,
            "space_to_depth": encoder.space_to_depth,
        },
        "model_input": {
            "images": f"float32 [batch, {len(IMAGE_SLOTS)}, 1, image_size, image_size] in "
            "image_slots order; an absent image is zeros",
            "image_present": f"bool [batch, {len(IMAGE_SLOTS)}]; an absent slot reads the "
            "model's learned missing-image token",
        },
    }
