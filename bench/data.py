"""The benchmark's instances: synthetic CT slices grouped into patients and studies.

With ../shared beside the repository, ``shared/samples/make_synthetic.py`` makes
them (reproducible for a seed, names in several character sets). Without it,
copies of pydicom's CT_small.dcm get new UIDs and a patient/study/series layout
of the same shape.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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


def make_synthetic(count: int, out: Path, seed: int) -> list[Instance]:
    subprocess.run(
        [sys.executable, str(MAKE_SYNTHETIC), "--count", str(count),
         "--out", str(out), "--seed", str(seed)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    with open(out / "index.csv", newline="", encoding="utf-8") as f:
        return [
            Instance(
                out / row["file"],
                row["PatientID"],
                row["PatientName"],
                row["StudyInstanceUID"],
                row["SeriesInstanceUID"],
                row["SOPInstanceUID"],
            )
            for row in csv.DictReader(f)
        ]


def make_from_ct_small(count: int, out: Path, seed: int) -> list[Instance]:
    """Copies of CT_small: 10 slices a series, 3 series a study, 2 studies a patient."""
    rng = random.Random(seed)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    instances = []
    study = series = ""
    patient_id = patient_name = ""
    for i in range(count):
        if i % 60 == 0:
            patient_id = f"BENCH-{i // 60:06d}"
            patient_name = rng.choice(FALLBACK_NAMES)
        if i % 30 == 0:
            study = generate_uid()
        if i % 10 == 0:
            series = generate_uid()
        ds = template.copy()
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i % 10 + 1
        path = out / f"ct_{i:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        instances.append(
            Instance(path, patient_id, patient_name, study, series, ds.SOPInstanceUID)
        )
    return instances


def instances(count: int, out: Path, seed: int = 0) -> tuple[list[Instance], str]:
    """`count` instances written under `out`, and where they came from."""
    out = (
        out / f"{'synthetic' if MAKE_SYNTHETIC.exists() else 'ct_small'}-{count}-{seed}"
    )
    out.mkdir(parents=True, exist_ok=True)
    if MAKE_SYNTHETIC.exists():
        return make_synthetic(count, out, seed), "make_synthetic.py"
    return make_from_ct_small(count, out, seed), "CT_small copies"
