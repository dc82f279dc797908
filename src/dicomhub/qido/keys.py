"""The attributes a search can match on and the attributes it returns.

Match keys are the attributes the index keeps as columns (see
``dicomhub.index.schema``), plus ModalitiesInStudy, which is matched against
the study's series. The default return attributes per level are those of
PS3.18 Tables 10.6.3-3 (study), 10.6.3-4 (series) and 10.6.3-5 (instance)
together with the Azure DICOM service's defaults (its Conformance Statement
v2, "Search response"); ``includefield=all`` adds the Azure service's list for
the level and every other attribute the index keeps there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from ..dicom.levels import EXCLUDED_FROM_INDEX, level_of

Level = Literal["study", "series", "instance"]

# From the top of the information model down (PS3.4 C.6.1.1).
LEVELS: tuple[Level, ...] = ("study", "series", "instance")


@dataclass(frozen=True)
class MatchKey:
    """An attribute a search can match on, and the index column that holds it.

    Person names have two columns: the case-folded name (`column`) for
    literal and wildcard matching, and its words (`words_column`) for fuzzy
    matching. ModalitiesInStudy has no column of its own: it matches the
    Modality of the study's series.
    """

    tag: str
    keyword: str
    vr: str
    level: Level
    column: str | None
    words_column: str | None = None


def _key(tag: str, vr: str, level: Level, column: str | None) -> MatchKey:
    keyword = keyword_for_tag(int(tag, 16))
    if vr == "PN":
        assert column is not None
        prefix = column.removesuffix("_name")
        return MatchKey(
            tag, keyword, vr, level, f"{prefix}_name_key", f"{prefix}_name_words"
        )
    return MatchKey(tag, keyword, vr, level, column)


MODALITIES_IN_STUDY = "00080061"

MATCH_KEYS: dict[str, MatchKey] = {
    key.tag: key
    for key in (
        # Study level (PS3.4 C.6.1.1.2 and C.6.1.1.3).
        _key("0020000D", "UI", "study", "study_instance_uid"),
        _key("00080020", "DA", "study", "study_date"),
        _key("00080030", "TM", "study", "study_time"),
        _key("00080050", "SH", "study", "accession_number"),
        _key("00080061", "CS", "study", None),
        _key("00080090", "PN", "study", "referring_physician_name"),
        _key("00081030", "LO", "study", "study_description"),
        _key("00100010", "PN", "study", "patient_name"),
        _key("00100020", "LO", "study", "patient_id"),
        _key("00100030", "DA", "study", "patient_birth_date"),
        _key("00100040", "CS", "study", "patient_sex"),
        _key("00200010", "SH", "study", "study_id"),
        # Series level (PS3.4 C.6.1.1.4).
        _key("0020000E", "UI", "series", "series_instance_uid"),
        _key("00080021", "DA", "series", "series_date"),
        _key("00080060", "CS", "series", "modality"),
        _key("0008103E", "LO", "series", "series_description"),
        _key("00200011", "IS", "series", "series_number"),
        _key("00400244", "DA", "series", "performed_procedure_step_start_date"),
        # Instance level (PS3.4 C.6.1.1.5).
        _key("00080016", "UI", "instance", "sop_class_uid"),
        _key("00080018", "UI", "instance", "sop_instance_uid"),
        _key("00200013", "IS", "instance", "instance_number"),
        _key("00280008", "IS", "instance", "number_of_frames"),
        _key("00280010", "US", "instance", "rows"),
        _key("00280011", "US", "instance", "columns"),
    )
}

# Attributes the server computes instead of copying them from the instances
# (with the level each belongs to), or returns at levels other than the one
# it keeps them at.
SPECIFIC_CHARACTER_SET = "00080005"
TIMEZONE_OFFSET_FROM_UTC = "00080201"
RETRIEVE_URL = "00081190"
INSTANCE_AVAILABILITY = "00080056"
NUMBER_OF_STUDY_RELATED_SERIES = "00201206"
NUMBER_OF_STUDY_RELATED_INSTANCES = "00201208"
NUMBER_OF_SERIES_RELATED_INSTANCES = "00201209"

COMPUTED_LEVEL: dict[str, Level] = {
    MODALITIES_IN_STUDY: "study",
    NUMBER_OF_STUDY_RELATED_SERIES: "study",
    NUMBER_OF_STUDY_RELATED_INSTANCES: "study",
    NUMBER_OF_SERIES_RELATED_INSTANCES: "series",
}

# Attributes that every level answers for itself (PS3.18 Tables 10.6.3-3 to
# -5; PS3.4 Table C.3-2 for InstanceAvailability): the character set of the
# answer, the time zone of the instances (kept with the study), where to
# retrieve the result and whether it is on line.
EVERY_LEVEL = frozenset(
    {
        SPECIFIC_CHARACTER_SET,
        TIMEZONE_OFFSET_FROM_UTC,
        RETRIEVE_URL,
        INSTANCE_AVAILABILITY,
    }
)

# Attributes PS3.4 C.6.1.1 defines for a query that dicomhub neither keeps nor
# computes; asking for one gets a Warning (PS3.18 §8.3.4.3).
NOT_COMPUTED = frozenset(
    {
        "00080062",  # SOPClassesInStudy
        "00201200",  # NumberOfPatientRelatedStudies
        "00201202",  # NumberOfPatientRelatedSeries
        "00201204",  # NumberOfPatientRelatedInstances
    }
)

# Return attributes: tag -> True when the attribute is always present (as
# {"vr": ...} alone when it has no value), False when it is present only if
# known. SpecificCharacterSet, as False, is present when the answer holds text
# beyond ASCII (PS3.18 Table 10.6.3-3, Type 1C); the JSON is always UTF-8.
DEFAULT_RETURN: dict[Level, dict[str, bool]] = {
    # PS3.18 Table 10.6.3-3, and StudyDescription from the Azure defaults.
    "study": {
        "00080005": False,  # SpecificCharacterSet
        "00080020": True,  # StudyDate
        "00080030": True,  # StudyTime
        "00080050": True,  # AccessionNumber
        "00080056": False,  # InstanceAvailability
        "00080061": True,  # ModalitiesInStudy
        "00080090": True,  # ReferringPhysicianName
        "00080201": False,  # TimezoneOffsetFromUTC
        "00081030": False,  # StudyDescription
        "00081190": False,  # RetrieveURL
        "00100010": True,  # PatientName
        "00100020": True,  # PatientID
        "00100030": True,  # PatientBirthDate
        "00100040": True,  # PatientSex
        "0020000D": True,  # StudyInstanceUID
        "00200010": True,  # StudyID
        "00201206": True,  # NumberOfStudyRelatedSeries
        "00201208": True,  # NumberOfStudyRelatedInstances
    },
    # PS3.18 Table 10.6.3-4, and ManufacturerModelName from the Azure defaults.
    "series": {
        "00080005": False,  # SpecificCharacterSet
        "00080060": True,  # Modality
        "00080201": False,  # TimezoneOffsetFromUTC
        "0008103E": True,  # SeriesDescription
        "00081090": False,  # ManufacturerModelName
        "00081190": False,  # RetrieveURL
        "0020000E": True,  # SeriesInstanceUID
        "00200011": True,  # SeriesNumber
        "00201209": True,  # NumberOfSeriesRelatedInstances
        "00400244": False,  # PerformedProcedureStepStartDate
        "00400245": False,  # PerformedProcedureStepStartTime
        "00400275": False,  # RequestAttributesSequence
    },
    # PS3.18 Table 10.6.3-5 (the Azure default is SOPInstanceUID alone).
    "instance": {
        "00080005": False,  # SpecificCharacterSet
        "00080016": True,  # SOPClassUID
        "00080018": True,  # SOPInstanceUID
        "00080056": False,  # InstanceAvailability
        "00080201": False,  # TimezoneOffsetFromUTC
        "00081190": False,  # RetrieveURL
        "00200013": True,  # InstanceNumber
        "00280008": False,  # NumberOfFrames
        "00280010": False,  # Rows
        "00280011": False,  # Columns
        "00280100": False,  # BitsAllocated
    },
}

# What ``includefield=all`` adds to the defaults: the Azure DICOM service's
# "Other Study/Series/Instance tags" (Conformance Statement v2), then every
# other attribute the index keeps at the level.
ALL_RETURN: dict[Level, dict[str, bool]] = {
    "study": {
        "00080005": True,  # SpecificCharacterSet
        "00080030": False,  # StudyTime
        "00080056": False,  # InstanceAvailability
        "00080063": False,  # AnatomicRegionsInStudyCodeSequence
        "00080201": False,  # TimezoneOffsetFromUTC
        "00081032": False,  # ProcedureCodeSequence
        "00081060": False,  # NameOfPhysiciansReadingStudy
        "00081080": False,  # AdmittingDiagnosesDescription
        "00081110": False,  # ReferencedStudySequence
        "00100040": False,  # PatientSex
        "00101010": False,  # PatientAge
        "00101020": False,  # PatientSize
        "00101030": False,  # PatientWeight
        "00102180": False,  # Occupation
        "001021B0": False,  # AdditionalPatientHistory
        "00200010": False,  # StudyID
    },
    "series": {
        "00080005": True,  # SpecificCharacterSet
        "00080021": False,  # SeriesDate
        "00080031": False,  # SeriesTime
        "00080201": False,  # TimezoneOffsetFromUTC
        "0008103E": False,  # SeriesDescription
        "00200011": False,  # SeriesNumber
        "00200060": False,  # Laterality
        "00400245": False,  # PerformedProcedureStepStartTime
        "00400275": False,  # RequestAttributesSequence
    },
    "instance": {
        "00080005": True,  # SpecificCharacterSet
        "00080016": False,  # SOPClassUID
        "00080056": False,  # InstanceAvailability
        "00080201": False,  # TimezoneOffsetFromUTC
        "00200013": False,  # InstanceNumber
        "00280008": False,  # NumberOfFrames
        "00280010": False,  # Rows
        "00280011": False,  # Columns
        "00280100": False,  # BitsAllocated
    },
}

_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")


def resolve_tag(name: str) -> str | None:
    """The 8-hex-digit tag of a tag or keyword (PS3.18 §8.3.4.1), else None."""
    if _HEX_TAG.fullmatch(name):
        return name.upper()
    tag = tag_for_keyword(name)
    return f"{tag:08X}" if tag is not None else None


def describe(tag: str) -> str:
    """'PatientWeight (00101030)' for messages; the tag alone if unnamed."""
    keyword = keyword_for_tag(int(tag, 16))
    return f"{keyword} ({tag})" if keyword else tag


def attribute_level(tag: str) -> Level:
    """The level of the information model an attribute belongs to (where the
    index keeps it)."""
    if tag in MATCH_KEYS:
        return MATCH_KEYS[tag].level
    if tag in COMPUTED_LEVEL:
        return COMPUTED_LEVEL[tag]
    return level_of(tag)  # type: ignore[return-value]


def return_level(tag: str, level: Level) -> Level:
    """The level whose results carry `tag` in a search for `level` entities."""
    return level if tag in EVERY_LEVEL else attribute_level(tag)


def is_kept(tag: str) -> bool:
    """Whether the index keeps or computes `tag`, so that a search can return
    it: not bulk data, file meta information, group lengths, item delimiters,
    trailing padding or the counts of NOT_COMPUTED."""
    if tag == SPECIFIC_CHARACTER_SET:
        return True
    if tag in EXCLUDED_FROM_INDEX or tag in NOT_COMPUTED:
        return False
    return not (tag.startswith(("0002", "FFFE", "FFFC")) or tag.endswith("0000"))


def vr_of(tag: str) -> str | None:
    """The VR of a data dictionary attribute (the first of 'US or SS'), else None."""
    try:
        return dictionary_VR(int(tag, 16)).split(" or ")[0]
    except KeyError:
        return None
