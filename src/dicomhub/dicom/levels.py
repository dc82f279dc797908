"""Which attributes belong to which level of the study information model.

PS3.4 C.6.1.1 places the Patient and Study modules at the study level and the
General Series module at the series level; everything else in an instance is
instance level. QIDO-RS answers use these sets (PS3.18 §10.6.3.3).
"""

from __future__ import annotations

STUDY_TAGS = frozenset(
    {
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080051",  # IssuerOfAccessionNumberSequence
        "00080063",  # AnatomicRegionsInStudyCodeSequence
        "00080090",  # ReferringPhysicianName
        "00080201",  # TimezoneOffsetFromUTC
        "00081030",  # StudyDescription
        "00081032",  # ProcedureCodeSequence
        "00081060",  # NameOfPhysiciansReadingStudy
        "00081080",  # AdmittingDiagnosesDescription
        "00081110",  # ReferencedStudySequence
        "00100010",  # PatientName
        "00100020",  # PatientID
        "00100021",  # IssuerOfPatientID
        "00100030",  # PatientBirthDate
        "00100032",  # PatientBirthTime
        "00100040",  # PatientSex
        "00101000",  # OtherPatientIDs
        "00101001",  # OtherPatientNames
        "00101010",  # PatientAge
        "00101020",  # PatientSize
        "00101030",  # PatientWeight
        "00102160",  # EthnicGroup
        "00102180",  # Occupation
        "001021B0",  # AdditionalPatientHistory
        "00104000",  # PatientComments
        "0020000D",  # StudyInstanceUID
        "00200010",  # StudyID
        "00321032",  # RequestingPhysician
        "00321060",  # RequestedProcedureDescription
    }
)

SERIES_TAGS = frozenset(
    {
        "00080021",  # SeriesDate
        "00080031",  # SeriesTime
        "00080060",  # Modality
        "00080070",  # Manufacturer
        "0008103E",  # SeriesDescription
        "00081050",  # PerformingPhysicianName
        "00081090",  # ManufacturerModelName
        "00180015",  # BodyPartExamined
        "00181030",  # ProtocolName
        "00185100",  # PatientPosition
        "0020000E",  # SeriesInstanceUID
        "00200011",  # SeriesNumber
        "00200052",  # FrameOfReferenceUID
        "00200060",  # Laterality
        "00400244",  # PerformedProcedureStepStartDate
        "00400245",  # PerformedProcedureStepStartTime
        "00400275",  # RequestAttributesSequence
    }
)

# Attributes never copied into the index: the pixel data and other bulk values,
# which WADO-RS serves from the stored instance.
EXCLUDED_FROM_INDEX = frozenset(
    {
        "7FE00010",  # PixelData
        "7FE00008",  # FloatPixelData
        "7FE00009",  # DoubleFloatPixelData
        "00080005",  # SpecificCharacterSet: index JSON is always UTF-8
    }
)


def level_of(tag: str) -> str:
    """'study', 'series' or 'instance' for an 8-hex-digit tag."""
    if tag in STUDY_TAGS:
        return "study"
    if tag in SERIES_TAGS:
        return "series"
    return "instance"
