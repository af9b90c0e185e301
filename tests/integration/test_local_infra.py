"""The local PostgreSQL and Kafka of ``datasync.local``, run for real as child processes.

One PostgreSQL and one Kafka broker serve the whole module; the tests restart and kill
them on purpose, because surviving that is what ``make up`` and the fault tests rely on.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from datasync.local import LocalKafka, LocalPostgres, ensure_kafka_jars, ensure_topics
from datasync.stack import Infrastructure

pytestmark = pytest.mark.integration

WAIT_S = 30.0


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    server = LocalPostgres(tmp_path_factory.mktemp("postgres") / "data", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kafka_lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_kafka_jars(tmp_path_factory.mktemp("kafka-jars"))


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory, kafka_lib_dir: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(
        tmp_path_factory.mktemp("kafka"),
        lib_dir=kafka_lib_dir,
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start()
    yield broker
    broker.stop()


async def fetch_names(url: str) -> list[str]:
    connection = await asyncpg.connect(url, timeout=WAIT_S)
    try:
        rows = await connection.fetch("SELECT name FROM customers ORDER BY name")
        return [row["name"] for row in rows]
    finally:
        await connection.close()


async def insert_name(url: str, name: str) -> None:
    connection = await asyncpg.connect(url, timeout=WAIT_S)
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS customers (name text PRIMARY KEY)")
        await connection.execute("INSERT INTO customers (name) VALUES ($1)", name)
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_ensure_database_gives_a_working_url_and_is_idempotent(
    postgres: LocalPostgres,
) -> None:
    # Characters that must be URL-quoted prove the URL is built correctly.
    first = postgres.ensure_database("crm", owner="crm_app", password="p@ss:w/rd %1")
    second = postgres.ensure_database("crm", owner="crm_app", password="p@ss:w/rd %1")

    assert first == second
    quoted_password = "p%40ss%3Aw%2Frd%20%251"
    assert first == f"postgresql://crm_app:{quoted_password}@127.0.0.1:{postgres.port}/crm"
    await insert_name(first, "Alfreds Futterkiste")
    assert await fetch_names(first) == ["Alfreds Futterkiste"]


@pytest.mark.asyncio
async def test_postgres_keeps_committed_rows_across_a_clean_restart_and_a_kill(
    postgres: LocalPostgres,
) -> None:
    url = postgres.ensure_database("sales", owner="sales_app", password="sales-secret")
    await insert_name(url, "Berglunds snabbkop")

    postgres.stop()
    assert not postgres.running
    assert postgres.pid is None
    postgres.start()
    await insert_name(url, "Chop-suey Chinese")

    # SIGKILL of the whole server: the next start must run crash recovery on its own,
    # and every commit acknowledged before the kill must still be there.
    postgres.kill()
    assert not postgres.running
    postgres.start()

    assert await fetch_names(url) == ["Berglunds snabbkop", "Chop-suey Chinese"]
    assert postgres.ensure_database("sales", owner="sales_app", password="sales-secret") == url


def test_kafka_jars_are_downloaded_once(kafka_lib_dir: Path) -> None:
    marker = kafka_lib_dir / ".pom-sha256"
    before = marker.stat().st_mtime_ns

    assert ensure_kafka_jars(kafka_lib_dir.parent) == kafka_lib_dir
    assert marker.stat().st_mtime_ns == before
    assert any(kafka_lib_dir.glob("kafka_2.13-*.jar"))


@pytest.mark.asyncio
async def test_ensure_topics_creates_missing_topics_and_accepts_existing_ones(
    kafka: LocalKafka,
) -> None:
    wanted = {"crm.customers": 3, "crm.orders": 2}

    await ensure_topics(kafka.bootstrap_servers, wanted, config={"retention.ms": "3600000"})
    await ensure_topics(kafka.bootstrap_servers, {**wanted, "crm.invoices": 1})

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(["crm.customers", "crm.orders", "crm.invoices"])
    finally:
        await admin.close()
    partitions = {topic["topic"]: len(topic["partitions"]) for topic in described}
    assert partitions == {"crm.customers": 3, "crm.orders": 2, "crm.invoices": 1}


async def produce(bootstrap_servers: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def consume_one(bootstrap_servers: str, topic: str, group: str) -> bytes | None:
    """Read the next message for ``group`` and commit it."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), WAIT_S)
        await consumer.commit()
        value: bytes | None = message.value
        return value
    finally:
        await consumer.stop()


@pytest.mark.asyncio
async def test_kafka_keeps_topics_messages_and_offsets_across_a_restart(
    kafka: LocalKafka,
) -> None:
    topic = "crm.restart-check"
    # One partition keeps the order of the two messages observable.
    await ensure_topics(kafka.bootstrap_servers, {topic: 1})
    await produce(kafka.bootstrap_servers, topic, b"before restart")
    assert await consume_one(kafka.bootstrap_servers, topic, "restart-check") == b"before restart"

    pid_before = kafka.pid
    kafka.stop()
    assert not kafka.running
    kafka.start()
    assert kafka.pid not in (None, pid_before)

    await ensure_topics(kafka.bootstrap_servers, {topic: 1})
    await produce(kafka.bootstrap_servers, topic, b"after restart")
    # The group's committed offset survived: it gets the new message, not the old one.
    assert await consume_one(kafka.bootstrap_servers, topic, "restart-check") == b"after restart"
    assert await consume_one(kafka.bootstrap_servers, topic, "fresh-group") == b"before restart"


@pytest.mark.asyncio
async def test_a_shutdown_held_up_by_an_open_session_is_ended_and_postgres_started_again(
    postgres: LocalPostgres,
) -> None:
    url = postgres.ensure_database("held", owner="held", password="held")
    holder = await asyncpg.connect(url, timeout=WAIT_S)
    infrastructure = Infrastructure(database_urls={}, bootstrap_servers="", postgres=postgres)
    out = io.StringIO()
    assert postgres.pid is not None

    # A polite shutdown: PostgreSQL now waits for the holder's session to end.
    os.kill(postgres.pid, signal.SIGTERM)
    for _ in range(int(WAIT_S / 0.05)):
        if postgres.shutting_down:
            break
        await asyncio.sleep(0.05)
    assert postgres.shutting_down
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        await asyncio.to_thread(infrastructure.restart_dead, out, held=set())
        if postgres.running and not postgres.shutting_down:
            break
        await asyncio.sleep(0.2)
    holder.terminate()

    await insert_name(url, "after the restart")
    assert await fetch_names(url) == ["after the restart"]
    assert "ending it to restart it" in out.getvalue()
