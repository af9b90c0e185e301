"""The SQL side of a unit of work shared by the services' Postgres adapters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from datasync import events, outbox
from datasync.db import DatabaseUnavailableError, is_connection_error


class SqlOutbox:
    """Appends events to a service's outbox table inside the current transaction."""

    def __init__(
        self,
        connection: AsyncConnection,
        table: sa.Table,
        *,
        source: str,
        request_id: str | None,
        request_id_of: Callable[[events.Event], str | None] | None = None,
    ) -> None:
        """`request_id_of`, when given, names the request each event answers (a consumer
        applying a batch of events from several requests); otherwise all carry `request_id`."""
        self._connection = connection
        self._table = table
        self._source = source
        self._request_id = request_id
        self._request_id_of = request_id_of

    async def append(self, *, topic: str, key: str, payload: events.Event) -> None:
        await self.append_many(topic=topic, keyed=[(key, payload)])

    async def append_many(self, *, topic: str, keyed: Sequence[tuple[str, events.Event]]) -> None:
        rows = [
            outbox.OutboxRow(
                topic=topic,
                key=key,
                payload=payload,
                envelope=events.new_envelope(
                    payload,
                    source=self._source,
                    subject=key,
                    request_id=(
                        self._request_id_of(payload) if self._request_id_of else self._request_id
                    ),
                ),
            )
            for key, payload in keyed
        ]
        await outbox.append_many(self._connection, self._table, rows)


class SqlUnitOfWork:
    """One transaction on one connection. Subclasses build their repositories in `_bind`.

    Connection failures surface as `DatabaseUnavailableError`, the port's own error, so the
    HTTP adapter can answer 503 without knowing about SQLAlchemy.
    """

    connection: AsyncConnection

    def __init__(
        self, engine: AsyncEngine | None, *, joined: AsyncConnection | None = None
    ) -> None:
        self._engine = engine
        self._joined = joined
        self._transaction: AsyncTransaction | None = None

    def _bind(self, connection: AsyncConnection) -> None:
        """Creates the repositories over the open connection."""

    async def __aenter__(self) -> Self:
        if self._joined is not None:
            # Joining a transaction someone else owns (a consumer's batch): it commits.
            self.connection = self._joined
            self._bind(self.connection)
            return self
        assert self._engine is not None
        try:
            self.connection = await self._engine.connect()
            self._transaction = await self.connection.begin()
        except Exception as error:
            if is_connection_error(error):
                raise DatabaseUnavailableError(str(error)) from error
            raise
        self._bind(self.connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._joined is not None:
            return
        try:
            if self._transaction is not None and self._transaction.is_active:
                await self._transaction.rollback()
        finally:
            await self.connection.close()
        if exc is not None and is_connection_error(exc):
            raise DatabaseUnavailableError(str(exc)) from exc

    async def commit(self) -> None:
        if self._joined is not None:
            return
        assert self._transaction is not None
        try:
            await self._transaction.commit()
        except Exception as error:
            if is_connection_error(error):
                raise DatabaseUnavailableError(str(error)) from error
            raise
