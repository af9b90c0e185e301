"""Kafka clients configured on purpose, not left on library defaults."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from datasync.settings import ConsumerSettings, KafkaSettings

log = structlog.get_logger(__name__)

CLIENT_STOP_TIMEOUT_S: Final = 5.0
"""How long a Kafka client may take to flush and close when the process stops. With the
broker away it would wait a whole request timeout; what it did not send is still in the
outbox, or its offsets still uncommitted, so nothing is lost by cutting it short."""


def _connection_options(settings: KafkaSettings, *, client_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context()
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password
    return options


def create_admin(settings: KafkaSettings, *, client_id: str) -> AIOKafkaAdminClient:
    """An admin client with the same connection and security options as every other."""
    return AIOKafkaAdminClient(**_connection_options(settings, client_id=client_id))


def create_producer(settings: KafkaSettings, *, client_id: str) -> AIOKafkaProducer:
    """A producer that never loses or duplicates an acknowledged record.

    Idempotence makes the broker drop the duplicates of internal retries and keeps order per
    partition; `acks=all` means a record is acknowledged only once every in-sync replica has
    it. A short linger and large batches send the records of one outbox batch in one request.
    """
    return AIOKafkaProducer(
        **_connection_options(settings, client_id=client_id),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=settings.producer_max_batch_bytes,
    )


def create_consumer(
    settings: KafkaSettings,
    consumer: ConsumerSettings,
    *topics: str,
    group_id: str,
    client_id: str,
) -> AIOKafkaConsumer:
    """A group consumer whose offsets are committed by us, after the effect is committed.

    A new group starts from the earliest offset so nothing written before it existed is
    skipped; reading only committed records keeps aborted transactions out.
    """
    return AIOKafkaConsumer(
        *topics,
        **_connection_options(settings, client_id=client_id),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=consumer.session_timeout_ms,
        heartbeat_interval_ms=max(consumer.session_timeout_ms // 10, 500),
        max_poll_interval_ms=consumer.max_poll_interval_ms,
        max_poll_records=consumer.max_batch_records,
        fetch_min_bytes=consumer.fetch_min_bytes,
        fetch_max_wait_ms=consumer.fetch_max_wait_ms,
    )


def create_reader(settings: KafkaSettings, *, client_id: str) -> AIOKafkaConsumer:
    """A consumer outside any group, for tools that choose their own partitions and
    positions (rebuilds, dead-letter listings)."""
    return AIOKafkaConsumer(
        **_connection_options(settings, client_id=client_id),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


async def topic_partitions(settings: KafkaSettings, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, asked of the cluster.

    Raises:
        ValueError: a topic does not exist.
    """
    admin = create_admin(settings, client_id="datasync-tools")
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions: list[TopicPartition] = []
    missing: list[str] = []
    for topic in described:
        if topic.get("error_code") or not topic.get("partitions"):
            missing.append(str(topic.get("topic")))
            continue
        partitions.extend(
            TopicPartition(topic["topic"], item["partition"]) for item in topic["partitions"]
        )
    if missing:
        raise ValueError(f"unknown topics: {', '.join(sorted(missing))}")
    return sorted(partitions)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def start_when_reachable(
    start: Callable[[], Awaitable[None]], stop: asyncio.Event, *, event: str
) -> None:
    """Starts Kafka clients, retrying with a doubling pause (capped at 5 s) while the
    brokers cannot be reached, until it works or `stop` is set."""
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            await start()
            return
        except KafkaError as error:
            delay_s = min(0.25 * 2 ** min(attempt, 5), 5.0)
            log.warning(
                event,
                error=str(error),
                next_step="will retry",
                retry_in_s=delay_s,
                attempt=attempt,
            )
            await sleep_or_stop(stop, delay_s)


async def stop_within(closing: Coroutine[object, object, object], what: str) -> None:
    """Awaits a client's stop for at most CLIENT_STOP_TIMEOUT_S."""
    try:
        await asyncio.wait_for(closing, timeout=CLIENT_STOP_TIMEOUT_S)
    except (TimeoutError, KafkaError) as error:
        log.warning(
            "kafka.stop_cut_short",
            client=what,
            error=repr(error),
            next_step="exiting; unsent rows stay queued, uncommitted offsets are redelivered",
        )
