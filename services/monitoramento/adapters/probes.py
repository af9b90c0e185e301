"""Adapters that look at the other parts: their HTTP health endpoints and Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from datasync.kafka import create_admin, create_reader
from datasync.logs import background_context
from datasync.settings import KafkaSettings
from monitoramento.domain import GroupLag, PartitionLag, ProcessHealth


class HttpHealthProbe:
    """Reads `/health/live` and `/health/ready` of a process, with a short timeout so one
    hung process cannot stall the whole status."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def probe(self, name: str, base_url: str) -> ProcessHealth:
        try:
            live = await self._client.get(f"{base_url}/health/live")
            ready = await self._client.get(f"{base_url}/health/ready")
        except httpx.HTTPError as error:
            return ProcessHealth(name=name, live=False, ready=False, error=_describe(error))

        checks: dict[str, Any] = {}
        try:
            body = ready.json()
            if isinstance(body, dict) and isinstance(body.get("checks"), dict):
                checks = body["checks"]
        except ValueError:
            pass
        return ProcessHealth(
            name=name,
            live=live.status_code == 200,
            ready=ready.status_code == 200,
            checks=checks,
        )


def _describe(error: httpx.HTTPError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class AioKafkaInspector:
    """Kafka reachability and consumer lag, through one admin client and one group-less
    consumer used only to read end offsets."""

    def __init__(self, settings: KafkaSettings, *, timeout_s: float = 3.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        async with self._lock:
            if self._admin is None or self._offsets is None:
                # The same credentials and TLS as every other client of the service.
                admin = create_admin(self._settings, client_id="monitoramento")
                offsets = create_reader(self._settings, client_id="monitoramento-offsets")
                try:
                    # The clients' own tasks log for as long as they live, not for this
                    # status request.
                    await asyncio.create_task(_start(admin, offsets), context=background_context())
                except BaseException:
                    # Including the cancellation of a caller's timeout (a broker that takes
                    # the connection and never answers): clients left half-started would
                    # keep their sockets and tasks, one pair for every status request.
                    await _close(admin, offsets)
                    raise
                self._admin, self._offsets = admin, offsets
            return self._admin, self._offsets

    async def reachable(self) -> bool:
        try:
            admin, _ = await asyncio.wait_for(self._clients(), self._timeout_s)
            await asyncio.wait_for(admin.describe_cluster(), self._timeout_s)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            await self.close()
            return False
        return True

    async def lag(self, group: str) -> GroupLag:
        try:
            admin, offsets = await asyncio.wait_for(self._clients(), self._timeout_s)
            committed = await asyncio.wait_for(
                admin.list_consumer_group_offsets(group), self._timeout_s
            )
            partitions = list(committed)
            ends = await asyncio.wait_for(offsets.end_offsets(partitions), self._timeout_s)
        except Exception as error:  # noqa: BLE001 - reported in the status, not raised
            await self.close()
            return GroupLag(group=group, partitions=[], error=f"{type(error).__name__}: {error}")

        return GroupLag(
            group=group,
            partitions=[
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=_committed(committed[tp].offset),
                    end=ends.get(TopicPartition(tp.topic, tp.partition), 0),
                )
                for tp in sorted(partitions)
            ],
        )

    async def close(self) -> None:
        async with self._lock:
            admin, offsets = self._admin, self._offsets
            self._admin = self._offsets = None
        await _close(admin, offsets)


async def _start(admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer) -> None:
    await admin.start()
    await offsets.start()


def _committed(offset: int) -> int | None:
    # The admin API answers -1 for a partition the group has not committed yet.
    return offset if offset >= 0 else None


async def _close(admin: AIOKafkaAdminClient | None, offsets: AIOKafkaConsumer | None) -> None:
    # Closing a client whose broker is gone may fail too; the outage is already reported.
    if admin is not None:
        with contextlib.suppress(Exception):
            await admin.close()
    if offsets is not None:
        with contextlib.suppress(Exception):
            await offsets.stop()
