"""Rendered frames (PS3.18 §10.4, §8.3.5, §8.7.4): 8-bit greyscale or RGB images as
JPEG or PNG.

Greyscale goes through the Modality LUT, then a VOI window: the ``window``
query parameter, else the instance's (or its frame's functional group's)
Window Center / Width, else its VOI LUT, else the frame's own minimum and
maximum. MONOCHROME1 is inverted so that higher values are darker, as the
standard displays it (PS3.3 C.7.6.3.1.2). Colour is kept: RGB and decoded
YCbCr as they are, PALETTE COLOR through its lookup tables.

Known limits: presentation states, overlays and ICC profiles are not
applied; a viewport crops nothing, it only bounds the size.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from ..errors import BadRequest

JPEG = "image/jpeg"
PNG = "image/png"
MEDIA_TYPES = (JPEG, PNG)

# PS3.18 §8.3.5.1.3 names the VOI LUT functions in lower case.
WINDOW_FUNCTIONS = {
    "linear": "LINEAR",
    "linear-exact": "LINEAR_EXACT",
    "sigmoid": "SIGMOID",
}


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = JPEG
    window: Window | None = None
    quality: int = 90
    viewport: tuple[int, int] | None = None


def parse_window(text: str) -> Window:
    """``center,width[,function]`` (PS3.18 §8.3.5.1.3)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise BadRequest(
            "window must be center,width,function, for example "
            "window=40,400,linear (PS3.18 §8.3.5.1.3)"
        )
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise BadRequest("window center and width must be numbers") from None
    function = WINDOW_FUNCTIONS.get(parts[2].lower() if len(parts) == 3 else "linear")
    if function is None:
        raise BadRequest("window function must be linear, linear-exact or sigmoid")
    if not math.isfinite(center) or not math.isfinite(width) or width <= 0:
        raise BadRequest("window width must be a positive number")
    if function == "LINEAR" and width < 1:
        raise BadRequest("a linear window must be at least 1 wide (PS3.3 C.11.2.1.2)")
    return Window(center, width, function)


def parse_viewport(text: str) -> tuple[int, int]:
    """``vw,vh`` (PS3.18 §8.3.5.1); the cropping form is not supported."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2:
        raise BadRequest(
            "viewport must be vw,vh (the cropping form sx,sy,sw,sh is not "
            "supported here)"
        )
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise BadRequest("viewport width and height must be integers") from None
    if not (0 < width <= 8192 and 0 < height <= 8192):
        raise BadRequest("viewport width and height must be between 1 and 8192")
    return width, height


def parse_quality(text: str) -> int:
    """``quality`` 1-100 (PS3.18 §8.3.5.1)."""
    try:
        quality = int(text)
    except ValueError:
        raise BadRequest("quality must be an integer from 1 to 100") from None
    if not 1 <= quality <= 100:
        raise BadRequest("quality must be an integer from 1 to 100")
    return quality


def render(frame: np.ndarray, ds: Dataset, index: int, options: RenderOptions) -> bytes:
    """Frame `index` (0-based; its decoded pixels `frame`) of the instance with
    header `ds`, encoded as `options.media_type`."""
    image = Image.fromarray(to_8bit(frame, ds, index, options.window))

    if options.viewport is not None:
        image.thumbnail(options.viewport, Image.Resampling.LANCZOS)

    buffer = io.BytesIO()
    if options.media_type == PNG:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=options.quality)
    return buffer.getvalue()


def to_8bit(
    frame: np.ndarray, ds: Dataset, index: int, window: Window | None
) -> np.ndarray:
    """Display values 0-255: (rows, columns) greyscale or (rows, columns, 3) RGB."""
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2")

    if photometric == "PALETTE COLOR":
        # LUT entries are 16 bit words, some holding only 8 bit values.
        rgb = apply_color_lut(frame, ds)
        return _scale_to_8bit(rgb, 8 if int(np.max(rgb)) <= 255 else 16)
    if frame.ndim == 3:
        return _scale_to_8bit(frame, int(ds.get("BitsStored") or 8))

    values = _modality(frame, ds, index)
    window = window or _dataset_window(ds, index)
    if window is not None:
        grey = apply_window(values, window)
    elif "VOILUTSequence" in ds:
        grey = _stretch(apply_voi_lut(frame, ds).astype(np.float64))
    else:
        grey = _stretch(values)

    if photometric == "MONOCHROME1":
        grey = 255.0 - grey
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """The VOI LUT functions of PS3.3 C.11.2.1.2 and C.11.2.1.3, onto 0-255."""
    center, width = window.center, window.width
    if window.function == "SIGMOID":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if window.function == "LINEAR_EXACT":
        scaled = (values - center) / width + 0.5
    elif width > 1:
        scaled = (values - (center - 0.5)) / (width - 1) + 0.5
    else:
        # A 1 wide linear window is a threshold at the center.
        scaled = (values >= center - 0.5).astype(np.float64)
    return np.clip(scaled, 0.0, 1.0) * 255.0


def _modality(frame: np.ndarray, ds: Dataset, index: int) -> np.ndarray:
    """Modality LUT (PS3.3 C.11.1), also from an enhanced instance's functional
    groups."""
    transform = _functional_item(ds, index, "PixelValueTransformationSequence")
    if transform is not None and "RescaleSlope" in transform:
        slope = float(transform.RescaleSlope)
        intercept = float(transform.get("RescaleIntercept") or 0)
        return frame.astype(np.float64) * slope + intercept
    return np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)


def _dataset_window(ds: Dataset, index: int) -> Window | None:
    source: Any = ds
    if "WindowCenter" not in ds:
        source = _functional_item(ds, index, "FrameVOILUTSequence")
    if source is None or "WindowCenter" not in source or "WindowWidth" not in source:
        return None
    try:
        center = float(_first(source.WindowCenter))
        width = float(_first(source.WindowWidth))
    except (TypeError, ValueError):
        return None
    function = str(source.get("VOILUTFunction") or "LINEAR").upper()
    if function not in WINDOW_FUNCTIONS.values():
        function = "LINEAR"
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        return None
    return Window(center, width, function)


def _functional_item(ds: Dataset, index: int, keyword: str) -> Dataset | None:
    """Item 0 of `keyword` in frame `index`'s per-frame functional group, else
    in the shared one (PS3.3 C.7.6.16)."""
    for groups, position in (
        ("PerFrameFunctionalGroupsSequence", index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        sequence = ds.get(groups)
        if not sequence or position >= len(sequence):
            continue
        inner = sequence[position].get(keyword)
        if inner:
            return inner[0]
    return None


def _first(value: Any) -> Any:
    """The first of several windows (PS3.3 C.11.2.1.2 lets an instance offer
    alternatives)."""
    return value[0] if isinstance(value, MultiValue | list | tuple) else value


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        return np.zeros_like(values, dtype=np.float64)
    return (values - low) / (high - low) * 255.0


def _scale_to_8bit(values: np.ndarray, bits: int) -> np.ndarray:
    if values.dtype == np.uint8 or bits <= 8:
        return np.clip(values, 0, 255).astype(np.uint8)
    return (
        (values.astype(np.float64) / ((1 << bits) - 1) * 255.0).round().astype(np.uint8)
    )
