"""Fixtures of the integration tests: the pipeline in one process."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from litestar import Litestar

import clientes.wiring
import pedidos.wiring
import reports.wiring
from datasync.bootstrap import ServiceKit
from datasync.local import LocalKafka
from tests.conftest import settings_for

Client = httpx.AsyncClient
WAIT_S = 30.0
T = TypeVar("T")


@dataclass
class Pipeline:
    pedidos: Client
    clientes: Client
    reports: Client
    urls: dict[str, str]
    bootstrap_servers: str
    reports_kit: ServiceKit


async def eventually(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool]) -> T:
    """Polls `probe` until `until` holds, failing after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await probe()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {WAIT_S} s"
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def pipeline(
    fresh_database: Callable[[str], str], kafka: LocalKafka
) -> AsyncIterator[Pipeline]:
    urls = {name: fresh_database(name) for name in ("pedidos", "clientes", "reports")}
    run = uuid.uuid4().hex[:8]

    def kit(module: Any, name: str, process: str, **extra: str) -> Any:
        return module.build_kit(settings_for(urls[name], kafka, **extra), process=process)

    pedidos_kit = kit(pedidos.wiring, "pedidos", "all")
    clientes_kit = kit(clientes.wiring, "clientes", "all", CONSUMER_GROUP_ID=f"clientes-{run}")
    reports_kit = kit(reports.wiring, "reports", "all", CONSUMER_GROUP_ID=f"reports-{run}")
    report_settings = reports.wiring.ReportSettings()
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(pedidos_kit.relay_worker()(stop)),
        asyncio.create_task(clientes_kit.relay_worker()(stop)),
        asyncio.create_task(clientes.wiring.consumer_worker(clientes_kit)(stop)),
        asyncio.create_task(reports.wiring.consumer_worker(reports_kit)(stop)),
    ]

    # Plain ASGI transports keep the apps on the test's event loop, which the workers and
    # the apps' shared connection pools live on.
    async with (
        client_of(pedidos.wiring.build_app(pedidos_kit)) as pedidos_client,
        client_of(clientes.wiring.build_app(clientes_kit)) as clientes_client,
        client_of(reports.wiring.build_app(reports_kit, report_settings)) as reports_client,
    ):
        yield Pipeline(
            pedidos_client,
            clientes_client,
            reports_client,
            urls,
            kafka.bootstrap_servers,
            reports_kit,
        )
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=WAIT_S)
    for each_kit in (pedidos_kit, clientes_kit, reports_kit):
        await each_kit.close()


@contextlib.asynccontextmanager
async def client_of(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app that runs its start-up and shutdown hooks around the requests,
    as a server would: pedidos closes its group-commit connections only on shutdown. The
    hooks are called here, since the app's own lifespan would enter a task group in one
    task of the fixture and leave it in another."""
    for hook in app.on_startup:
        await hook()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client
    for hook in app.on_shutdown:
        await hook()


async def records_of(bootstrap_servers: str, topic: str, key: str, count: int) -> list[Any]:
    """The records of one key on a topic, from the beginning, until `count` arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + WAIT_S
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                found.extend(r for r in batch if r.key == key.encode())
    finally:
        await consumer.stop()
    return found
