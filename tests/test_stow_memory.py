"""STOW-RS keeps memory bounded: a 300 MB body streamed chunked is stored
while the server's peak resident set stays far below the body's size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from .conftest import Server
from .dicomdata import fresh, to_bytes
from .test_ugly_corpus import check_data_dir

INSTANCES = 30
ROWS, COLUMNS = 2048, 2560  # 16-bit: 10 MiB of pixel data per instance
BOUNDARY = "memory-test-boundary"


def peak_rss_bytes(server: Server) -> int:
    """VmHWM, the peak resident set size of the server process (proc(5))."""
    status = f"/proc/{server.process.pid}/status"
    with open(status) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in {status}")


def big_instances(study: str) -> Iterator[bytes]:
    """The body, made and sent one slice at a time (a chunked upload)."""
    for _ in range(INSTANCES):
        ds = fresh("CT_small.dcm", study=study, Rows=ROWS, Columns=COLUMNS)
        ds.PixelData = bytes(ROWS * COLUMNS * 2)
        data = to_bytes(ds)
        del ds
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def test_big_chunked_body_keeps_memory_bounded(server_factory: Any) -> None:
    server: Server = server_factory()
    study = fresh("CT_small.dcm").StudyInstanceUID

    response = httpx.post(
        f"{server.root}/studies",
        content=big_instances(study),
        headers={
            "Content-Type": "multipart/related; "
            f'type="application/dicom"; boundary={BOUNDARY}'
        },
        timeout=600,
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["00081199"]["Value"]) == INSTANCES
    body_size = INSTANCES * ROWS * COLUMNS * 2
    assert body_size > 300 * 10**6
    peak = peak_rss_bytes(server)
    assert peak < 300 * 10**6, f"server peak RSS {peak / 1e6:.0f} MB"
    check_data_dir(server.data_dir)
