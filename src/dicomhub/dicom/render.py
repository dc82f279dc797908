"""Rendered frames (PS3.18 §10.4, §8.3.5, §8.7.4): 8-bit greyscale or RGB images as
JPEG or PNG.

Greyscale goes through the Modality LUT, then a VOI window: the ``window``
query parameter, else the instance's (or its frame's functional group's)
Window Center / Width, else its VOI LUT, else the frame's own minimum and
maximum. MONOCHROME1 is inverted so that higher values are darker, as the
standard displays it (PS3.3 C.7.6.3.1.2). Colour is kept: RGB and decoded
YCbCr as they are, PALETTE COLOR through its lookup tables.

Then, in the order of PS3.18 §8.3.5.1: the source region of a cropping
viewport (``vw,vh,sx,sy,sw,sh``) is cut out of the rendered frame and mirrored
where ``sw`` or ``sh`` is negative, then scaled to fit ``vw`` x ``vh``
keeping its aspect ratio; a plain ``vw,vh`` only bounds the size and never
enlarges. Annotations (patient, technique) are burned in last.

Known limits: presentation states, overlays, shutters and ICC profiles are not
applied; a viewport answer is the fitted image, not padded to ``vw`` x ``vh``;
only the JPEG and PNG media types are made (no GIF, no video), so a multi-frame
instance renders one frame at a time; a small region may be magnified up to
8192 x 8192 pixels, which takes memory and time; annotation text uses Pillow's
own font, which holds ASCII only (accents are dropped, other letters are ``?``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from ..errors import BadRequest, PayloadTooLarge
from .annotate import annotate, parse_annotation

JPEG = "image/jpeg"
PNG = "image/png"
MEDIA_TYPES = (JPEG, PNG)

# PS3.18 §8.3.5.1.4 names the VOI LUT functions in lower case.
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
class Region:
    """The source image region of a cropping viewport (PS3.18 §8.3.5.1.3), in
    pixels of the frame: its top left corner and its size (None: up to the
    image's edge), mirrored left to right and top to bottom when asked."""

    x: int = 0
    y: int = 0
    width: int | None = None
    height: int | None = None
    flip_x: bool = False
    flip_y: bool = False


@dataclass(frozen=True)
class Viewport:
    """``viewport=vw,vh[,sx,sy,sw,sh]`` (PS3.18 §8.3.5.1.3)."""

    width: int
    height: int
    region: Region | None = None


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = JPEG
    window: Window | None = None
    quality: int = 90
    viewport: Viewport | None = None
    annotation: frozenset[str] = frozenset()

    def as_type(self, media_type: str) -> RenderOptions:
        return replace(self, media_type=media_type)


class RegionOutside(BadRequest):
    """The viewport's source region starts beyond the image."""


# The largest viewport side; a region may be magnified up to it.
MAX_VIEWPORT = 8192

# The largest frame rendered, in pixels: rendering holds a few float64 copies
# of the frame (Modality LUT, window), 8 bytes a pixel each. Pillow's own
# decompression bomb check (Image.MAX_IMAGE_PIXELS) stays on as well.
MAX_RENDER_PIXELS = 8192 * 8192

VIEWPORT_FORM = (
    "viewport is vw,vh or vw,vh,sx,sy,sw,sh in pixels, for example "
    "viewport=512,512 or viewport=256,256,0,0,128,128; vw and vh are 1 to "
    f"{MAX_VIEWPORT}, sx and sy are not negative, any of sx,sy,sw,sh may be "
    "left empty (0, 0 and the rest of the image), and a negative sw or sh "
    "mirrors the region (PS3.18 §8.3.5.1.3)"
)


def parse_query(
    query: Mapping[str, str], default_viewport: Viewport | None = None
) -> RenderOptions:
    """The rendering query parameters of PS3.18 §8.3.5.1: ``window``,
    ``viewport``, ``quality`` and ``annotation``; the media type is left to
    the caller (`RenderOptions.as_type`)."""
    viewport = default_viewport
    if "viewport" in query:
        viewport = parse_viewport(query["viewport"])
    return RenderOptions(
        window=parse_window(query["window"]) if "window" in query else None,
        quality=parse_quality(query["quality"]) if "quality" in query else 90,
        viewport=viewport,
        annotation=(
            parse_annotation(query["annotation"])
            if "annotation" in query
            else frozenset()
        ),
    )


def parse_window(text: str) -> Window:
    """``center,width[,function]`` (PS3.18 §8.3.5.1.4)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise BadRequest(
            "window must be center,width,function, for example "
            "window=40,400,linear (PS3.18 §8.3.5.1.4)"
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


def parse_viewport(text: str) -> Viewport:
    """``vw,vh`` or ``vw,vh,sx,sy,sw,sh`` (PS3.18 §8.3.5.1.3).

    Region values may be decimals, rounded to whole pixels; an empty one takes
    its default. A negative ``sw`` or ``sh`` takes the region of that size
    and mirrors it, as Orthanc does.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 6):
        raise BadRequest(VIEWPORT_FORM)
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise BadRequest(VIEWPORT_FORM) from None
    if not (0 < width <= MAX_VIEWPORT and 0 < height <= MAX_VIEWPORT):
        raise BadRequest(VIEWPORT_FORM)
    if len(parts) == 2:
        return Viewport(width, height)

    x, y, region_width, region_height = (_pixels(part) for part in parts[2:])
    if (x or 0) < 0 or (y or 0) < 0 or region_width == 0 or region_height == 0:
        raise BadRequest(VIEWPORT_FORM)
    region = Region(
        x=x or 0,
        y=y or 0,
        width=None if region_width is None else abs(region_width),
        height=None if region_height is None else abs(region_height),
        flip_x=region_width is not None and region_width < 0,
        flip_y=region_height is not None and region_height < 0,
    )
    return Viewport(width, height, region)


def _pixels(text: str) -> int | None:
    """A region value in whole pixels; None when left empty."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(VIEWPORT_FORM) from None
    if not math.isfinite(value):
        raise BadRequest(VIEWPORT_FORM)
    return round(value)


def parse_quality(text: str) -> int:
    """``quality`` 1-100 (PS3.18 §8.3.5.1)."""
    try:
        quality = int(text)
    except ValueError:
        raise BadRequest("quality must be an integer from 1 to 100") from None
    if not 1 <= quality <= 100:
        raise BadRequest("quality must be an integer from 1 to 100")
    return quality


def check_renderable(rows: int, columns: int, number: int) -> None:
    """PayloadTooLarge, before the frame is decoded, when frame `number` is
    over MAX_RENDER_PIXELS (or Pillow's MAX_IMAGE_PIXELS, if lower)."""
    limit = MAX_RENDER_PIXELS
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, int(Image.MAX_IMAGE_PIXELS))
    if rows * columns > limit:
        raise PayloadTooLarge(
            f"frame {number} is {columns} x {rows} pixels, over the {limit} "
            "pixels this server renders (dicomhub.dicom.render.MAX_RENDER_PIXELS); "
            f"retrieve the frame itself (frames/{number}) instead"
        )


def render(frame: np.ndarray, ds: Dataset, index: int, options: RenderOptions) -> bytes:
    """Frame `index` (0-based; its decoded pixels `frame`) of the instance with
    header `ds`, encoded as `options.media_type`."""
    image = Image.fromarray(to_8bit(frame, ds, index, options.window))

    # PS3.18 §8.3.5.1: the source region after the presentation (windowing),
    # the viewport after the region, annotations after everything.
    viewport = options.viewport
    if viewport is not None and viewport.region is not None:
        image = _crop(image, viewport.region)
    if viewport is not None:
        image = _fit(image, viewport)
    if options.annotation:
        image = annotate(
            image, ds, index, options.annotation, _shown_window(ds, index, options)
        )

    buffer = io.BytesIO()
    if options.media_type == PNG:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=options.quality)
    return buffer.getvalue()


def _crop(image: Image.Image, region: Region) -> Image.Image:
    """The part of `image` under `region`, which is cut at the image's edges."""
    columns, rows = image.size
    if region.x >= columns or region.y >= rows:
        raise RegionOutside(
            f"the viewport region starts at sx={region.x}, sy={region.y}, outside "
            f"this image of {columns} x {rows} pixels; sx must be below "
            f"{columns} and sy below {rows} (PS3.18 §8.3.5.1.3)"
        )
    right = columns if region.width is None else min(columns, region.x + region.width)
    bottom = rows if region.height is None else min(rows, region.y + region.height)
    image = image.crop((region.x, region.y, right, bottom))

    if region.flip_x:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if region.flip_y:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return image


def _fit(image: Image.Image, viewport: Viewport) -> Image.Image:
    """`image` scaled to the largest size inside the viewport with the same
    aspect ratio. A plain ``vw,vh`` is a bound (as the rows and columns of
    WADO-URI, PS3.18 §8.2.2) and never enlarges; a region is scaled up too,
    magnifying it being what a region is for."""
    if viewport.region is None:
        image.thumbnail((viewport.width, viewport.height), Image.Resampling.LANCZOS)
        return image

    scale = min(viewport.width / image.width, viewport.height / image.height)
    size = (
        min(viewport.width, max(1, round(image.width * scale))),
        min(viewport.height, max(1, round(image.height * scale))),
    )
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def _shown_window(
    ds: Dataset, index: int, options: RenderOptions
) -> tuple[float, float] | None:
    """The (center, width) a greyscale frame was shown with, for annotation."""
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2")
    if not photometric.startswith("MONOCHROME"):
        return None
    window = options.window or _dataset_window(ds, index)
    return None if window is None else (window.center, window.width)


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
