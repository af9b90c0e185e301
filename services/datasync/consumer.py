"""The idempotent consumer: applies Kafka records to a service's database exactly once.

For every batch of one partition, the ids of the events and their effects are written in one
database transaction; the offsets are committed to Kafka only after that transaction commits.
A record delivered again (after a crash, a rebalance or a relay that published twice) finds
its id already recorded and is skipped, so it never counts twice.

Failures are sorted in one place. A record that cannot be decoded is permanent and goes
straight to the dead-letter topic `<topic>.dlq`. A database outage is temporary: the batch
is retried until the database is back, without moving the offset. A handler that raises
anything else is retried with a doubling backoff up to `max_attempts`, then dead-lettered
with headers saying why, so one bad record never stops its partition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import msgspec
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from datasync import events, metrics
from datasync.db import is_connection_error
from datasync.kafka import sleep_or_stop, start_when_reachable, stop_within
from datasync.settings import ConsumerSettings

log = structlog.get_logger(__name__)


class ConsumedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded record, with where it came from."""

    envelope: events.Envelope
    payload: events.Event
    topic: str
    partition: int
    offset: int
    key: str | None
    record: ConsumerRecord[bytes, bytes]
    """The raw record, kept to dead-letter it unchanged."""


BatchHandler = Callable[[AsyncConnection, Sequence[ConsumedEvent]], Awaitable[None]]
"""Applies events in their order inside the caller's transaction, possibly with set-based
statements. Raising rolls the whole transaction back."""


def processed_events_table(metadata: sa.MetaData) -> sa.Table:
    """The ids of the events a service has applied, declared in its own metadata."""
    return sa.Table(
        "processed_events",
        metadata,
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )


class Undecodable(msgspec.Struct, frozen=True):
    record: ConsumerRecord[bytes, bytes]
    reason: str


VIEW_SWITCH_LOCK_KEY: Final = 0x7669657773
"""Advisory lock a rebuild holds exclusively while it swaps rebuilt views in ("views")."""

DLQ_REASON_UNDECODABLE: Final = "undecodable"
DLQ_REASON_HANDLER_FAILED: Final = "handler-failed"


class IdempotentConsumer:
    """Consumes topics into one database through per-event-type handlers."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        consumer: AIOKafkaConsumer,
        dead_letter_producer: AIOKafkaProducer,
        processed_events: sa.Table,
        handler: BatchHandler,
        settings: ConsumerSettings,
        shares_views_with_rebuilds: bool = False,
        group_id: str | None = None,
    ) -> None:
        self._shares_views_with_rebuilds = shares_views_with_rebuilds
        self._group_id = group_id
        self._engine = engine
        self._consumer = consumer
        self._dlq = dead_letter_producer
        self._processed = processed_events
        self._handler = handler
        self._settings = settings
        self._positions: dict[TopicPartition, int] = {}
        self._committing: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until `stop` is set, then commits what was applied and leaves the group."""
        await self._start(stop)
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=500)
                if batches:
                    await self._process_batch(batches, stop)
                self._record_lag()
        finally:
            await stop_within(self._offsets_committed(), "offset commit")
            await stop_within(self._consumer.stop(), "consumer")
            await stop_within(self._dlq.stop(), "dead-letter producer")

    async def _start(self, stop: asyncio.Event) -> None:
        async def start_both() -> None:
            await self._dlq.start()
            await self._consumer.start()

        await start_when_reachable(start_both, stop, event="consumer.kafka_unavailable")

    def _record_lag(self) -> None:
        for partition, position in self._positions.items():
            highwater = self._consumer.highwater(partition)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(partition.topic, partition.partition).set(
                    max(highwater - position, 0)
                )

    async def _process_batch(
        self,
        batches: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]],
        stop: asyncio.Event,
    ) -> None:
        """Applies what one poll returned, every partition together, in one transaction, then
        commits all their offsets at once: one database commit and one offset commit a poll,
        however many partitions it spans. Each partition's records keep their order."""
        started = time.perf_counter()
        records = [record for partition_records in batches.values() for record in partition_records]
        decoded, undecodable = decode_records(records)
        for bad in undecodable:
            await self._dead_letter(bad.record, reason=DLQ_REASON_UNDECODABLE, error=bad.reason)

        applied = await self._apply_with_retries(decoded, stop)
        if not applied:
            # Stopping during a database outage: nothing was applied, nothing is committed.
            return

        metrics.CONSUMER_BATCH_DURATION.observe(time.perf_counter() - started)
        log.info(
            "consumer.batch_committed",
            records=len(records),
            partitions=len(batches),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

        # The offset commit is a round trip to the broker that the next batch need not wait
        # for: the effects are committed in the database already, and a batch applied again
        # after a crash is skipped by its recorded ids. One commit is in flight at a time,
        # so they reach the broker in order.
        await self._offsets_committed()
        offsets = {partition: found[-1].offset + 1 for partition, found in batches.items()}
        self._committing = asyncio.create_task(
            self._commit_offsets(offsets), name="consumer-offset-commit"
        )

    async def _offsets_committed(self) -> None:
        """Waits for the offset commit in flight, if any."""
        if self._committing is not None:
            await self._committing
            self._committing = None

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except KafkaError as error:
            # If a partition moved to another member meanwhile, that member receives these
            # records again and skips them by their recorded ids. Nothing is lost.
            log.warning(
                "consumer.commit_failed",
                partitions=[f"{partition.topic}-{partition.partition}" for partition in offsets],
                error=repr(error),
                next_step="records will be redelivered and skipped as duplicates",
            )
            return
        self._positions.update(offsets)

    async def _apply_with_retries(
        self, decoded: Sequence[ConsumedEvent], stop: asyncio.Event
    ) -> bool:
        """Applies a batch in one transaction; on a handler error, falls back to one record
        per transaction so only the bad record is retried and dead-lettered."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._apply_batch(decoded)
                return True
            except Exception as error:  # noqa: BLE001 - sorted just below: outage or bad record
                if not is_connection_error(error):
                    break
                if stop.is_set():
                    return False
                delay_s = self._backoff_s(attempt)
                log.warning(
                    "consumer.database_unavailable",
                    error=str(error),
                    next_step="will retry the batch",
                    retry_in_s=delay_s,
                    attempt=attempt,
                )
                await sleep_or_stop(stop, delay_s)

        for event in decoded:
            if not await self._apply_one_with_retries(event, stop):
                return False
        return True

    async def _apply_one_with_retries(self, event: ConsumedEvent, stop: asyncio.Event) -> bool:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._apply_batch([event])
                return True
            except Exception as error:  # noqa: BLE001 - a handler may raise anything
                if is_connection_error(error):
                    if stop.is_set():
                        return False
                    attempt = 0
                elif attempt >= self._settings.max_attempts:
                    log.error(
                        "consumer.handler_failed",
                        topic=event.topic,
                        partition=event.partition,
                        offset=event.offset,
                        event_id=event.envelope.id,
                        attempts=attempt,
                        error=repr(error),
                        next_step="sent to dead-letter topic",
                    )
                    await self._dead_letter_event(event, error=repr(error), attempts=attempt)
                    return True
                else:
                    metrics.CONSUMER_RETRIES.labels(event.topic).inc()
                delay_s = self._backoff_s(attempt)
                log.warning(
                    "consumer.record_failed",
                    topic=event.topic,
                    partition=event.partition,
                    offset=event.offset,
                    error=repr(error),
                    next_step="will retry",
                    retry_in_s=delay_s,
                    attempt=attempt,
                    max_attempts=self._settings.max_attempts,
                )
                await sleep_or_stop(stop, delay_s)

    def _backoff_s(self, attempt: int) -> float:
        # Doubling from the first delay, capped so a long outage is still probed every 10 s.
        return float(min(self._settings.retry_backoff_ms * 2 ** (attempt - 1) / 1000, 10.0))

    async def _apply_batch(self, batch: Sequence[ConsumedEvent]) -> None:
        if not batch:
            return
        async with self._engine.begin() as connection:
            if self._shares_views_with_rebuilds:
                # A rebuild switching the views in takes this lock exclusively: the batch
                # waits, then writes to whichever tables are the views by then.
                await connection.execute(
                    sa.select(sa.func.pg_advisory_xact_lock_shared(VIEW_SWITCH_LOCK_KEY))
                )
            applied = await apply_events(
                connection, batch, processed=self._processed, handler=self._handler
            )
        for topic, count in applied.items():
            metrics.CONSUMER_RECORDS.labels(topic, "applied").inc(count)
        duplicates = len(batch) - sum(applied.values())
        if duplicates:
            metrics.CONSUMER_RECORDS.labels(batch[0].topic, "duplicate").inc(duplicates)

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        *,
        reason: str,
        error: str,
        attempts: int = 0,
    ) -> None:
        headers = [
            *(record.headers or ()),
            ("dlq-reason", reason.encode()),
            ("dlq-error", error[:2000].encode(errors="replace")),
            ("dlq-attempts", str(attempts).encode()),
            ("dlq-original-topic", record.topic.encode()),
            ("dlq-original-partition", str(record.partition).encode()),
            ("dlq-original-offset", str(record.offset).encode()),
            ("dlq-group", (self._group_id or "").encode()),
        ]
        await self._dlq.send_and_wait(
            events.dead_letter_topic(record.topic),
            value=record.value,
            key=record.key,
            headers=headers,
        )
        metrics.CONSUMER_RECORDS.labels(record.topic, "dead_lettered").inc()
        log.error(
            "consumer.dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            error=error,
        )

    async def _dead_letter_event(self, event: ConsumedEvent, *, error: str, attempts: int) -> None:
        await self._dead_letter(
            event.record, reason=DLQ_REASON_HANDLER_FAILED, error=error, attempts=attempts
        )


async def apply_events(
    connection: AsyncConnection,
    batch: Sequence[ConsumedEvent],
    *,
    processed: sa.Table,
    handler: BatchHandler,
) -> dict[str, int]:
    """Applies, inside the caller's transaction, the events of `batch` whose ids `processed`
    has not recorded yet, and records them. Returns how many were applied, per topic."""
    # One statement over arrays: a multi-row VALUES list costs SQLAlchemy a compile per row.
    result = await connection.execute(
        sa.text(
            f"insert into {processed.name} (event_id, topic)"  # noqa: S608 - our own table name
            " select * from unnest(cast(:ids as text[]), cast(:topics as text[]))"
            " on conflict (event_id) do nothing returning event_id"
        ),
        {
            "ids": [event.envelope.id for event in batch],
            "topics": [event.topic for event in batch],
        },
    )
    fresh_ids = {row[0] for row in result}

    fresh: list[ConsumedEvent] = []
    for event in batch:
        # Within one batch the same event may appear twice; only the first applies.
        if event.envelope.id in fresh_ids:
            fresh_ids.discard(event.envelope.id)
            fresh.append(event)
    if fresh:
        await handler(connection, fresh)

    applied: dict[str, int] = {}
    for event in fresh:
        applied[event.topic] = applied.get(event.topic, 0) + 1
    return applied


def decode_records(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[ConsumedEvent], list[Undecodable]]:
    decoded: list[ConsumedEvent] = []
    undecodable: list[Undecodable] = []
    for record in records:
        try:
            envelope = events.read_envelope(record.headers or ())
            payload = events.decode_payload(envelope.type, record.value or b"")
        except (events.EventEnvelopeError, events.EventPayloadError) as error:
            undecodable.append(Undecodable(record, str(error)))
            continue
        decoded.append(
            ConsumedEvent(
                envelope=envelope,
                payload=payload,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key.decode(errors="replace") if record.key else None,
                record=record,
            )
        )
    return decoded, undecodable
