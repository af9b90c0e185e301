"""monitoramento's own database: a short history of status snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = sa.MetaData()

status_snapshots = sa.Table(
    "status_snapshots",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("document", JSONB, nullable=False),
)


class PostgresStatusHistory:
    def __init__(self, engine: AsyncEngine, *, retention_rows: int) -> None:
        self._engine = engine
        self._retention_rows = retention_rows

    async def record(self, status: dict[str, Any]) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                status_snapshots.insert().values(status=status["status"], document=status)
            )
            # Keep a bounded window: this is a recent history, not an archive.
            await connection.execute(
                sa.delete(status_snapshots).where(
                    status_snapshots.c.id
                    <= sa.select(
                        sa.func.max(status_snapshots.c.id) - self._retention_rows
                    ).scalar_subquery()
                )
            )

    async def latest(self, limit: int) -> Sequence[dict[str, Any]]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                sa.select(status_snapshots.c.document)
                .order_by(status_snapshots.c.id.desc())
                .limit(limit)
            )
            return [row[0] for row in rows]

    async def reachable(self) -> bool:
        try:
            async with self._engine.connect() as connection:
                await connection.execute(sa.text("select 1"))
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True
