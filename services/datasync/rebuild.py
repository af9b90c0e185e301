"""Rebuilding a service's views from the Kafka history, beside the live ones.

The rebuild reads the chosen topics from the beginning (or from a point in time) into a copy
of the view tables in the schema `rebuild`, with the same handlers the live consumer uses.
Its Kafka positions are stored in that schema in the same transaction as the effects, so a
rebuild that is stopped resumes exactly where it left off.

When it has nearly caught up, it takes the view-switch lock exclusively, which makes the
live consumer's next batch wait; applies what is left up to the end of every partition;
and, in the same transaction, moves the live tables to a `retired_*` schema and the rebuilt
ones into their place. Readers keep being answered from the old tables until that commit,
then from the new ones. Nothing is counted twice or lost: the rebuilt tables carry the ids
of every event they applied, so the live consumer skips what the rebuild already saw and
applies what arrives after.

Only one rebuild of a database runs at a time: each holds a session advisory lock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from datasync.consumer import (
    VIEW_SWITCH_LOCK_KEY,
    BatchHandler,
    ConsumedEvent,
    apply_events,
    decode_records,
)
from datasync.db import is_connection_error
from datasync.kafka import create_reader, topic_partitions
from datasync.settings import KafkaSettings

log = structlog.get_logger(__name__)

REBUILD_SCHEMA: Final = "rebuild"
REBUILD_LOCK_KEY: Final = 0x7265627569
"""Session advisory lock held by the one rebuild allowed per database ("rebui")."""

SWITCH_WHEN_REMAINING: Final = 1000
"""Records left at which the rebuild stops catching up outside the lock and switches: small
enough that the live consumer waits well under a second."""

_progress_metadata = sa.MetaData(schema=REBUILD_SCHEMA)
rebuild_positions = sa.Table(
    "rebuild_positions",
    _progress_metadata,
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)


rebuild_start = sa.Table(
    "rebuild_start",
    _progress_metadata,
    sa.Column("only_row", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("from_time", sa.Text, nullable=False),
)


class RebuildConflictError(Exception):
    """Another rebuild of the same database is running."""


class RebuildOptionsError(Exception):
    """A stopped rebuild exists that started from another point; resuming it with other
    options would mix two histories."""


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int
    rate_per_s: float


@dataclass(frozen=True)
class RebuildResult:
    switched: bool
    done: int
    skipped: int


class ViewRebuild:
    """Rebuilds the tables of one view set from topics, then swaps them in atomically."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        kafka: KafkaSettings,
        tables: Sequence[sa.Table],
        processed_events: sa.Table,
        handler: BatchHandler,
        topics: Sequence[str],
        from_time: dt.datetime | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval_s: float = 2.0,
    ) -> None:
        self._engine = engine
        self._kafka = kafka
        self._tables = list(tables)
        self._processed = processed_events
        self._handler = handler
        self._topics = list(topics)
        self._from_time = from_time
        self._on_progress = on_progress or (lambda _progress: None)
        self._progress_interval_s = progress_interval_s
        self._shadow = engine.execution_options(schema_translate_map={None: REBUILD_SCHEMA})
        self._done = 0
        self._skipped = 0

    async def run(self, stop: asyncio.Event, *, restart: bool = False) -> RebuildResult:
        """Rebuilds until switched in, or until `stop` is set (then it can be resumed).

        Raises:
            RebuildConflictError: another rebuild holds the lock.
        """
        async with self._engine.connect() as lock_connection:
            locked = await lock_connection.scalar(
                sa.select(sa.func.pg_try_advisory_lock(REBUILD_LOCK_KEY))
            )
            await lock_connection.commit()
            if not locked:
                raise RebuildConflictError("another rebuild of these views is running")
            try:
                return await self._run_locked(stop, restart=restart)
            finally:
                await lock_connection.execute(
                    sa.select(sa.func.pg_advisory_unlock(REBUILD_LOCK_KEY))
                )
                await lock_connection.commit()

    async def _run_locked(self, stop: asyncio.Event, *, restart: bool) -> RebuildResult:
        await self._prepare_schema(restart=restart)
        consumer = create_reader(self._kafka, client_id="datasync-rebuild")
        await consumer.start()
        try:
            partitions = await self._assign(consumer)
            started = time.monotonic()
            last_report = 0.0
            while not stop.is_set():
                remaining = await self._remaining(consumer, partitions)
                now = time.monotonic()
                if now - last_report >= self._progress_interval_s:
                    elapsed_s = max(now - started, 1.0)
                    self._on_progress(Progress(self._done, remaining, self._done / elapsed_s))
                    last_report = now
                if remaining <= SWITCH_WHEN_REMAINING:
                    await self._switch(consumer, partitions)
                    elapsed_s = max(time.monotonic() - started, 1.0)
                    self._on_progress(Progress(self._done, 0, self._done / elapsed_s))
                    return RebuildResult(switched=True, done=self._done, skipped=self._skipped)
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for batch in batches.values():
                    await self._apply(self._shadow, batch)
            return RebuildResult(switched=False, done=self._done, skipped=self._skipped)
        finally:
            await consumer.stop()

    async def _prepare_schema(self, *, restart: bool) -> None:
        async with self._engine.begin() as connection:
            if restart:
                await connection.execute(sa.text(f"drop schema if exists {REBUILD_SCHEMA} cascade"))
            await connection.execute(sa.text(f"create schema if not exists {REBUILD_SCHEMA}"))
        async with self._shadow.begin() as connection:
            metadata = self._tables[0].metadata
            await connection.run_sync(metadata.create_all, tables=self._tables, checkfirst=True)
        wanted = self._from_time.isoformat() if self._from_time else "beginning"
        async with self._engine.begin() as connection:
            await connection.run_sync(_progress_metadata.create_all, checkfirst=True)
            stored = await connection.scalar(sa.select(rebuild_start.c.from_time))
            if stored is None:
                await connection.execute(rebuild_start.insert().values(from_time=wanted))
            elif stored != wanted:
                raise RebuildOptionsError(
                    f"a stopped rebuild started from {stored}, not from {wanted}: resume it "
                    "with the same options, or start over with --restart"
                )

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        partitions = await topic_partitions(self._kafka, self._topics)
        consumer.assign(partitions)

        async with self._engine.connect() as connection:
            stored = {
                TopicPartition(row.topic, row.partition): row.next_offset
                for row in await connection.execute(sa.select(rebuild_positions))
            }
        starts: dict[TopicPartition, int] = {}
        if self._from_time is not None and len(stored) < len(partitions):
            millis = int(self._from_time.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, millis))
            ends = await consumer.end_offsets(partitions)
            starts = {tp: (hit.offset if hit else ends[tp]) for tp, hit in found.items()}
        for partition in partitions:
            if partition in stored:
                consumer.seek(partition, stored[partition])
            elif partition in starts:
                consumer.seek(partition, starts[partition])
            else:
                await consumer.seek_to_beginning(partition)
        if stored:
            log.info("rebuild.resumed", partitions=len(stored))
        return partitions

    async def _remaining(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> int:
        ends = await consumer.end_offsets(list(partitions))
        total = 0
        for partition in partitions:
            position = await consumer.position(partition)
            total += max(ends[partition] - position, 0)
        return total

    async def _apply(self, target: AsyncEngine, batch: Sequence[Any]) -> None:
        """Applies one partition batch to the rebuilt tables and stores the position, in one
        transaction. A record the live consumer would dead-letter is skipped here too."""
        if not batch:
            return
        decoded, undecodable = decode_records(batch)
        self._skipped += len(undecodable)
        async with target.begin() as connection:
            await _write_to_rebuild_schema(connection)
            await self._apply_on(connection, decoded)
            await self._store_position(connection, batch[-1])

    async def _apply_on(
        self, connection: AsyncConnection, decoded: Sequence[ConsumedEvent]
    ) -> None:
        if not decoded:
            return
        try:
            async with connection.begin_nested():
                applied = await apply_events(
                    connection, decoded, processed=self._processed, handler=self._handler
                )
            self._done += sum(applied.values())
            return
        except Exception as error:
            if is_connection_error(error):
                raise
        # One bad record: apply the others one by one, as the live consumer would.
        for event in decoded:
            try:
                async with connection.begin_nested():
                    applied = await apply_events(
                        connection, [event], processed=self._processed, handler=self._handler
                    )
                self._done += sum(applied.values())
            except Exception as error:
                if is_connection_error(error):
                    raise
                self._skipped += 1
                log.warning(
                    "rebuild.record_skipped",
                    topic=event.topic,
                    partition=event.partition,
                    offset=event.offset,
                    error=repr(error),
                    next_step="left out of the rebuilt views, as the live consumer would",
                )

    async def _store_position(self, connection: AsyncConnection, last: Any) -> None:
        statement = insert(rebuild_positions).values(
            topic=last.topic, partition=last.partition, next_offset=last.offset + 1
        )
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=["topic", "partition"],
                set_={"next_offset": statement.excluded.next_offset},
            ),
            execution_options={"schema_translate_map": None},
        )

    async def _switch(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> None:
        """Catches up under the exclusive view lock and swaps the tables, in one transaction."""
        started = time.monotonic()
        async with self._shadow.begin() as connection:
            await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(VIEW_SWITCH_LOCK_KEY)))
            await _write_to_rebuild_schema(connection)
            ends = await consumer.end_offsets(list(partitions))
            for partition in partitions:
                while await consumer.position(partition) < ends[partition]:
                    records = await consumer.getmany(partition, timeout_ms=1000, max_records=2000)
                    for batch in records.values():
                        decoded, undecodable = decode_records(batch)
                        self._skipped += len(undecodable)
                        await self._apply_on(connection, decoded)

            retired = f"retired_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S%f}"
            plain = {"schema_translate_map": None}
            await connection.execute(sa.text(f"create schema {retired}"), execution_options=plain)
            for table in self._tables:
                await connection.execute(
                    sa.text(f"alter table public.{table.name} set schema {retired}"),
                    execution_options=plain,
                )
                await connection.execute(
                    sa.text(f"alter table {REBUILD_SCHEMA}.{table.name} set schema public"),
                    execution_options=plain,
                )
            await connection.execute(
                sa.text(f"drop schema {REBUILD_SCHEMA} cascade"), execution_options=plain
            )
        await self._drop_older_retired(keep=retired)
        log.info(
            "rebuild.switched",
            done=self._done,
            skipped=self._skipped,
            retired_schema=retired,
            lock_held_ms=round((time.monotonic() - started) * 1000, 1),
        )

    async def _drop_older_retired(self, *, keep: str) -> None:
        """Keeps the views retired by this switch for inspection; drops older ones."""
        async with self._engine.begin() as connection:
            names = await connection.scalars(
                sa.text(
                    "select nspname from pg_namespace where nspname like 'retired\\_%' "
                    "and nspname <> :keep"
                ),
                {"keep": keep},
            )
            for name in list(names):
                await connection.execute(sa.text(f'drop schema "{name}" cascade'))


async def _write_to_rebuild_schema(connection: AsyncConnection) -> None:
    """Points unqualified table names at the rebuild schema for this transaction.

    Handlers written with Core tables are redirected by the engine's schema translation
    already; handlers that write plain SQL are redirected by this search path.
    """
    await connection.execute(
        sa.text(f"set local search_path to {REBUILD_SCHEMA}"),
        execution_options={"schema_translate_map": None},
    )


def print_progress(progress: Progress) -> None:
    """Writes a progress line as JSON on stdout, for people and for the operator."""
    line = {
        "event": "rebuild.progress",
        "done": progress.done,
        "remaining": progress.remaining,
        "rate_per_s": round(progress.rate_per_s, 1),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
