"""The demo's sample studies: pydicom's bundled test files.

The files ship inside the pydicom wheel (MIT; origins in pydicom's
``data/test_files/README.txt``), so the demo needs nothing but PyPI. Each comes
from a different study, which gives the page a short study list with five
modalities and three transfer syntaxes. ``scripts/demo`` stores them with
``dicomhub upload``, which counts a file the server already holds as done, so
a second run on the same data folder stores nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

SAMPLE_NAMES = (
    "CT_small.dcm",  # CT, Explicit VR Little Endian, 128x128
    "MR_small.dcm",  # MR, Explicit VR Little Endian, 64x64
    "JPEG2000.dcm",  # NM, JPEG 2000, 1024x256
    "SC_rgb_jpeg_dcmtk.dcm",  # OT, JPEG Baseline, RGB
    "examples_rgb_color.dcm",  # US, Explicit VR Little Endian, RGB
)


@dataclass(frozen=True)
class Sample:
    path: Path
    study: str
    series: str
    instance: str


def samples() -> list[Sample]:
    found = []
    for name in SAMPLE_NAMES:
        path = Path(get_testdata_file(name))
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found.append(
            Sample(path, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        )
    return found
