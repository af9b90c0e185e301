"""Replay and dead-letter redrive, for operators of the system.

    python -m datasync.reprocess dead-letters --topic pedidos
    python -m datasync.reprocess redrive --topic pedidos (--all | --offset N ...)
    python -m datasync.reprocess replay --group reports-views --topic pedidos \\
        (--from-offset N | --from-time 2024-05-01T00:00:00Z)

Redrive sends dead letters back to the topic they came from, without their `dlq-*` headers,
once the cause is fixed. `--all` sends those not sent back before: a consumer group per
dead-letter topic remembers how far redrive got. Replay rewinds one consumer group on one
topic, so the group receives that range again; the consumers skip what they had already
applied by event id, so only what was missing takes effect. Kafka moves a group's offsets
only while the group has no running member, so stop its consumers first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from datasync import events
from datasync.kafka import create_producer, create_reader, topic_partitions
from datasync.settings import (
    KafkaSettings,
    SettingsError,
    read_app_env,
    read_environment,
    read_group,
)

DLQ_HEADER_PREFIX: Final = "dlq-"
EX_TEMPFAIL: Final = 75


class GroupActiveError(Exception):
    """The consumer group has running members; its offsets cannot be moved now."""


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: str | None
    reason: str | None
    error: str | None
    attempts: int | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    group: str | None
    event_type: str | None
    event_id: str | None


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def _number(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _dead_letter(record: Any) -> DeadLetter:
    headers = list(record.headers or ())
    return DeadLetter(
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key else None,
        reason=_header(headers, "dlq-reason"),
        error=_header(headers, "dlq-error"),
        attempts=_number(_header(headers, "dlq-attempts")),
        original_topic=_header(headers, "dlq-original-topic"),
        original_partition=_number(_header(headers, "dlq-original-partition")),
        original_offset=_number(_header(headers, "dlq-original-offset")),
        group=_header(headers, "dlq-group"),
        event_type=_header(headers, "ce_type"),
        event_id=_header(headers, "ce_id"),
    )


async def _read_until_end(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition], *, timeout_s: float = 30.0
) -> list[Any]:
    """Every record from the consumer's positions up to the ends seen when it started."""
    ends = await consumer.end_offsets(list(partitions))
    records: list[Any] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    for partition in partitions:
        while await consumer.position(partition) < ends[partition]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"reading {partition.topic} did not reach its end in time")
            batches = await consumer.getmany(partition, timeout_ms=1000)
            for batch in batches.values():
                records.extend(r for r in batch if r.offset < ends[partition])
    return records


async def list_dead_letters(settings: KafkaSettings, topic: str) -> list[DeadLetter]:
    """Every record in `<topic>.dlq`, oldest first."""
    partitions = await topic_partitions(settings, [events.dead_letter_topic(topic)])
    consumer = create_reader(settings, client_id="datasync-dead-letters")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return [_dead_letter(record) for record in await _read_until_end(consumer, partitions)]
    finally:
        await consumer.stop()


def redrive_group(topic: str) -> str:
    """The consumer group that remembers how far `redrive --all` got on a topic."""
    return f"datasync-redrive-{topic}"


async def redrive(settings: KafkaSettings, topic: str, *, offsets: Sequence[int] | None) -> int:
    """Sends dead letters back to their original topic; returns how many were sent.

    With `offsets`, exactly those records of `<topic>.dlq` (a single-partition topic) are
    sent; without, every record not sent back by an earlier `redrive --all`.
    """
    dlq = events.dead_letter_topic(topic)
    partitions = await topic_partitions(settings, [dlq])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="datasync-redrive",
        group_id=redrive_group(topic),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        security_protocol=settings.security_protocol,
    )
    producer = create_producer(settings, client_id="datasync-redrive")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign(partitions)
        if offsets is None:
            records = await _read_until_end(consumer, partitions)
        else:
            records = []
            for offset in sorted(set(offsets)):
                consumer.seek(partitions[0], offset)
                batches = await consumer.getmany(partitions[0], timeout_ms=5000, max_records=1)
                found = [r for batch in batches.values() for r in batch if r.offset == offset]
                if not found:
                    raise ValueError(f"{dlq} has no record at offset {offset}")
                records.extend(found)

        # A topic read by several groups gets one dead letter from each group that failed on
        # a record; the record goes back once, and the groups that had applied it skip it.
        records = _one_per_origin(records)
        deliveries = [
            await producer.send(
                _header(list(record.headers or ()), "dlq-original-topic") or topic,
                value=record.value,
                key=record.key,
                headers=[
                    (name, value)
                    for name, value in record.headers or ()
                    if not name.startswith(DLQ_HEADER_PREFIX)
                ],
            )
            for record in records
        ]
        await asyncio.gather(*deliveries)
        if offsets is None and records:
            # Only --all moves the cursor: single records can be sent back again at will.
            await consumer.commit(
                {
                    partition: OffsetAndMetadata(await consumer.position(partition), "")
                    for partition in partitions
                }
            )
        return len(records)
    finally:
        await producer.stop()
        await consumer.stop()


def _origin(record: Any) -> tuple[str | None, ...]:
    headers = list(record.headers or ())
    return tuple(
        _header(headers, name)
        for name in ("dlq-original-topic", "dlq-original-partition", "dlq-original-offset")
    )


def _one_per_origin(records: Sequence[Any]) -> list[Any]:
    seen: set[tuple[str | None, ...]] = set()
    unique: list[Any] = []
    for record in records:
        origin = _origin(record)
        if origin in seen and None not in origin:
            continue
        seen.add(origin)
        unique.append(record)
    return unique


async def replay(
    settings: KafkaSettings,
    *,
    group: str,
    topic: str,
    from_offset: int | None = None,
    from_time: dt.datetime | None = None,
) -> dict[int, int]:
    """Rewinds `group` on `topic` to an offset or a time; returns the new offset per
    partition.

    Raises:
        GroupActiveError: the group has running members.
    """
    if (from_offset is None) == (from_time is None):
        raise ValueError("give exactly one of from_offset and from_time")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="datasync-replay"
    )
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    state = _group_state(described)
    if state in ("Dead", ""):
        raise ValueError(f"there is no consumer group {group}: check its name")
    if state != "Empty":
        raise GroupActiveError(
            f"consumer group {group} is {state}: stop its consumers, then replay again"
        )

    partitions = await topic_partitions(settings, [topic])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="datasync-replay",
        group_id=group,
        enable_auto_commit=False,
        security_protocol=settings.security_protocol,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        if from_time is not None:
            millis = int(from_time.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, millis))
            targets = {tp: (hit.offset if hit else ends[tp]) for tp, hit in found.items()}
        else:
            assert from_offset is not None
            targets = {tp: min(max(from_offset, beginnings[tp]), ends[tp]) for tp in partitions}
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in targets.items()})
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in sorted(targets.items())}


def _group_state(described: Any) -> str:
    """The state of the first group in a DescribeGroups answer, whatever its shape."""
    for response in described if isinstance(described, list) else [described]:
        groups = getattr(response, "groups", None)
        if groups:
            first = groups[0]
            # Older protocol versions answer tuples (error, group, state, ...).
            state = first[2] if isinstance(first, tuple) else getattr(first, "state", "")
            return str(state)
    return ""


def _kafka_settings() -> KafkaSettings:
    env = read_environment()
    return read_group(KafkaSettings, env, read_app_env(env))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasync.reprocess", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("dead-letters", help="list the dead letters of a topic")
    listing.add_argument("--topic", required=True)
    send_back = commands.add_parser("redrive", help="send dead letters back to their topic")
    send_back.add_argument("--topic", required=True)
    which = send_back.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every one not sent back before")
    which.add_argument("--offset", type=int, action="append", help="one record (repeatable)")
    rewind = commands.add_parser("replay", help="rewind a consumer group on a topic")
    rewind.add_argument("--group", required=True)
    rewind.add_argument("--topic", required=True)
    start = rewind.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-offset", type=int)
    start.add_argument("--from-time", type=dt.datetime.fromisoformat)
    arguments = parser.parse_args(argv)

    try:
        settings = _kafka_settings()
        if arguments.command == "dead-letters":
            for letter in asyncio.run(list_dead_letters(settings, arguments.topic)):
                sys.stdout.write(json.dumps(asdict(letter)) + "\n")
        elif arguments.command == "redrive":
            offsets = None if arguments.all else arguments.offset
            sent = asyncio.run(redrive(settings, arguments.topic, offsets=offsets))
            sys.stdout.write(json.dumps({"event": "redrive.sent", "records": sent}) + "\n")
        else:
            positions = asyncio.run(
                replay(
                    settings,
                    group=arguments.group,
                    topic=arguments.topic,
                    from_offset=arguments.from_offset,
                    from_time=arguments.from_time,
                )
            )
            sys.stdout.write(json.dumps({"event": "replay.rewound", "offsets": positions}) + "\n")
    except GroupActiveError as error:
        sys.stderr.write(f"{error}\n")
        return EX_TEMPFAIL
    except (SettingsError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
