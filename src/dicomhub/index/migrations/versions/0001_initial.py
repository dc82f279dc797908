"""The first index schema: study, series, instance and setting.

A revision is frozen once released: later schema changes come as new revisions.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _name_columns(prefix: str) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}_name", sa.String(324)),
        sa.Column(f"{prefix}_name_key", sa.String(324)),
        sa.Column(f"{prefix}_name_words", sa.String(324)),
    ]


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("study_instance_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("patient_id", sa.String(64)),
        *_name_columns("patient"),
        sa.Column("patient_birth_date", sa.String(8)),
        sa.Column("patient_sex", sa.String(16)),
        sa.Column("study_date", sa.String(8)),
        sa.Column("study_time", sa.String(16)),
        sa.Column("accession_number", sa.String(16)),
        sa.Column("study_id", sa.String(16)),
        sa.Column("study_description", sa.String(64)),
        *_name_columns("referring_physician"),
        sa.Column("attrs", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now()
        ),
    )
    op.create_index("ix_study_patient_id", "study", ["patient_id"])
    op.create_index("ix_study_patient_name_key", "study", ["patient_name_key"])
    op.create_index("ix_study_study_date", "study", ["study_date"])
    op.create_index("ix_study_accession_number", "study", ["accession_number"])

    op.create_table(
        "series",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column(
            "study_pk",
            sa.Integer,
            sa.ForeignKey("study.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("series_instance_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("modality", sa.String(16)),
        sa.Column("series_number", sa.Integer),
        sa.Column("series_description", sa.String(64)),
        sa.Column("series_date", sa.String(8)),
        sa.Column("performed_procedure_step_start_date", sa.String(8)),
        sa.Column("attrs", sa.Text, nullable=False),
    )
    op.create_index("ix_series_study_pk", "series", ["study_pk"])
    op.create_index("ix_series_modality", "series", ["modality"])

    op.create_table(
        "instance",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column(
            "series_pk",
            sa.Integer,
            sa.ForeignKey("series.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("sop_class_uid", sa.String(64)),
        sa.Column("instance_number", sa.Integer),
        sa.Column("number_of_frames", sa.Integer),
        sa.Column("rows", sa.Integer),
        sa.Column("columns", sa.Integer),
        sa.Column("transfer_syntax_uid", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("attrs", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now()
        ),
    )
    op.create_index("ix_instance_series_pk", "instance", ["series_pk"])

    op.create_table(
        "setting",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()
        ),
    )
