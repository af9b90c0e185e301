"""Dead-letter listing and redrive, and replay, against a real Kafka broker."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from datasync import events
from datasync.reprocess import GroupActiveError, list_dead_letters, redrive, replay
from datasync.settings import KafkaSettings
from tests.conftest import unique
from tests.integration.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration


def kafka_settings(pipeline: Pipeline) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=pipeline.bootstrap_servers)


async def dead_letter_an_order(pipeline: Pipeline, cliente_id: str, valor: str) -> None:
    """Puts a valid enriched order straight into the dead-letter topic, as a consumer that
    failed on it would have."""
    payload = events.PedidoEnriquecido(
        id=unique("p"),
        cliente_id=cliente_id,
        valor=Decimal(valor),
        data=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        cliente=events.ClienteDoPedido(nome="Recuperado", segmento="resgate"),
    )
    envelope = events.new_envelope(payload, source="/tests", subject=cliente_id)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            "pedidos-enriquecidos.dlq",
            value=events.encode_payload(payload),
            key=cliente_id.encode(),
            headers=[
                *events.envelope_headers(envelope),
                ("dlq-reason", b"handler-failed"),
                ("dlq-error", b"RuntimeError('a bug, since fixed')"),
                ("dlq-attempts", b"5"),
                ("dlq-original-topic", b"pedidos-enriquecidos"),
                ("dlq-original-partition", b"0"),
                ("dlq-original-offset", b"42"),
            ],
        )
    finally:
        await producer.stop()


async def pedidos_of(pipeline: Pipeline, cliente_id: str) -> int:
    response = await pipeline.reports.get(f"/reports/clientes/{cliente_id}")
    return int(response.json()["pedidos"]) if response.status_code == 200 else 0


async def test_dead_letters_are_listed_with_why_and_sent_back_once(pipeline: Pipeline) -> None:
    cliente_id = unique("dlq")
    await dead_letter_an_order(pipeline, cliente_id, "12.34")
    settings = kafka_settings(pipeline)

    listed = [
        letter
        for letter in await list_dead_letters(settings, "pedidos-enriquecidos")
        if letter.key == cliente_id
    ]
    sent = await redrive(settings, "pedidos-enriquecidos", offsets=None)
    sent_again = await redrive(settings, "pedidos-enriquecidos", offsets=None)

    assert len(listed) == 1
    assert listed[0].reason == "handler-failed"
    assert listed[0].error == "RuntimeError('a bug, since fixed')"
    assert listed[0].original_offset == 42
    assert listed[0].event_type == "datasync.clientes.PedidoEnriquecido"
    assert sent >= 1
    assert sent_again == 0
    assert await eventually(lambda: pedidos_of(pipeline, cliente_id), lambda n: n == 1)


async def test_one_dead_letter_can_be_sent_back_by_offset(pipeline: Pipeline) -> None:
    cliente_id = unique("dlq")
    await dead_letter_an_order(pipeline, cliente_id, "5.00")
    settings = kafka_settings(pipeline)
    letter = next(
        letter
        for letter in await list_dead_letters(settings, "pedidos-enriquecidos")
        if letter.key == cliente_id
    )

    sent = await redrive(settings, "pedidos-enriquecidos", offsets=[letter.offset])

    assert sent == 1
    assert await eventually(lambda: pedidos_of(pipeline, cliente_id), lambda n: n == 1)


async def committed_offsets(bootstrap_servers: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == "pedidos"}


async def test_replay_rewinds_a_stopped_group_and_refuses_a_running_one(
    pipeline: Pipeline,
) -> None:
    group = unique("replay")
    settings = kafka_settings(pipeline)
    member = AIOKafkaConsumer(
        "pedidos",
        bootstrap_servers=pipeline.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="latest",
    )
    await member.start()
    try:
        await member.getmany(timeout_ms=3000)
        with pytest.raises(GroupActiveError, match="stop its consumers"):
            await replay(settings, group=group, topic="pedidos", from_offset=0)
        await member.seek_to_end()
        for partition in member.assignment():
            await member.position(partition)
        await member.commit()
    finally:
        await member.stop()

    positions = await replay(settings, group=group, topic="pedidos", from_offset=0)

    assert set(positions) == {0, 1, 2}
    assert all(offset == 0 for offset in positions.values())
    assert await committed_offsets(pipeline.bootstrap_servers, group) == positions


async def test_replay_refuses_a_group_that_does_not_exist(pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match="no consumer group"):
        await replay(kafka_settings(pipeline), group=unique("typo"), topic="pedidos", from_offset=0)


async def test_a_record_dead_lettered_by_two_groups_goes_back_once(pipeline: Pipeline) -> None:
    cliente_id = unique("dlq2")
    await dead_letter_an_order(pipeline, cliente_id, "3.00")
    await dead_letter_an_order(pipeline, cliente_id, "3.00")
    settings = kafka_settings(pipeline)

    sent = await redrive(settings, "pedidos-enriquecidos", offsets=None)

    # Both copies carry the same original topic, partition and offset (42): one goes back.
    assert sent == 1
