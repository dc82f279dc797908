"""The change feed table: one row per instance created or deleted.

``timestamp`` is UTC without a zone, the same on SQLite and PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "change_feed",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("timestamp", sa.DateTime(timezone=False), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("study_instance_uid", sa.String(64), nullable=False),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_change_feed_sequence", "change_feed", ["sequence"])
    op.create_index("ix_change_feed_timestamp", "change_feed", ["timestamp"])
    op.create_index(
        "ix_change_feed_sop_instance_uid", "change_feed", ["sop_instance_uid"]
    )


def downgrade() -> None:
    op.drop_table("change_feed")
