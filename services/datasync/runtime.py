"""Running a service process: the HTTP server, background workers and their shutdown.

Every process, API or worker, serves `/health/*` and `/metrics` over HTTP, so one kind of
probe and one scrape config fit all of them. SIGTERM or SIGINT stops the HTTP server first
(it finishes in-flight requests), then asks the workers to stop; each worker finishes its
batch, flushes and commits before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
import structlog
import uvicorn
import uvloop
from aiokafka.admin import AIOKafkaAdminClient
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from datasync import outbox
from datasync.db import current_revision, head_revision
from datasync.http import ReadinessCheck
from datasync.kafka import create_admin
from datasync.logs import background_context
from datasync.settings import HttpSettings, KafkaSettings, SettingsError

log = structlog.get_logger(__name__)

Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A long-running task that returns soon after the event is set."""


class WorkerFailedError(Exception):
    """A worker ended on its own, which only happens on a bug: the process exits non-zero so
    its supervisor restarts it."""


async def serve(
    app: Litestar,
    http: HttpSettings,
    *,
    workers: Mapping[str, Worker] | None = None,
    graceful_timeout_s: float = 20.0,
) -> None:
    """Serves `app` and runs `workers` until a signal arrives or a worker fails.

    Raises:
        WorkerFailedError: a worker stopped or raised before it was asked to stop.
    """
    stop = asyncio.Event()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=http.host,
            port=http.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(graceful_timeout_s),
            server_header=False,
        )
    )
    failures: list[str] = []

    def on_worker_done(name: str, task: asyncio.Task[None]) -> None:
        if stop.is_set():
            return
        error = None if task.cancelled() else task.exception()
        log.error(
            "runtime.worker_stopped",
            worker=name,
            error=repr(error) if error else None,
            next_step="stopping the process so its supervisor restarts it",
        )
        failures.append(name)
        server.should_exit = True

    tasks: list[asyncio.Task[None]] = []
    for name, worker in (workers or {}).items():
        task: asyncio.Task[None] = asyncio.create_task(worker(stop), name=name)
        task.add_done_callback(functools.partial(on_worker_done, name))
        tasks.append(task)

    # uvicorn restores the previous handlers after its graceful shutdown and raises the
    # captured signal again. With the default handlers that would end the process before the
    # workers commit; with these no-op handlers the signal is absorbed and shutdown goes on.
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, _absorb_signal)
    # A full garbage collection walks every object of the process, and most of them are
    # modules and the app, which live as long as it does: 36 ms for pedidos' API on a
    # 2-core machine, a pause that every request in flight waits out. Frozen, they are
    # left out of every later collection.
    gc.collect()
    gc.freeze()
    try:
        await server.serve()
    finally:
        stop.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=graceful_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if failures:
        raise WorkerFailedError(", ".join(failures))


def _absorb_signal(signum: int, frame: FrameType | None) -> None:
    log.info("runtime.signal_received", signal=signum, next_step="finishing the shutdown")


class KafkaProbe:
    """Answers "is Kafka reachable?" with one long-lived admin client, recreated after a
    failure so a broker restart is noticed."""

    def __init__(self, settings: KafkaSettings, *, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    async def admin(self) -> AIOKafkaAdminClient:
        async with self._lock:
            if self._admin is None:
                admin = create_admin(self._settings, client_id=self._client_id)
                # The client's own tasks log for as long as it lives, not for this request.
                await asyncio.create_task(admin.start(), context=background_context())
                self._admin = admin
            return self._admin

    async def check(self) -> dict[str, Any]:
        try:
            admin = await self.admin()
            cluster = await admin.describe_cluster()
        except Exception:
            await self.close()
            raise
        return {"brokers": len(cluster.get("brokers", []))}

    async def close(self) -> None:
        async with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


def readiness_checks(
    *,
    engine: AsyncEngine,
    migrations: Path,
    kafka: KafkaProbe,
    outbox_table: sa.Table | None = None,
) -> dict[str, ReadinessCheck]:
    """The checks of `/health/ready`: database, schema at head, Kafka, and outbox backlog."""
    head = head_revision(migrations)

    async def database() -> dict[str, Any]:
        async with engine.connect() as connection:
            await connection.execute(sa.text("select 1"))
        return {}

    async def schema() -> dict[str, Any]:
        current = await current_revision(engine)
        if current != head:
            raise RuntimeError(f"database at revision {current}, code expects {head}")
        return {"revision": current}

    checks: dict[str, ReadinessCheck] = {
        "database": database,
        "migrations": schema,
        "kafka": kafka.check,
    }
    if outbox_table is not None:
        table = outbox_table

        async def backlog() -> dict[str, Any]:
            async with engine.connect() as connection:
                rows, oldest_age_s = await outbox.backlog(connection, table)
            return {"pending": rows, "oldest-age-s": round(oldest_age_s, 3)}

        checks["outbox"] = backlog
    return checks


def run_commands(
    commands: Mapping[str, Callable[[], Coroutine[Any, Any, None]]], argv: Sequence[str]
) -> int:
    """Runs the named command of a service's `__main__`, returning the exit code."""
    if len(argv) != 1 or argv[0] not in commands:
        names = " | ".join(commands)
        print(f"usage: python -m <service> {{{names}}}", file=sys.stderr)
        return 2
    try:
        # uvloop, as `uvicorn.run` would pick it: serving through `Server.serve` inside our
        # own runner means choosing the loop here, and the default loop costs each request
        # noticeably more CPU.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(commands[argv[0]]())
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 78  # EX_CONFIG: the supervisor should not restart in a loop for this
    except WorkerFailedError:
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
