"""The transactional outbox: events are rows written in the same transaction as the change
they describe, and a relay publishes them to Kafka afterwards.

No code path writes the database and then the broker: a request commits its rows and
returns, and the relay alone talks to Kafka. A row is deleted only after Kafka acknowledged
it, so a crash between the two publishes the row again; consumers drop the duplicate by its
event id.

Only one relay per database publishes at a time, so the events of one key leave in the order
they were written. The active relay holds a PostgreSQL session advisory lock; the lock dies
with its connection, so a standby takes over within `standby_retry_ms` of a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import asyncpg
import msgspec
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from datasync import events, metrics
from datasync.kafka import sleep_or_stop, start_when_reachable, stop_within
from datasync.settings import OutboxSettings

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL: Final = "outbox"

# Any fixed 64-bit number unique within one database works; this one spells "outbox".
RELAY_LOCK_KEY: Final = 0x6F7574626F78


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """The outbox table, declared in a service's own metadata."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


NOTIFY_FUNCTION_SQL: Final = f"""
create or replace function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('{NOTIFY_CHANNEL}', '');
    return null;
end $$;
"""
NOTIFY_TRIGGER_SQL: Final = """
create trigger outbox_notify after insert on outbox
for each statement execute function outbox_notify();
"""


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    """One event to queue, with its envelope already built."""

    topic: str
    key: str
    payload: events.Event
    envelope: events.Envelope


def header_rows(envelope: events.Envelope) -> list[list[str]]:
    """An event's Kafka headers as the outbox stores them: `[name, value]` pairs in JSON."""
    return [[name, value.decode()] for name, value in events.envelope_headers(envelope)]


async def append_many(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[OutboxRow]
) -> None:
    """Adds events to the outbox inside the caller's transaction, in the order given."""
    if not rows:
        return
    # A list of parameter sets: SQLAlchemy sends them as multi-row INSERTs of one cached
    # statement, however many rows a batch has.
    await connection.execute(
        table.insert(),
        [
            {
                "event_id": row.envelope.id,
                "topic": row.topic,
                "key": row.key,
                "headers": header_rows(row.envelope),
                "payload": events.encode_payload(row.payload),
            }
            for row in rows
        ],
    )


async def backlog(connection: AsyncConnection, table: sa.Table) -> tuple[int, float]:
    """Rows waiting in the outbox and the age in seconds of the oldest one (0 when empty)."""
    row = (
        await connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(
                    sa.func.extract("epoch", sa.func.now() - sa.func.min(table.c.created_at)), 0
                ),
            )
        )
    ).one()
    return int(row[0]), float(row[1])


class OutboxRelay:
    """Publishes the rows of one database's outbox to Kafka, in order, at least once."""

    def __init__(
        self,
        *,
        database_url: str,
        producer: AIOKafkaProducer,
        settings: OutboxSettings,
    ) -> None:
        self._database_url = database_url
        self._producer = producer
        self._settings = settings
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Relays until `stop` is set, surviving database and broker outages."""
        await start_when_reachable(self._producer.start, stop, event="outbox.kafka_unavailable")
        try:
            while not stop.is_set():
                try:
                    await self._run_while_connected(stop)
                except (
                    OSError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    asyncpg.InternalClientError,
                ) as error:
                    metrics.OUTBOX_LEADER.set(0)
                    log.warning(
                        "outbox.database_unavailable",
                        error=str(error),
                        next_step="will reconnect",
                        retry_in_ms=self._settings.standby_retry_ms,
                    )
                    await sleep_or_stop(stop, self._settings.standby_retry_ms / 1000)
        finally:
            metrics.OUTBOX_LEADER.set(0)
            await stop_within(self._producer.stop(), "producer")

    async def _run_while_connected(self, stop: asyncio.Event) -> None:
        connection = await asyncpg.connect(self._database_url, timeout=5)
        try:
            while not stop.is_set():
                if await connection.fetchval("select pg_try_advisory_lock($1)", RELAY_LOCK_KEY):
                    break
                metrics.OUTBOX_LEADER.set(0)
                await sleep_or_stop(stop, self._settings.standby_retry_ms / 1000)
            if stop.is_set():
                return

            metrics.OUTBOX_LEADER.set(1)
            log.info("outbox.relay_active")
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._relay(connection, stop)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _relay(self, connection: asyncpg.Connection, stop: asyncio.Event) -> None:
        poll_s = self._settings.poll_interval_ms / 1000
        next_reading = 0.0
        while not stop.is_set():
            self._wake.clear()
            publishing = asyncio.ensure_future(self.publish_batch(connection))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([publishing, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not publishing.done():
                # Stopping while Kafka is slow or away: the rows stay in the outbox for the
                # next relay, instead of holding the shutdown for a request timeout.
                publishing.cancel()
                await asyncio.gather(publishing, return_exceptions=True)
                return
            published = publishing.result()
            if published >= self._settings.batch_size:
                continue

            # A partial batch emptied the outbox as of its read; rows committed since then
            # have notified, which sets the wake flag. Counting the backlog is only for the
            # gauges, so it is done once a second rather than after every batch.
            if time.monotonic() >= next_reading:
                count, oldest_age_s = await _backlog(connection)
                metrics.OUTBOX_BACKLOG.set(count)
                metrics.OUTBOX_OLDEST_AGE.set(oldest_age_s)
                next_reading = time.monotonic() + 1.0
                if count:
                    continue
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def publish_batch(self, connection: asyncpg.Connection) -> int:
        """Publishes the oldest rows and deletes them once Kafka acknowledged all of them.

        Returns:
            How many rows were published.
        """
        rows = await connection.fetch(
            "select id, topic, key, headers, payload from outbox order by id limit $1",
            self._settings.batch_size,
        )
        if not rows:
            return 0

        started = time.perf_counter()
        try:
            deliveries = [
                await self._producer.send(
                    row["topic"],
                    value=row["payload"],
                    key=row["key"].encode(),
                    headers=[(name, value.encode()) for name, value in _json(row["headers"])],
                )
                for row in rows
            ]
            await asyncio.gather(*deliveries)
        except KafkaError as error:
            # Nothing is deleted, so the whole batch goes again, in order, after the pause.
            # Rows Kafka already has come twice; consumers drop them by event id.
            log.warning(
                "outbox.publish_failed",
                error=str(error),
                rows=len(rows),
                next_step="will retry the batch",
                retry_in_ms=self._settings.standby_retry_ms,
            )
            await asyncio.sleep(self._settings.standby_retry_ms / 1000)
            return 0

        published_ids = [row["id"] for row in rows]
        await connection.execute("delete from outbox where id = any($1::bigint[])", published_ids)
        for topic, count in Counter(row["topic"] for row in rows).items():
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(count)
        log.debug(
            "outbox.batch_published",
            rows=len(rows),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return len(rows)


async def _backlog(connection: asyncpg.Connection) -> tuple[int, float]:
    row = await connection.fetchrow(
        "select count(*), coalesce(extract(epoch from now() - min(created_at)), 0) from outbox"
    )
    assert row is not None
    return int(row[0]), float(row[1])


_HEADERS = msgspec.json.Decoder(list[tuple[str, str]])


def _json(value: Any) -> list[tuple[str, str]]:
    # asyncpg returns jsonb as text unless a codec is registered on the connection.
    return _HEADERS.decode(value) if isinstance(value, str) else value
