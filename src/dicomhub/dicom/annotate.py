"""Burned-in annotation of rendered images (PS3.18 §8.3.5.1.1).

``annotation=patient`` writes the patient's name, ID, birth date and sex in
the top left corner; ``annotation=technique`` writes the modality, study date,
series and instance numbers, the frame and the VOI window in the bottom left
corner. The text is white with a black outline so that it reads on any image,
and it is drawn last, on the image as it will be sent: PS3.18 §8.3.5.1.1 puts
annotations after every other rendering step.

Pillow's own font holds ASCII only, so the text is folded to ASCII: accents
are dropped (``Müller`` is written ``Muller``) and other letters become ``?``.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from ..errors import BadRequest

KEYWORDS = ("patient", "technique")

# Characters that would break a line or draw nothing useful.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def parse_annotation(text: str) -> frozenset[str]:
    """``patient``, ``technique`` or both, comma-separated (PS3.18 §8.3.5.1.1)."""
    words = [word.strip().lower() for word in text.split(",")]
    if any(word not in KEYWORDS for word in words):
        raise BadRequest(
            "annotation takes patient, technique or both, comma-separated, for "
            "example annotation=patient,technique (PS3.18 §8.3.5.1.1)"
        )
    return frozenset(words)


def annotate(
    image: Image.Image,
    ds: Dataset,
    index: int,
    keywords: frozenset[str],
    window: tuple[float, float] | None,
) -> Image.Image:
    """`image` with the text `keywords` ask for, for frame `index` (0-based) of
    the instance with header `ds`; `window` is the (center, width) applied to
    greyscale pixels."""
    size = max(9, min(image.size) // 24)
    font = _font(size)
    line_height = size + max(2, size // 4)
    margin = max(2, size // 3)
    draw = ImageDraw.Draw(image)
    if image.mode == "L":
        colours: tuple[object, object] = (255, 0)
    else:
        colours = ((255, 255, 255), (0, 0, 0))

    if "patient" in keywords:
        lines = _patient_lines(ds)
        _draw_lines(draw, font, colours, lines, (margin, margin), line_height)
    if "technique" in keywords:
        lines = _technique_lines(ds, index, window)
        top = image.height - margin - line_height * len(lines)
        _draw_lines(draw, font, colours, lines, (margin, top), line_height)
    return image


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Font:
    """Pillow's own font: the FreeType one when Pillow has FreeType, else its
    small bitmap font (which ignores `size`)."""
    return ImageFont.load_default(size=size)


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    font: Font,
    colours: tuple[object, object],
    lines: list[str],
    start: tuple[int, int],
    line_height: int,
) -> None:
    """`lines` from `start` down, in the first of `colours` outlined in the
    second."""
    white, black = colours
    left, top = start
    outline = isinstance(font, ImageFont.FreeTypeFont)
    for number, line in enumerate(lines):
        draw.text(
            (left, top + number * line_height),
            line,
            font=font,
            fill=white,
            stroke_width=1 if outline else 0,
            stroke_fill=black,
        )


def _patient_lines(ds: Dataset) -> list[str]:
    # The alphabetic group of the name (PS3.5 §6.2.1), its components spaced.
    name = _ascii(str(getattr(ds.get("PatientName"), "alphabetic", "")))
    birth = _date(_text(ds, "PatientBirthDate"))
    lines = [
        " ".join(_CONTROL.sub(" ", name).replace("^", " ").split()),
        _text(ds, "PatientID"),
        " ".join(part for part in (birth, _text(ds, "PatientSex")) if part),
    ]
    return [line for line in lines if line]


def _technique_lines(
    ds: Dataset, index: int, window: tuple[float, float] | None
) -> list[str]:
    series, instance = _text(ds, "SeriesNumber"), _text(ds, "InstanceNumber")
    frames = _text(ds, "NumberOfFrames")
    lines = [
        " ".join(
            part
            for part in (_text(ds, "Modality"), _date(_text(ds, "StudyDate")))
            if part
        ),
        " ".join(
            part
            for part in (
                f"Se {series}" if series else "",
                f"Im {instance}" if instance else "",
            )
            if part
        ),
    ]
    if frames.isdigit() and int(frames) > 1:
        lines.append(f"Frame {index + 1}/{int(frames)}")
    if window is not None:
        lines.append(f"W {window[1]:g} C {window[0]:g}")
    return [line for line in lines if line]


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return _ascii(_CONTROL.sub(" ", str(value))).strip()


def _ascii(text: str) -> str:
    """`text` in the characters Pillow's font has: letters without their
    accents, ``?`` for what has no ASCII form."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(char for char in decomposed if not unicodedata.combining(char))
    return kept.encode("ascii", "replace").decode("ascii")


def _date(value: str) -> str:
    """A DA value as YYYY-MM-DD; anything else as it is."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value
