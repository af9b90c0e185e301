"""Running a service process: what `serve` sets up around the HTTP server."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Iterator

import pytest
from litestar import Litestar

from datasync.runtime import WorkerFailedError, serve
from datasync.settings import HttpSettings


@pytest.fixture
def restored_signals() -> Iterator[None]:
    handlers = {handled: signal.getsignal(handled) for handled in (signal.SIGINT, signal.SIGTERM)}
    yield
    for handled, handler in handlers.items():
        signal.signal(handled, handler)
    gc.unfreeze()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_objects_alive_when_serving_starts_are_left_out_of_collections(
    restored_signals: None,
) -> None:
    frozen_while_serving: list[int] = []

    async def worker(stop: asyncio.Event) -> None:
        await asyncio.sleep(0.1)
        frozen_while_serving.append(gc.get_freeze_count())

    # A worker that returns on its own ends the process, which is what ends this test.
    with pytest.raises(WorkerFailedError):
        await serve(
            Litestar(route_handlers=[]),
            HttpSettings(host="127.0.0.1", port=free_port()),
            workers={"probe": worker},
        )

    assert frozen_while_serving[0] > 10_000
