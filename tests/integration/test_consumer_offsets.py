"""When the idempotent consumer commits its offsets, on a real PostgreSQL and Kafka broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncConnection

from datasync import kafka as kafka_clients
from datasync.consumer import ConsumedEvent, IdempotentConsumer, processed_events_table
from datasync.db import create_engine
from datasync.local import LocalKafka, ensure_topics
from tests.conftest import settings_for, unique
from tests.integration.conftest import eventually
from tests.integration.test_pipeline import pedido_record, send_raw

pytestmark = pytest.mark.integration


async def length_of(items: list[object] | list[str]) -> int:
    return len(items)


async def committed_offset(bootstrap_servers: str, group_id: str, partition: TopicPartition) -> int:
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await reader.start()
    try:
        return await reader.committed(partition) or 0
    finally:
        await reader.stop()


async def test_a_batch_is_applied_while_the_last_offset_commit_is_in_flight_and_stop_waits_for_it(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> None:
    topic = unique("offsets")
    await ensure_topics(kafka.bootstrap_servers, {topic: 1})
    partition = TopicPartition(topic, 0)
    group_id = unique("group")
    settings = settings_for(fresh_database("reports"), kafka)
    engine = create_engine(settings.database, application_name=group_id)
    consumer = kafka_clients.create_consumer(
        settings.kafka, settings.consumer, topic, group_id=group_id, client_id=group_id
    )

    # Every offset commit waits for the gate, then for a slow broker, then goes to the broker
    # as it would have.
    gate = asyncio.Event()
    commits_begun: list[object] = []
    commit = consumer.commit

    async def slow_commit_behind_the_gate(offsets: object = None) -> None:
        commits_begun.append(offsets)
        await gate.wait()
        await asyncio.sleep(0.3)
        await commit(offsets)  # type: ignore[arg-type]

    consumer.commit = slow_commit_behind_the_gate  # type: ignore[method-assign]

    applied: list[str] = []

    async def note(connection: AsyncConnection, batch: Sequence[ConsumedEvent]) -> None:
        applied.extend(event.envelope.id for event in batch)

    stop = asyncio.Event()
    running = asyncio.create_task(
        IdempotentConsumer(
            engine=engine,
            consumer=consumer,
            dead_letter_producer=kafka_clients.create_producer(settings.kafka, client_id=group_id),
            processed_events=processed_events_table(sa.MetaData()),
            handler=note,
            settings=settings.consumer,
            group_id=group_id,
        ).run(stop)
    )
    try:
        first, second = (pedido_record(unique("c"), unique("p")) for _ in range(2))
        await send_raw(kafka.bootstrap_servers, topic, key="k", value=first[0], headers=first[1])
        await eventually(lambda: length_of(commits_begun), lambda n: n == 1)

        await send_raw(kafka.bootstrap_servers, topic, key="k", value=second[0], headers=second[1])
        await eventually(lambda: length_of(applied), lambda n: n == 2)
        assert not gate.is_set()

        # Stopping now: the first commit is let through, the second starts after it, and
        # the consumer may leave only once that one is done too.
        stop.set()
        gate.set()
        await asyncio.wait_for(running, timeout=30)
    finally:
        stop.set()
        gate.set()
        await asyncio.wait_for(running, timeout=30)
        await engine.dispose()

    assert await committed_offset(kafka.bootstrap_servers, group_id, partition) == 2
