"""DICOM JSON (PS3.18 Annex F) from datasets: dicomhub.dicom.dicomjson, on files."""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomhub.dicom.dicomjson import (
    decimal_string,
    parse_tag_path,
    to_dicom_json,
    value_at,
)
from dicomhub.errors import BadRequest

from .dicomdata import (
    PERSON_NAME_OBJECTS,
    fresh,
    read,
    sample_files,
    sample_path,
    to_bytes,
)


def walk(node: Any) -> list[dict[str, Any]]:
    """Every attribute object of a DICOM JSON object, at any depth."""
    found = []
    for key, attribute in node.items():
        assert len(key) == 8 and key == key.upper(), key
        int(key, 16)
        assert "vr" in attribute, key
        found.append(attribute)
        if attribute["vr"] == "SQ":
            for item in attribute.get("Value", []):
                found.extend(walk(item))
    return found


def stored(ds: Dataset, defer: bool = True) -> Dataset:
    """`ds` as the server reads it back from disk."""
    return pydicom.dcmread(io.BytesIO(to_bytes(ds)), defer_size=1024 if defer else None)


def test_dicomweb_11_empty_values_json() -> None:
    """cases/dicomweb/dicomweb-11-empty-values-json.md, on the dataset itself."""
    ds = fresh(
        "CT_small.dcm",
        AccessionNumber="",
        DerivationDescription="",
        ImageType=["ORIGINAL", "", "AXIAL"],
    )
    attributes = to_dicom_json(stored(ds))

    assert attributes["00080050"] == {"vr": "SH"}
    assert attributes["00082111"] == {"vr": "ST"}
    assert attributes["00080008"]["Value"] == ["ORIGINAL", None, "AXIAL"]
    for attribute in walk(attributes):
        assert attribute.get("Value") not in ([], [None], [""])


def test_empty_sequence_and_empty_item() -> None:
    ds = fresh("CT_small.dcm")
    ds.ReferencedImageSequence = []
    ds.ProcedureCodeSequence = [Dataset()]

    attributes = to_dicom_json(stored(ds))

    assert attributes["00081140"] == {"vr": "SQ"}
    assert attributes["00081032"] == {"vr": "SQ", "Value": [{}]}


def test_dicomweb_12_numbers_in_json() -> None:
    """cases/dicomweb/dicomweb-12-numbers-in-json.md, on the dataset itself."""
    ds = read("CT_small.dcm")
    attributes = json.loads(json.dumps(to_dicom_json(stored(ds))))

    instance_number = attributes["00200013"]["Value"][0]
    assert isinstance(instance_number, int)
    assert instance_number == int(ds.InstanceNumber)
    spacing = attributes["00280030"]["Value"]
    assert all(isinstance(value, float) for value in spacing)
    assert spacing == [float(value) for value in ds.PixelSpacing]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.661468", 0.661468),
        ("512", 512),
        ("-3", -3),
        ("1.50", 1.5),
        ("1e3", 1000.0),
        ("3.14159265358979323846264338", "3.14159265358979323846264338"),
        ("12345678901234567", "12345678901234567"),
    ],
)
def test_decimal_string_is_a_number_unless_it_loses_precision(
    text: str, expected: Any
) -> None:
    assert decimal_string(text) == expected
    assert type(decimal_string(text)) is type(expected)


def test_very_long_and_special_numbers() -> None:
    ds = Dataset()
    ds.add_new(0x00720082, "SV", [2**60, -5])  # SelectorSVValue
    ds.add_new(0x00720083, "UV", [2**63 + 1])  # SelectorUVValue
    ds.add_new(0x00720074, "FD", [math.nan, math.inf, 1.25])  # SelectorFDValue
    ds.add_new(0x00209165, "AT", [0x00100010, 0x7FE00010])  # DimensionIndexPointer

    attributes = to_dicom_json(ds)
    text = json.dumps(attributes, allow_nan=False)

    assert attributes["00720082"]["Value"] == [str(2**60), -5]
    assert attributes["00720083"]["Value"] == [str(2**63 + 1)]
    assert attributes["00720074"]["Value"] == ["NaN", "Infinity", 1.25]
    assert attributes["00209165"]["Value"] == ["00100010", "7FE00010"]
    assert "NaN" in text


@pytest.mark.parametrize(("name", "expected"), PERSON_NAME_OBJECTS)
def test_dicomweb_13_person_name_json(name: str, expected: dict[str, str]) -> None:
    """cases/dicomweb/dicomweb-13-person-name-json.md, on the file itself."""
    attributes = to_dicom_json(stored(read(name)))

    assert attributes["00100010"]["Value"] == [expected]


def test_person_name_groups_left_out_and_empty_names_null() -> None:
    ds = Dataset()
    ds.PatientName = "=山田^太郎"
    ds.add_new(0x00101001, "PN", ["Doe^John", "", "==やまだ"])  # OtherPatientNames

    attributes = to_dicom_json(ds)

    assert attributes["00100010"]["Value"] == [{"Ideographic": "山田^太郎"}]
    assert attributes["00101001"]["Value"] == [
        {"Alphabetic": "Doe^John"},
        None,
        {"Phonetic": "やまだ"},
    ]


@pytest.mark.parametrize(
    ("name", "alphabetic"),
    [
        ("chrGerm.dcm", "Äneas^Rüdiger"),
        ("chrFren.dcm", "Buc^Jérôme"),
        ("chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ"),
        ("chrRuss.dcm", None),
        ("chrGreek.dcm", None),
        ("chrArab.dcm", None),
        ("chrHbrw.dcm", None),
        ("chrX2.dcm", None),
    ],
)
def test_dicomweb_14_character_sets(name: str, alphabetic: str | None) -> None:
    """cases/dicomweb/dicomweb-14-character-sets.md, on the file itself."""
    ds = read(name)
    attributes = to_dicom_json(stored(ds))
    text = json.dumps(attributes, ensure_ascii=False).encode("utf-8")
    attributes = json.loads(text.decode("utf-8"))

    value = attributes["00100010"]["Value"][0]
    assert value["Alphabetic"] == (alphabetic or ds.PatientName.alphabetic)
    assert attributes["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}


def test_binary_values_inline_or_bulk() -> None:
    ds = read("CT_small.dcm")
    paths: list[str] = []

    def bulk_uri(path: str) -> str:
        paths.append(path)
        return "https://pacs.example.org/bulk/" + path

    with_uri = to_dicom_json(stored(ds), bulk_uri=bulk_uri)
    without = to_dicom_json(stored(ds))

    assert with_uri["7FE00010"] == {
        "vr": "OW",
        "BulkDataURI": "https://pacs.example.org/bulk/7FE00010",
    }
    assert "7FE00010" not in without
    assert "7FE00010" in paths

    small = Dataset()
    small.add_new(0x00091001, "OB", b"\x01\x02\x03\x04")
    assert to_dicom_json(small)["00091001"] == {
        "vr": "OB",
        "InlineBinary": base64.b64encode(b"\x01\x02\x03\x04").decode(),
    }


def test_nested_bulk_data_paths_resolve() -> None:
    ds = fresh("CT_small.dcm")
    icon = Dataset()
    icon.add_new(0x00091010, "OB", bytes(range(256)) * 8)
    ds.ReferencedImageSequence = [Dataset(), icon]

    attributes = to_dicom_json(stored(ds), bulk_uri=lambda path: "bulk:" + path)

    item = attributes["00081140"]["Value"][1]
    assert item["00091010"]["BulkDataURI"] == "bulk:00081140/1/00091010"
    steps = parse_tag_path("00081140/1/00091010")
    assert value_at(stored(ds), steps) == bytes(range(256)) * 8


def test_deferred_values_read_only_when_inline() -> None:
    ds = fresh("CT_small.dcm")
    ds.add_new(0x00091002, "UT", "long text " * 200)

    attributes = to_dicom_json(stored(ds), bulk_uri=lambda path: path)

    assert attributes["00091002"]["Value"] == [("long text " * 200).rstrip()]


def test_big_endian_inline_binary_is_little_endian() -> None:
    ds = pydicom.dcmread(sample_path("MR_small_bigendian.dcm"))
    little = pydicom.dcmread(sample_path("MR_small.dcm"))

    big_pixels = value_at(ds, [0x7FE00010])
    assert big_pixels == little.PixelData
    attributes = to_dicom_json(ds, bulk_threshold=1 << 20)
    assert base64.b64decode(attributes["7FE00010"]["InlineBinary"]) == little.PixelData


@pytest.mark.parametrize("text", ["7FE0001", "7FE00010/0", "00081140/x/00091010", ""])
def test_bad_tag_paths(text: str) -> None:
    with pytest.raises(BadRequest, match="bulk data path"):
        parse_tag_path(text)


def test_every_clean_sample_converts_and_reads_back() -> None:
    """pydicom's own reader takes what we write (the dicomweb-11 complaint)."""
    for path in sample_files("clean"):
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, defer_size=1024)
            attributes = to_dicom_json(ds, bulk_uri=lambda p: "https://x/" + p)
        text = json.dumps(attributes, allow_nan=False, ensure_ascii=False)
        walk(json.loads(text))

        back = Dataset.from_json(text, bulk_data_uri_handler=lambda *args: b"")
        assert str(back.SOPInstanceUID) == str(ds.SOPInstanceUID), path.name
