"""STOW-RS with PUT as upsert, as the Azure DICOM service offers: the same
bodies and answers as POST (PS3.18 §10.5), but a stored SOP Instance UID is
replaced instead of failing with 45070."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from pydicom.dataset import Dataset

from .conftest import Server
from .dicomdata import fresh, multipart_body, multipart_parts, stow, to_bytes

ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def put(
    root: str, datasets: list[Dataset | bytes], study: str | None = None
) -> httpx.Response:
    parts = [d if isinstance(d, bytes) else to_bytes(d) for d in datasets]
    body, content_type = multipart_body(parts)
    url = f"{root}/studies" + (f"/{study}" if study else "")
    return httpx.put(
        url, content=body, headers={"Content-Type": content_type}, timeout=60
    )


def instance_url(root: str, ds: Dataset) -> str:
    return (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def reasons(response: httpx.Response) -> list[int]:
    failed = response.json().get("00081198", {}).get("Value", [])
    return [item["00081197"]["Value"][0] for item in failed]


def stored_sops(response: httpx.Response) -> list[str]:
    referenced = response.json().get("00081199", {}).get("Value", [])
    return [item["00081155"]["Value"][0] for item in referenced]


def retrieve(root: str, ds: Dataset) -> bytes:
    response = httpx.get(
        instance_url(root, ds), headers={"Accept": ANY_SYNTAX}, timeout=60
    )
    assert response.status_code == 200, response.text
    parts = multipart_parts(response)
    assert len(parts) == 1
    return parts[0][1]


def instance_search(root: str, ds: Dataset) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{root}/studies/{ds.StudyInstanceUID}/instances",
        params={"SOPInstanceUID": ds.SOPInstanceUID},
    )
    assert response.status_code == 200, response.text
    return response.json()


def blob_files(server: Server, sop: str) -> list[Path]:
    return [
        path
        for path in (server.data_dir / "blobs").rglob(f"{sop}.*")
        if ".incoming" not in path.parts
    ]


def feed_of(root: str, sop: str) -> list[tuple[str, str]]:
    response = httpx.get(f"{root}/changefeed", params={"includeMetadata": "false"})
    assert response.status_code == 200, response.text
    return [
        (entry["Action"], entry["State"])
        for entry in response.json()
        if entry["SopInstanceUid"] == sop
    ]


def test_put_replaces_a_stored_instance(dicomweb_server: Server) -> None:
    root = dicomweb_server.root
    ct = fresh("CT_small.dcm", InstanceNumber=1)
    assert stow(root, [ct]).status_code == 200
    first_blob = blob_files(dicomweb_server, ct.SOPInstanceUID)
    assert len(first_blob) == 1

    ct.InstanceNumber = 77
    response = put(root, [ct])

    assert response.status_code == 200, response.text
    assert stored_sops(response) == [ct.SOPInstanceUID]
    assert reasons(response) == []
    assert retrieve(root, ct) == to_bytes(ct)
    [found] = instance_search(root, ct)
    assert found["00200013"]["Value"] == [77]

    # Only the new file remains, under a key of its own.
    blobs = blob_files(dicomweb_server, ct.SOPInstanceUID)
    assert len(blobs) == 1
    assert blobs != first_blob
    assert blobs[0].read_bytes() == to_bytes(ct)

    # The feed's older entry is "replaced", as after a delete and re-store.
    assert feed_of(root, ct.SOPInstanceUID) == [
        ("create", "replaced"),
        ("create", "current"),
    ]

    # POST keeps refusing what is stored.
    again = stow(root, [ct])
    assert again.status_code == 409, again.text
    assert reasons(again) == [45070]
    assert retrieve(root, ct) == to_bytes(ct)


def test_put_stores_a_new_instance(dicomweb_server: Server) -> None:
    root = dicomweb_server.root
    ct = fresh("CT_small.dcm")
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID)

    response = put(root, [ct, mr], study=ct.StudyInstanceUID)

    assert response.status_code == 200, response.text
    assert stored_sops(response) == [ct.SOPInstanceUID, mr.SOPInstanceUID]
    assert retrieve(root, mr) == to_bytes(mr)
    assert feed_of(root, ct.SOPInstanceUID) == [("create", "current")]


def test_put_with_a_junk_part_answers_202(dicomweb_server: Server) -> None:
    root = dicomweb_server.root
    ct = fresh("CT_small.dcm")

    response = put(root, [ct, b"not a DICOM file"])

    assert response.status_code == 202, response.text
    assert stored_sops(response) == [ct.SOPInstanceUID]
    assert reasons(response) == [43264]


def test_put_refuses_to_move_an_instance(dicomweb_server: Server) -> None:
    root = dicomweb_server.root
    ct = fresh("CT_small.dcm")
    assert stow(root, [ct]).status_code == 200
    original = to_bytes(ct)

    moved = fresh("CT_small.dcm")
    moved.SOPInstanceUID = ct.SOPInstanceUID
    moved.file_meta.MediaStorageSOPInstanceUID = ct.SOPInstanceUID
    response = put(root, [moved])

    assert response.status_code == 409, response.text
    assert reasons(response) == [45071]
    assert retrieve(root, ct) == original
    assert len(blob_files(dicomweb_server, ct.SOPInstanceUID)) == 1
