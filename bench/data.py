"""The benchmark's instances: synthetic CT slices grouped into patients and studies.

With ../shared beside the repository, ``shared/samples/make_synthetic.py`` makes
them (reproducible for a seed, names in several character sets). Without it,
copies of pydicom's CT_small.dcm get new UIDs and a patient/study/series layout
of the same shape (and, for a larger ``size``, new 16-bit pixels of that size).

Each seed gives its own patients and UIDs (make_synthetic puts the seed in both),
so sets made with different seeds can be stored side by side.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPOSITORY = Path(__file__).resolve().parent.parent
MAKE_SYNTHETIC = REPOSITORY.parent / "shared" / "samples" / "make_synthetic.py"
FALLBACK_NAMES = ["Smith^John", "Miller^Sarah", "Williams^Robert", "Nguyen^An"]


@dataclass(frozen=True)
class Instance:
    path: Path
    patient_id: str
    patient_name: str
    study: str
    series: str
    sop: str
    study_date: str = ""
    modality: str = "CT"


def make_synthetic_files(count: int, out: Path, seed: int, size: int) -> None:
    subprocess.run(
        [sys.executable, str(MAKE_SYNTHETIC), "--count", str(count),
         "--out", str(out), "--seed", str(seed), "--size", str(size)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def make_synthetic(count: int, out: Path, seed: int, size: int) -> list[Instance]:
    # index.csv is written last: a set with one was made whole, and the same
    # arguments make the same bytes, so it is reused.
    if not (out / "index.csv").exists():
        make_synthetic_files(count, out, seed, size)
    with open(out / "index.csv", newline="", encoding="utf-8") as f:
        return [
            Instance(
                out / row["file"],
                row["PatientID"],
                row["PatientName"],
                row["StudyInstanceUID"],
                row["SeriesInstanceUID"],
                row["SOPInstanceUID"],
                row["StudyDate"],
                row["Modality"],
            )
            for row in csv.DictReader(f)
        ]


def make_from_ct_small(count: int, out: Path, seed: int, size: int) -> list[Instance]:
    """Copies of CT_small: 10 slices a series, 3 series a study, 2 studies a
    patient; `size` × `size` 16-bit pixels when `size` is not CT_small's own."""
    rng = random.Random(seed)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if size != template.Rows:
        pixels = np.random.default_rng(seed).integers(0, 4096, (size, size))
        template.Rows = template.Columns = size
        template.BitsAllocated, template.BitsStored, template.HighBit = 16, 12, 11
        template.PixelRepresentation = 0
        template.PixelData = pixels.astype("<u2").tobytes()
    dates = [f"20{year:02d}0{month}15" for year in range(10, 25) for month in (1, 6)]
    instances = []
    study = series = ""
    patient_id = patient_name = ""
    for i in range(count):
        if i % 60 == 0:
            patient_id = f"BENCH{seed:03d}-{i // 60:06d}"
            patient_name = rng.choice(FALLBACK_NAMES)
        if i % 30 == 0:
            study = generate_uid()
            study_date = rng.choice(dates)
        if i % 10 == 0:
            series = generate_uid()
        ds = template.copy()
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.StudyDate = study_date
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i % 10 + 1
        path = out / f"ct_{i:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        instances.append(
            Instance(
                path, patient_id, patient_name, study, series, ds.SOPInstanceUID,
                study_date,
            )
        )  # fmt: skip
    return instances


def instances(
    count: int, out: Path, seed: int = 0, size: int | None = None
) -> tuple[list[Instance], str]:
    """`count` instances of `size` × `size` pixels (each source's own size when
    None) written under `out`, and where they came from. A set already made
    with the same arguments is reused."""
    kind = "synthetic" if MAKE_SYNTHETIC.exists() else "ct_small"
    size = size or (64 if MAKE_SYNTHETIC.exists() else 128)
    out = out / f"{kind}-{count}-{seed}-{size}"
    out.mkdir(parents=True, exist_ok=True)
    if MAKE_SYNTHETIC.exists():
        return make_synthetic(count, out, seed, size), "make_synthetic.py"
    return make_from_ct_small(count, out, seed, size), "CT_small copies"
