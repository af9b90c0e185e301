"""Migration steps shared by the services' Alembic scripts.

Each function creates a table as it was at that version; a later change gets a new function
rather than an edit, so old migrations keep meaning what they meant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from datasync.outbox import NOTIFY_FUNCTION_SQL, NOTIFY_TRIGGER_SQL


def create_outbox_v1() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.execute(NOTIFY_FUNCTION_SQL)
    op.execute(NOTIFY_TRIGGER_SQL)


def drop_outbox_v1() -> None:
    op.drop_table("outbox")
    op.execute("drop function if exists outbox_notify()")


def create_processed_events_v1() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )


def drop_processed_events_v1() -> None:
    op.drop_table("processed_events")
