"""WADO-RS through dicomweb-client, the Python DICOMweb client (BRIEF.md §4)."""

from __future__ import annotations

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from .conftest import Server
from .dicomdata import fresh, stow


@pytest.fixture(scope="module")
def stored(dicomweb_server: Server) -> tuple[DICOMwebClient, Dataset, Dataset]:
    ct = fresh("CT_small.dcm")
    j2k = fresh("JPEG2000.dcm", study=ct.StudyInstanceUID)
    response = stow(dicomweb_server.root, [ct, j2k])
    assert response.status_code == 200, response.text
    return DICOMwebClient(dicomweb_server.root), ct, j2k


def uids(ds: Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def test_metadata_reads_back_as_a_dataset(
    stored: tuple[DICOMwebClient, Dataset, Dataset],
) -> None:
    client, ct, _ = stored

    metadata = client.retrieve_instance_metadata(*uids(ct))
    ds = Dataset.from_json(metadata)

    assert ds.SOPInstanceUID == ct.SOPInstanceUID
    assert ds.PatientName == ct.PatientName
    assert ds.PixelSpacing == ct.PixelSpacing


def test_frames_as_stored_and_decoded(
    stored: tuple[DICOMwebClient, Dataset, Dataset],
) -> None:
    client, ct, j2k = stored

    (native,) = client.retrieve_instance_frames(*uids(ct), frame_numbers=[1])
    assert native == ct.PixelData

    (compressed,) = client.retrieve_instance_frames(
        *uids(j2k),
        frame_numbers=[1],
        media_types=(("application/octet-stream", "*"),),
    )
    assert compressed == next(generate_frames(j2k.PixelData, number_of_frames=1))

    (decoded,) = client.retrieve_instance_frames(*uids(j2k), frame_numbers=[1])
    assert decoded == j2k.pixel_array.astype("<u2").tobytes()


def test_instances_and_study(stored: tuple[DICOMwebClient, Dataset, Dataset]) -> None:
    client, ct, j2k = stored

    instance = client.retrieve_instance(
        *uids(j2k), media_types=(("application/dicom", "*"),)
    )
    assert instance.file_meta.TransferSyntaxUID == j2k.file_meta.TransferSyntaxUID

    study = client.retrieve_study(ct.StudyInstanceUID)
    assert sorted(ds.SOPInstanceUID for ds in study) == sorted(
        [ct.SOPInstanceUID, j2k.SOPInstanceUID]
    )
    assert all(isinstance(ds, pydicom.Dataset) for ds in study)


def test_rendered_and_thumbnail(
    stored: tuple[DICOMwebClient, Dataset, Dataset],
) -> None:
    client, ct, _ = stored

    jpeg = client.retrieve_instance_rendered(*uids(ct))
    png = client.retrieve_instance_rendered(*uids(ct), media_types=("image/png",))

    assert jpeg[:2] == b"\xff\xd8"
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
