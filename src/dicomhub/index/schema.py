"""The index tables: study, series, instance, plus settings shared by replicas.

Each level keeps the attributes QIDO-RS can match on as columns (PS3.18 §10.6,
PS3.4 C.2.2.2) and the level's other attributes as DICOM JSON text in ``attrs``,
so a search answers from the index without opening any instance.

Person names are kept three ways: as stored (``*_name``), case-folded for
case-insensitive wildcard matching (``*_key``), and as a space-separated list
of case-folded words for fuzzy matching (``*_words``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()

study = Table(
    "study",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("study_instance_uid", String(64), nullable=False, unique=True),
    Column("patient_id", String(64), index=True),
    Column("patient_name", String(324)),
    Column("patient_name_key", String(324), index=True),
    Column("patient_name_words", String(324)),
    Column("patient_birth_date", String(8)),
    Column("patient_sex", String(16)),
    Column("study_date", String(8), index=True),
    Column("study_time", String(16)),
    Column("accession_number", String(16), index=True),
    Column("study_id", String(16)),
    Column("study_description", String(64)),
    Column("referring_physician_name", String(324)),
    Column("referring_physician_name_key", String(324)),
    Column("referring_physician_name_words", String(324)),
    Column("attrs", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

series = Table(
    "series",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column(
        "study_pk",
        Integer,
        ForeignKey("study.pk", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("series_instance_uid", String(64), nullable=False, unique=True),
    Column("modality", String(16), index=True),
    Column("series_number", Integer),
    Column("series_description", String(64)),
    Column("series_date", String(8)),
    Column("performed_procedure_step_start_date", String(8)),
    Column("attrs", Text, nullable=False),
)

instance = Table(
    "instance",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column(
        "series_pk",
        Integer,
        ForeignKey("series.pk", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("sop_instance_uid", String(64), nullable=False, unique=True),
    Column("sop_class_uid", String(64)),
    Column("instance_number", Integer),
    Column("number_of_frames", Integer),
    Column("rows", Integer),
    Column("columns", Integer),
    Column("transfer_syntax_uid", String(64), nullable=False),
    Column("blob_key", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("attrs", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

# The metadata document of each instance: its DICOM JSON as WADO-RS metadata
# sends it, made once at store time (dicomhub.dicom.metadata_document). A
# table of its own keeps the instance rows that searches read small; the row
# goes with its instance (ON DELETE CASCADE) and is rewritten with it by a
# STOW-RS PUT, in the same transaction, so it never describes another version.
instance_document = Table(
    "instance_document",
    metadata,
    Column(
        "instance_pk",
        Integer,
        ForeignKey("instance.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("document", Text, nullable=False),
)

# Settings changed at run time (the CORS policy from the admin API) live with
# the index, so every replica that shares the index sees the same values.
setting = Table(
    "setting",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
)

# The change feed, as the Azure DICOM service keeps it: one row per instance
# stored (create) or deleted (delete), written in the same transaction as the
# index change. ``sequence`` only grows (SQLite AUTOINCREMENT never reuses a
# number), so a client resumes after the last sequence it has seen.
change_feed = Table(
    "change_feed",
    metadata,
    Column(
        "sequence",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("timestamp", DateTime(timezone=False), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("study_instance_uid", String(64), nullable=False),
    Column("series_instance_uid", String(64), nullable=False),
    Column("sop_instance_uid", String(64), nullable=False, index=True),
    sqlite_autoincrement=True,
)
Index("ix_change_feed_sequence", change_feed.c.sequence)
