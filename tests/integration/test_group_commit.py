"""The group commit of `POST /pedidos` against a real PostgreSQL: shared transactions, the
answer of every item, and one bad item failing alone."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal

import asyncpg
import pytest
import structlog

from datasync import events
from datasync.db import DatabaseUnavailableError, WritePool
from datasync.group_commit import GroupCommit
from datasync.settings import DatabaseSettings
from pedidos.adapters import postgres
from pedidos.adapters.postgres import GroupCommitPedidoIntake, NovoPedido
from pedidos.domain import Pedido
from tests.conftest import free_port, unique

pytestmark = pytest.mark.integration

DATA = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

Writer = GroupCommit[NovoPedido, Pedido | None]


@pytest.fixture(scope="module")
def database_url(fresh_database: Callable[[str], str]) -> str:
    return fresh_database("pedidos")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[WritePool]:
    write_pool = WritePool(DatabaseSettings(url=database_url), application_name="test")
    yield write_pool
    await write_pool.close()


def new_writer(
    pool: WritePool,
    *,
    transactions: list[int],
    writers: int = 2,
    max_batch: int = 64,
    delay_s: float = 0.0,
) -> Writer:
    """A writer like the service's, recording the size of every transaction it opens."""

    async def write(
        connection: asyncpg.Connection, batch: Sequence[NovoPedido]
    ) -> list[Pedido | None]:
        transactions.append(len(batch))
        return await postgres.write_new_pedidos(connection, batch)

    return GroupCommit(
        name="test",
        pool=pool,
        write=write,
        writers=writers,
        max_batch=max_batch,
        acquire_timeout_s=2.0,
        delay_s=delay_s,
    )


def order(pedido_id: str, valor: str = "10.00", cliente_id: str = "C1") -> Pedido:
    return Pedido(id=pedido_id, cliente_id=cliente_id, valor=Decimal(valor), data=DATA)


async def add(writer: Writer, pedido: Pedido) -> Pedido | None:
    return await GroupCommitPedidoIntake(writer, request_id=None).add_new(
        pedido,
        topic=events.TOPIC_PEDIDOS,
        key=pedido.cliente_id,
        event=events.PedidoCriado(
            id=pedido.id, cliente_id=pedido.cliente_id, valor=pedido.valor, data=pedido.data
        ),
    )


async def stored_rows(database_url: str, ids: list[str]) -> tuple[int, list[str]]:
    """Orders stored with these ids, and the ids their outbox rows carry, in outbox order."""
    connection = await asyncpg.connect(database_url)
    try:
        pedidos = await connection.fetchval(
            "select count(*) from pedidos where id = any($1::text[])", ids
        )
        payloads = await connection.fetch("select payload from outbox order by id")
    finally:
        await connection.close()
    wanted = set(ids)
    in_outbox = [found for row in payloads if (found := json.loads(row["payload"])["id"]) in wanted]
    return pedidos, in_outbox


@pytest.mark.asyncio
async def test_concurrent_orders_share_transactions_and_each_gets_its_answer(
    pool: WritePool, database_url: str
) -> None:
    transactions: list[int] = []
    writer = new_writer(pool, transactions=transactions)
    ids = [unique("g") for _ in range(200)]

    answers = await asyncio.gather(*(add(writer, order(pedido_id)) for pedido_id in ids))

    assert answers == [None] * 200
    assert sum(transactions) == 200
    assert len(transactions) < 200, "concurrent orders were not grouped"
    pedidos, in_outbox = await stored_rows(database_url, ids)
    assert pedidos == 200
    assert sorted(in_outbox) == sorted(ids)


@pytest.mark.asyncio
async def test_orders_arriving_within_the_delay_share_one_transaction(
    pool: WritePool, database_url: str
) -> None:
    transactions: list[int] = []
    writer = new_writer(pool, transactions=transactions, writers=2, delay_s=0.5)
    ids = [unique("d") for _ in range(5)]

    async def add_later(position: int, pedido_id: str) -> Pedido | None:
        await asyncio.sleep(0.02 * position)
        return await add(writer, order(pedido_id))

    answers = await asyncio.gather(*(add_later(n, pedido_id) for n, pedido_id in enumerate(ids)))

    # Without the delay the first order would have gone alone, and a second writer would
    # have taken the next ones.
    assert answers == [None] * 5
    assert transactions == [5]
    pedidos, _ = await stored_rows(database_url, ids)
    assert pedidos == 5


@pytest.mark.asyncio
async def test_a_full_batch_is_written_without_waiting_for_the_delay(pool: WritePool) -> None:
    transactions: list[int] = []
    writer = new_writer(pool, transactions=transactions, max_batch=3, delay_s=60.0)
    first = [add(writer, order(unique("f"))) for _ in range(3)]

    answers = await asyncio.wait_for(asyncio.gather(*first), timeout=10)

    assert answers == [None] * 3
    assert transactions == [3]


@pytest.mark.asyncio
async def test_an_id_taken_before_or_earlier_in_the_batch_gets_the_stored_order(
    pool: WritePool, database_url: str
) -> None:
    transactions: list[int] = []
    writer = new_writer(pool, transactions=transactions, writers=1)
    before, twice = unique("g"), unique("g")
    await add(writer, order(before, "1.00"))

    answers = await asyncio.gather(
        add(writer, order(twice, "2.00")),
        add(writer, order(before, "3.00")),
        add(writer, order(twice, "4.00")),
    )

    assert transactions[-1] == 3, "the three orders were expected in one transaction"
    assert answers == [None, order(before, "1.00"), order(twice, "2.00")]
    pedidos, in_outbox = await stored_rows(database_url, [before, twice])
    assert pedidos == 2
    assert in_outbox == [before, twice]


@pytest.mark.asyncio
async def test_events_enter_the_outbox_in_the_order_the_orders_arrived(
    pool: WritePool, database_url: str
) -> None:
    writer = new_writer(pool, transactions=[], writers=1)
    # Ids sorting against their arrival order: the outbox must follow arrival, not the ids.
    ids = [f"{unique('z')}-{9 - n}" for n in range(10)]

    await asyncio.gather(*(add(writer, order(pedido_id)) for pedido_id in ids))

    _, in_outbox = await stored_rows(database_url, ids)
    assert in_outbox == ids


@pytest.mark.asyncio
async def test_an_item_the_database_refuses_fails_alone(pool: WritePool, database_url: str) -> None:
    transactions: list[int] = []
    writer = new_writer(pool, transactions=transactions, writers=1)
    good = [unique("g") for _ in range(5)]
    # A NUL byte in a text column: the API's rules never let one through, PostgreSQL refuses
    # it, and the batch it shares must still be written.
    refused = NovoPedido(
        pedido=order(unique("g") + "\x00"),
        event_id=str(uuid.uuid4()),
        topic=events.TOPIC_PEDIDOS,
        key="C1",
        headers="[]",
        payload=b"{}",
    )

    answers = await asyncio.gather(
        *(add(writer, order(pedido_id)) for pedido_id in good[:2]),
        writer.submit(refused),
        *(add(writer, order(pedido_id)) for pedido_id in good[2:]),
        return_exceptions=True,
    )

    assert isinstance(answers[2], asyncpg.CharacterNotInRepertoireError)
    assert [answer for n, answer in enumerate(answers) if n != 2] == [None] * 5
    pedidos, in_outbox = await stored_rows(database_url, good)
    assert pedidos == 5
    assert sorted(in_outbox) == sorted(good)


@pytest.mark.asyncio
async def test_an_unreachable_database_fails_every_item_as_unavailable() -> None:
    unreachable = f"postgresql://pedidos:pedidos@127.0.0.1:{free_port()}/pedidos"
    pool = WritePool(
        DatabaseSettings(url=unreachable, connect_timeout_s=1.0), application_name="test"
    )
    writer = new_writer(pool, transactions=[])

    answers = await asyncio.gather(
        *(add(writer, order(unique("g"))) for _ in range(3)), return_exceptions=True
    )

    assert all(isinstance(answer, DatabaseUnavailableError) for answer in answers)
    await pool.close()


@pytest.mark.asyncio
async def test_drain_waits_for_every_submitted_order(pool: WritePool, database_url: str) -> None:
    writer = new_writer(pool, transactions=[])
    ids = [unique("g") for _ in range(50)]
    pending = [asyncio.ensure_future(add(writer, order(pedido_id))) for pedido_id in ids]
    await asyncio.sleep(0)

    await writer.drain()

    assert all(task.done() for task in pending)
    pedidos, _ = await stored_rows(database_url, ids)
    assert pedidos == 50


@pytest.mark.asyncio
async def test_a_connection_left_broken_fails_its_batch_as_unavailable_and_is_not_lent_again(
    pool: WritePool,
) -> None:
    backends: list[int] = []

    async def write(
        connection: asyncpg.Connection, batch: Sequence[NovoPedido]
    ) -> list[Pedido | None]:
        backends.append(await connection.fetchval("select pg_backend_pid()"))
        if len(backends) == 1:
            # What asyncpg raises on a connection a crash of the server cut off mid-statement.
            raise asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )
        return await postgres.write_new_pedidos(connection, batch)

    writer: Writer = GroupCommit(
        name="test", pool=pool, write=write, writers=1, max_batch=64, acquire_timeout_s=2.0
    )

    first = await asyncio.gather(add(writer, order(unique("g"))), return_exceptions=True)
    second = await add(writer, order(unique("g")))

    assert isinstance(first[0], DatabaseUnavailableError)
    assert second is None
    assert backends[0] != backends[1]


@pytest.mark.asyncio
async def test_the_shared_writer_does_not_carry_the_request_id_of_the_request_that_started_it(
    pool: WritePool,
) -> None:
    contexts: list[dict[str, object]] = []

    async def write(
        connection: asyncpg.Connection, batch: Sequence[NovoPedido]
    ) -> list[Pedido | None]:
        contexts.append(structlog.contextvars.get_contextvars())
        return await postgres.write_new_pedidos(connection, batch)

    writer: Writer = GroupCommit(
        name="test", pool=pool, write=write, writers=1, max_batch=64, acquire_timeout_s=2.0
    )
    structlog.contextvars.bind_contextvars(request_id="first-request")
    try:
        await add(writer, order(unique("g")))
    finally:
        structlog.contextvars.unbind_contextvars("request_id")

    assert "request_id" not in contexts[0]
