"""Faults found by attacking transcoding, rendering, the change feed and PUT.

Each test reproduces one fault against a real server process; its docstring
says what was sent, what came back and what the standard or the docs promise.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from .conftest import Server
from .dicomdata import multipart_parts, to_bytes

JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"


def image(
    rows: int,
    columns: int,
    *,
    study: str | None = None,
    series: str | None = None,
    frames: int = 1,
    bits: int = 8,
) -> Dataset:
    """A Secondary Capture greyscale image of random (incompressible) pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study or pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = series or pydicom.uid.generate_uid()
    ds.PatientName = "Adversarial^Four"
    ds.PatientID = "ISSUE4"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = np.uint8 if bits == 8 else np.uint16
    shape = (frames, rows, columns) if frames > 1 else (rows, columns)
    pixels = np.random.default_rng(4).integers(0, 1 << bits, shape).astype(dtype)
    raw = pixels.tobytes()
    ds.PixelData = raw + b"\0" * (len(raw) % 2)
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    return ds


def store(server: Server, ds: Dataset, method: str = "POST") -> None:
    response = httpx.request(
        method,
        server.root + "/studies",
        content=to_bytes(ds),
        headers={"Content-Type": "application/dicom"},
        timeout=60,
    )
    assert response.status_code == 200, response.text


def instance_url(server: Server, ds: Dataset) -> str:
    return (
        f"{server.root}/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )


def instances(syntax: str, q: str = "") -> str:
    return f'multipart/related; type="application/dicom"; transfer-syntax={syntax}' + (
        f";q={q}" if q else ""
    )


def test_a_small_instance_of_a_study_gets_the_next_accepted_syntax(
    dicomweb_server: Server,
) -> None:
    """GET /studies/{study} with Accept JPEG 2000 Lossless, RLE Lossless;q=0.5,
    the study holding a 64 x 64 and an 8 x 8 image. JPEG 2000 was chosen for
    both, the 64 x 64 part was sent, then openjpeg refused the 8 x 8 frame (it
    always makes 6 wavelet resolutions, 32 pixels a side) and the connection
    was cut mid-body (RemoteProtocolError, a traceback in the log). The
    encoders' limits are known beforehand, so the answer takes the first
    accepted representation every instance fits (PS3.18 §8.7.3): RLE."""
    large = image(64, 64)
    small = image(8, 8, study=large.StudyInstanceUID, series=large.SeriesInstanceUID)
    store(dicomweb_server, large)
    store(dicomweb_server, small)
    study = f"{dicomweb_server.root}/studies/{large.StudyInstanceUID}"

    response = httpx.get(
        study,
        headers={
            "Accept": f"{instances(JPEG_2000_LOSSLESS)}, "
            f"{instances(RLE_LOSSLESS, '0.5')}"
        },
        timeout=60,
    )

    assert response.status_code == 200, response.text
    by_uid = {}
    for headers, body in multipart_parts(response):
        ds = pydicom.dcmread(io.BytesIO(body))
        assert ds.file_meta.TransferSyntaxUID in headers["content-type"]
        by_uid[ds.SOPInstanceUID] = ds
    for source in (large, small):
        assert by_uid[source.SOPInstanceUID].file_meta.TransferSyntaxUID == (
            RLE_LOSSLESS
        )
        np.testing.assert_array_equal(
            by_uid[source.SOPInstanceUID].pixel_array, source.pixel_array
        )

    # JPEG 2000 alone: a 406 before the answer starts, naming the limit.
    alone = httpx.get(study, headers={"Accept": instances(JPEG_2000_LOSSLESS)})
    assert alone.status_code == 406
    assert "32 x 32" in alone.text


def test_small_frames_as_jpeg_ls_are_refused_with_the_reason(
    dicomweb_server: Server,
) -> None:
    """GET .../frames/1 with Accept image/jls of an 8 x 8 image of random
    8-bit pixels answered 406 "could not be encoded (RuntimeError)": pyjpegls
    gives CharLS an output buffer twice the frame, which its markers overflow.
    Whether it fails depends on the pixels (8 x 8 of zeros passes), so a
    multi-frame answer could break after its first part. Frames under 32 x 32
    are refused for JPEG-LS up front, with the reason and what else to ask."""
    ds = image(8, 8, frames=3)
    store(dicomweb_server, ds)

    response = httpx.get(
        instance_url(dicomweb_server, ds) + "/frames/1,2,3",
        headers={"Accept": 'multipart/related; type="image/jls"'},
    )

    assert response.status_code == 406
    assert "JPEG-LS encoder here needs frames of at least 32 x 32" in response.text
    assert "RLE Lossless" in response.text


def test_a_frame_list_names_each_frame_once(dicomweb_server: Server) -> None:
    """GET .../frames/1,1,1,... (2000 times) answered 200 with the frame 2000
    times, and .../frames/1,1,...x20/rendered?viewport=8192,8192,0,0,1,1
    rendered a 1-pixel frame to 20 images of 8192 x 8192 (16 MB, 4 s of CPU)
    from one URL. PS3.18 §8.2 defines a frame list as non-duplicate frame
    numbers: a repeat is a 400 that says so."""
    ds = image(1, 1)
    store(dicomweb_server, ds)
    url = instance_url(dicomweb_server, ds)

    for path in (
        "/frames/" + ",".join(["1"] * 2000),
        "/frames/1,1/rendered?viewport=8192,8192,0,0,1,1",
        "/frames/1,1/thumbnail",
    ):
        response = httpx.get(url + path)
        assert response.status_code == 400, path
        assert "at most once" in response.text

    assert httpx.get(url + "/frames/1").status_code == 200


def test_change_feed_times_at_the_ends_of_the_calendar(
    dicomweb_server: Server,
) -> None:
    """GET /changefeed?startTime=0001-01-01T00:00:00+00:01 (and an endTime of
    9999-12-31T23:59:59-00:01) answered 500: converting to UTC overflowed
    Python's calendar. Such a time is before (or after) every entry."""
    store(dicomweb_server, image(2, 2))
    feed = dicomweb_server.root + "/changefeed"

    everything = httpx.get(feed, params={"startTime": "0001-01-01T00:00:00+00:01"})
    assert everything.status_code == 200, everything.text
    assert everything.json()

    before_all = httpx.get(feed, params={"endTime": "0001-01-01T00:00:00+14:00"})
    assert before_all.status_code == 200
    assert before_all.json() == []

    up_to_the_end = httpx.get(
        feed, params={"endTime": "9999-12-31T23:59:59.999999-00:01"}
    )
    assert up_to_the_end.status_code == 200
    assert up_to_the_end.json() == everything.json()


def test_retrieves_during_put_of_the_same_instance_never_fail(
    dicomweb_server: Server,
) -> None:
    """GETs of an instance (as stored, metadata, rendered, frames) while PUT
    replaced it answered 500 about one time in ten, or broke off mid-body:
    the PUT unlinks the old file between the GET's index lookup and its read,
    and pydicom re-opens a file by its path (for deferred values and its
    modification time) even when it was given an open handle. The stored file
    is now read through the open handle only, and a file gone before it was
    opened is looked up again."""
    ds = image(256, 256, bits=16)
    store(dicomweb_server, ds)
    url = instance_url(dicomweb_server, ds)
    stop = threading.Event()
    outcomes: Counter[str] = Counter()

    def replace() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                client.put(
                    dicomweb_server.root + "/studies",
                    content=to_bytes(ds),
                    headers={"Content-Type": "application/dicom"},
                )

    def read(path: str) -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    outcomes[f"{path} {client.get(url + path).status_code}"] += 1
                except httpx.TransportError as exc:
                    outcomes[f"{path} {type(exc).__name__}"] += 1

    threads = [threading.Thread(target=replace)] + [
        threading.Thread(target=read, args=(path,))
        for path in ("", "/metadata", "/rendered", "/frames/1")
    ]
    for thread in threads:
        thread.start()
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join()

    assert outcomes, "no request finished"
    assert all(key.endswith(" 200") for key in outcomes), outcomes
