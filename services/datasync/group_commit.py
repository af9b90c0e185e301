"""Group commit: requests that arrive together share one transaction and one WAL flush.

A durable commit costs a WAL flush, and under load most of a write's time is spent waiting for
it. Here every request hands its item to a `GroupCommit` and waits; a writer task gathers what
arrives for a short delay, writes it with set-based statements as one atomic write, and only
once it is committed answers every request of the batch. Under heavy load batches grow by
themselves, so the commits per second stay bounded while the items per second rise. The
delay makes them grow under moderate load too, where every statement and commit would
otherwise carry one or two items: it costs each request up to the delay in latency and
saves the database and the service most of their work per commit.

Nothing is answered before its commit, so an item the caller saw accepted is durable. A
connection error fails every item of the batch (the caller answers 503 and the client
retries). Any other error is the batch's content: each item is then written again in a
transaction of its own, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg
import structlog

from datasync import metrics
from datasync.db import DatabaseUnavailableError, is_connection_error
from datasync.logs import background_context

log = structlog.get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

BatchWriter = Callable[[asyncpg.Connection, Sequence[Item]], Awaitable[Sequence[Result]]]
"""Writes the items atomically, returning one result per item, in order. No transaction is
open: a writer whose work is one statement (as an `insert ... with` over arrays is) needs
none, which saves two round trips a batch; one that needs several opens its own."""


class GroupCommit(Generic[Item, Result]):
    """Batches concurrent writes of one kind into shared transactions on an asyncpg pool."""

    def __init__(
        self,
        *,
        name: str,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        write: BatchWriter[Item, Result],
        writers: int,
        max_batch: int,
        acquire_timeout_s: float,
        delay_s: float = 0.0,
    ) -> None:
        """`writers` bounds the writes in flight at once; `delay_s` is how long a writer
        gathers items before it writes a batch that is not full."""
        self._name = name
        self._pool = pool
        self._write = write
        self._writers = writers
        self._max_batch = max_batch
        self._acquire_timeout_s = acquire_timeout_s
        self._delay_s = delay_s
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._gathering = False

    async def submit(self, item: Item) -> Result:
        """Writes `item` durably and returns its result.

        Raises:
            DatabaseUnavailableError: the database could not be reached; nothing was written.
        """
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        # A writer that is gathering takes this item too; otherwise every writer is busy
        # writing, and another may start.
        if not self._gathering and len(self._running) < self._writers:
            task = asyncio.create_task(
                self._drain(), name=f"{self._name}-writer", context=background_context()
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        # A caller that goes away (client disconnect) must not cancel the shared write.
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Waits until every submitted item is written; called before the pool closes."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _drain(self) -> None:
        # One writer gathers at a time: a writer done with its batch leaves what is waiting
        # to the one gathering it.
        while self._waiting and not self._gathering:
            if self._delay_s and len(self._waiting) < self._max_batch:
                self._gathering = True
                try:
                    await asyncio.sleep(self._delay_s)
                finally:
                    self._gathering = False
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        metrics.GROUP_COMMIT_BATCH.labels(self._name).observe(len(batch))
        try:
            results = await self._write_batch([item for item, _ in batch])
        except Exception as error:  # noqa: BLE001 - sorted just below: outage or content
            if isinstance(error, DatabaseUnavailableError) or len(batch) == 1:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            log.warning(
                "group_commit.batch_failed",
                writer=self._name,
                items=len(batch),
                error=repr(error),
                next_step="writing each item in its own transaction",
            )
            for one in batch:
                await self._commit([one])
            return

        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _write_batch(self, items: Sequence[Item]) -> Sequence[Result]:
        try:
            pool = await self._pool()
            async with pool.acquire(timeout=self._acquire_timeout_s) as connection:
                try:
                    results = await self._write(connection, items)
                except Exception as error:
                    if is_connection_error(error):
                        # Cut off mid-statement, a connection may be left in a state where
                        # every later use fails; the pool must not lend it again.
                        connection.terminate()
                    raise
        except Exception as error:
            if is_connection_error(error):
                raise DatabaseUnavailableError(str(error)) from error
            raise
        if len(results) != len(items):
            raise RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
        return results
