"""The outbox relay on a real PostgreSQL and Kafka: fail-over, crashes and order per key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

import clientes.wiring
from datasync import kafka
from datasync.local import LocalKafka
from datasync.outbox import OutboxRelay
from datasync.settings import OutboxSettings
from tests.conftest import settings_for, unique
from tests.integration.conftest import records_of

pytestmark = pytest.mark.integration

WAIT_S = 30.0


async def pending_rows(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("select count(*) from outbox"))
    finally:
        await connection.close()


async def outbox_drained(database_url: str) -> None:
    """Returns once the outbox is empty, polling for at most WAIT_S."""
    for _ in range(int(WAIT_S * 10)):
        if not await pending_rows(database_url):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the outbox still holds rows after {WAIT_S} s")


def relay_for(database_url: str, kafka_broker: LocalKafka, name: str) -> OutboxRelay:
    settings = settings_for(database_url, kafka_broker)
    return OutboxRelay(
        database_url=database_url,
        producer=kafka.create_producer(settings.kafka, client_id=name),
        settings=OutboxSettings(poll_interval_ms=100, standby_retry_ms=200),
    )


async def rename_many(database_url: str, kafka_broker: LocalKafka, cliente_id: str, n: int) -> None:
    """Creates a customer and renames it `n - 1` times through the API, one after another."""
    kit = clientes.wiring.build_kit(settings_for(database_url, kafka_broker), process="api")
    app = clientes.wiring.build_app(kit)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.post("/clientes", json={"id": cliente_id, "nome": "v1"})
        for version in range(2, n + 1):
            response = await client.put(f"/clientes/{cliente_id}", json={"nome": f"v{version}"})
            assert response.status_code == 200
    await kit.close()


async def outbox_of_one_cliente(
    fresh_database: Callable[[str], str], kafka_broker: LocalKafka, events: int
) -> tuple[str, str]:
    """A fresh clientes database whose outbox holds `events` events of one new customer;
    returns the database URL and the customer's id."""
    url = fresh_database("clientes")
    cliente_id = unique("c")
    await rename_many(url, kafka_broker, cliente_id, events)
    return url, cliente_id


@contextlib.asynccontextmanager
async def running_relay(url: str, kafka_broker: LocalKafka, name: str) -> AsyncIterator[None]:
    """A relay running for the duration of the block, stopped the way the process stops it."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay_for(url, kafka_broker, name).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


@contextlib.contextmanager
def statements_failing(
    method: str, prefix: str, error: Exception, *, times: int | None = None
) -> Iterator[list[str]]:
    """Makes `asyncpg.Connection.<method>` raise `error` for statements starting with
    `prefix`, every time or the first `times` times; yields the statements it failed."""
    original = getattr(asyncpg.Connection, method)
    failed: list[str] = []

    async def failing(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if query.startswith(prefix) and (times is None or len(failed) < times):
            failed.append(query)
            raise error
        return await original(self, query, *args, **kwargs)

    setattr(asyncpg.Connection, method, failing)
    try:
        yield failed
    finally:
        setattr(asyncpg.Connection, method, original)


async def test_two_relays_publish_through_one_and_the_other_takes_over(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> None:
    url = fresh_database("clientes")
    cliente_id = unique("c")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(relay_for(url, kafka, "relay-a").run(stop_first))
    await asyncio.sleep(1)
    second = asyncio.create_task(relay_for(url, kafka, "relay-b").run(stop_second))

    await rename_many(url, kafka, cliente_id, 5)
    before = await records_of(kafka.bootstrap_servers, "clientes", cliente_id, 5)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await rename_many(url, kafka, unique("c"), 1)
    taken_over_at = time.monotonic()
    await outbox_drained(url)
    took_s = time.monotonic() - taken_over_at
    stop_second.set()
    await second

    assert [json.loads(record.value)["versao"] for record in before] == [1, 2, 3, 4, 5]
    assert await pending_rows(url) == 0
    assert took_s < 5


async def test_a_relay_that_dies_after_publishing_publishes_again_and_consumers_absorb_it(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> None:
    url, cliente_id = await outbox_of_one_cliente(fresh_database, kafka, 3)

    killed = ConnectionResetError("relay killed between publish and delete")
    with statements_failing("execute", "delete from outbox", killed):
        async with running_relay(url, kafka, "relay-crash"):
            await records_of(kafka.bootstrap_servers, "clientes", cliente_id, 3)
    healthy_stop = asyncio.Event()
    healthy = asyncio.create_task(relay_for(url, kafka, "relay-ok").run(healthy_stop))
    await outbox_drained(url)
    healthy_stop.set()
    await healthy

    published = await records_of(kafka.bootstrap_servers, "clientes", cliente_id, 6)
    ids = [dict(record.headers)["ce_id"] for record in published]
    assert len(published) >= 6
    assert len(set(ids)) == 3
    assert REGISTRY.get_sample_value("datasync_outbox_relay_active") == 0


async def test_the_events_of_one_customer_leave_in_the_order_they_were_written(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> None:
    url = fresh_database("clientes")
    cliente_id = unique("c")
    stop = asyncio.Event()
    relay = asyncio.create_task(relay_for(url, kafka, "relay-order").run(stop))

    await rename_many(url, kafka, cliente_id, 30)
    published = await records_of(kafka.bootstrap_servers, "clientes", cliente_id, 30)
    stop.set()
    await relay

    versions = [json.loads(record.value)["versao"] for record in published]
    assert versions == list(range(1, 31))


async def test_a_full_outbox_batch_goes_to_kafka_in_one_produce_request(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> None:
    url = fresh_database("clientes")
    rows = 300
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "insert into outbox (event_id, topic, key, headers, payload)"
            " select gen_random_uuid(), 'clientes', 'k' || (n % 30), '[]', repeat('x', 300)::bytea"
            " from generate_series(1, $1) as n",
            rows,
        )
    finally:
        await connection.close()
    relay = relay_for(url, kafka, "relay-batch")
    produce_requests = 0
    send_request = relay._producer.client.send

    async def counting_send(node_id: int, request: Any, **options: Any) -> Any:
        nonlocal produce_requests
        produce_requests += type(request).__name__.startswith("ProduceRequest")
        return await send_request(node_id, request, **options)

    relay._producer.client.send = counting_send  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await outbox_drained(url)
    stop.set()
    await task

    # About 100 records of 350 bytes for each of three partitions: in the library's 16 KiB
    # batches, three batches a partition, and so three requests one after another.
    assert produce_requests == 1


async def test_a_relay_whose_connection_is_left_broken_reconnects_instead_of_exiting(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> None:
    url, cliente_id = await outbox_of_one_cliente(fresh_database, kafka, 2)
    broken = asyncpg.InternalClientError("cannot switch to state 12")
    with statements_failing("fetch", "select id, topic", broken, times=1) as failed:
        async with running_relay(url, kafka, "relay-broken"):
            published = await records_of(kafka.bootstrap_servers, "clientes", cliente_id, 2)

    assert len(failed) == 1
    assert [json.loads(record.value)["versao"] for record in published] == [1, 2]
