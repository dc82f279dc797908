"""Test data: sample files, fresh copies with new UIDs, and STOW-RS bodies."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pydicom
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

HERE = Path(__file__).parent


def shared_samples() -> Path | None:
    """``../shared/samples/dicom`` beside the clone, or $DICOMHUB_SAMPLES."""
    configured = os.environ.get("DICOMHUB_SAMPLES")
    candidates = [Path(configured)] if configured else []
    candidates.append(HERE.parent.parent / "shared" / "samples" / "dicom")
    for candidate in candidates:
        if (candidate / "clean").is_dir():
            return candidate
    return None


def sample_files(kind: str) -> list[Path]:
    """Files of the corpus folder `kind` (clean, variants, ugly).

    Without ../shared the clean set falls back to pydicom's bundled files and
    the ugly set to the copy kept in tests/data/ugly (licences beside it).
    """
    root = shared_samples()
    if root is not None:
        return sorted((root / kind).iterdir())
    if kind == "ugly":
        return sorted(
            p for p in (HERE / "data" / "ugly").iterdir() if p.suffix != ".md"
        )
    if kind == "clean":
        names = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm"]
        return [Path(get_testdata_file(name)) for name in names]
    return []


def sample_path(name: str) -> Path:
    if name.startswith("chr"):
        return Path(
            get_charset_files(name if name.endswith(".dcm") else f"{name}.dcm")[0]
        )
    return Path(get_testdata_file(name))


def read(name_or_path: str | Path) -> Dataset:
    path = name_or_path if isinstance(name_or_path, Path) else sample_path(name_or_path)
    return pydicom.dcmread(path)


def fresh(
    name_or_path: str | Path | Dataset,
    *,
    study: str | None = None,
    series: str | None = None,
    **attributes: Any,
) -> Dataset:
    """A copy with new Study/Series/SOP Instance UIDs and its own PatientID."""
    if isinstance(name_or_path, Dataset):
        ds = name_or_path
    else:
        ds = read(name_or_path)
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = "PID-" + uuid.uuid4().hex[:8]
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def multipart_body(
    parts: Iterable[bytes], boundary: str = "dicomhub-test-boundary"
) -> tuple[bytes, str]:
    """A STOW-RS body and its Content-Type (PS3.18 §10.5.1.1)."""
    body = b""
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body, content_type


def stow(
    root: str,
    datasets: Iterable[Dataset | bytes],
    study: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    parts = [d if isinstance(d, bytes) else to_bytes(d) for d in datasets]
    body, content_type = multipart_body(parts)
    url = f"{root}/studies" + (f"/{study}" if study else "")
    return httpx.post(
        url,
        content=body,
        headers={"Content-Type": content_type, **(headers or {})},
        timeout=60,
    )


def multipart_parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related answer into (headers, body) pairs (RFC 2046 §5.1)."""
    content_type = response.headers["content-type"]
    params = dict(
        item.strip().split("=", 1)
        for item in content_type.split(";")[1:]
        if "=" in item
    )
    boundary = params["boundary"].strip('"').encode()
    parts = []
    for chunk in response.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, body[:-2] if body.endswith(b"\r\n") else body))
    return parts


# dicomweb-13: the person names pydicom decodes from its character set files,
# as PS3.18 F.2.2 objects (an empty phonetic group is left out).
PERSON_NAME_OBJECTS = [
    (
        "chrH31.dcm",
        {
            "Alphabetic": "Yamada^Tarou",
            "Ideographic": "山田^太郎",
            "Phonetic": "やまだ^たろう",
        },
    ),
    (
        "chrI2.dcm",
        {
            "Alphabetic": "Hong^Gildong",
            "Ideographic": "洪^吉洞",
            "Phonetic": "홍^길동",
        },
    ),
    ("chrX1.dcm", {"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小東"}),
]


def blob_files(blobs: Path) -> list[Path]:
    """Every file under a server's blob folder, stored or temporary, less each
    process's lock file in ``.incoming`` (dicomhub.storage.folder)."""
    return [p for p in blobs.rglob("*") if p.is_file() and p.name != "lock"]


def temporary_files(blobs: Path) -> list[Path]:
    """Files a store left in ``.incoming``, less each process's lock file
    (dicomhub.storage.folder): what an interrupted or refused write leaves."""
    return blob_files(blobs / ".incoming")
