"""The metadata document of each instance (dicomhub.dicom.metadata_document).

Instances stored before this revision have none; WADO-RS makes theirs the
first time their metadata is asked for.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "instance_document",
        sa.Column(
            "instance_pk",
            sa.Integer,
            sa.ForeignKey("instance.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("document", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("instance_document")
