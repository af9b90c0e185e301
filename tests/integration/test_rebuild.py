"""Rebuilding the report views from Kafka while the live pipeline keeps running."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

import reports.wiring
from datasync import events
from datasync.rebuild import (
    REBUILD_LOCK_KEY,
    Progress,
    RebuildConflictError,
    RebuildOptionsError,
)
from tests.conftest import unique
from tests.integration.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration


async def source_totals(pipeline: Pipeline, clientes: list[str]) -> dict[str, tuple[int, str]]:
    """Orders and total per customer, from the pedidos database: the source of truth."""
    connection = await asyncpg.connect(pipeline.urls["pedidos"])
    try:
        rows = await connection.fetch(
            "select cliente_id, count(*), sum(valor) from pedidos"
            " where cliente_id = any($1::text[]) group by cliente_id",
            clientes,
        )
    finally:
        await connection.close()
    return {row[0]: (row[1], f"{row[2]:.2f}") for row in rows}


async def reported_totals(pipeline: Pipeline, clientes: list[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for cliente_id in clientes:
        response = await pipeline.reports.get(f"/reports/clientes/{cliente_id}")
        if response.status_code == 200:
            body = response.json()
            found[cliente_id] = (body["pedidos"], body["total"])
    return found


async def post_orders(pipeline: Pipeline, clientes: list[str], count: int) -> None:
    for n in range(count):
        # valor goes as an exact JSON number literal, never through a float.
        body = (
            f'{{"id": "{unique("p")}", "cliente-id": "{clientes[n % len(clientes)]}", '
            f'"valor": {n % 97 + 1}.{n % 100:02d}}}'
        )
        response = await pipeline.pedidos.post(
            "/pedidos", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 201, response.text


async def corrupt_views(pipeline: Pipeline, clientes: list[str]) -> None:
    connection = await asyncpg.connect(pipeline.urls["reports"])
    try:
        await connection.execute("delete from pedidos where cliente_id = $1", clientes[0])
        await connection.execute(
            "update totais_por_cliente set total = 0, pedidos = 1 where cliente_id = $1",
            clientes[1],
        )
        await connection.execute(
            "delete from totais_por_cliente where cliente_id = $1", clientes[2]
        )
    finally:
        await connection.close()


async def test_a_corrupted_view_is_rebuilt_to_the_totals_of_the_source_data(
    pipeline: Pipeline,
) -> None:
    clientes = [unique("c") for _ in range(3)]
    await post_orders(pipeline, clientes, 30)
    expected = await source_totals(pipeline, clientes)
    await eventually(lambda: reported_totals(pipeline, clientes), lambda r: r == expected)
    await corrupt_views(pipeline, clientes)
    assert await reported_totals(pipeline, clientes) != expected

    result = await reports.wiring.build_rebuild(pipeline.reports_kit).run(asyncio.Event())

    assert result.switched
    assert await reported_totals(pipeline, clientes) == expected


async def test_a_rebuild_while_orders_keep_arriving_loses_none(pipeline: Pipeline) -> None:
    clientes = [unique("c") for _ in range(4)]
    await post_orders(pipeline, clientes, 20)

    writer = asyncio.create_task(post_orders(pipeline, clientes, 150))
    result = await reports.wiring.build_rebuild(pipeline.reports_kit).run(asyncio.Event())
    await writer

    expected = await source_totals(pipeline, clientes)
    assert result.switched
    assert sum(count for count, _ in expected.values()) == 170
    assert await eventually(lambda: reported_totals(pipeline, clientes), lambda r: r == expected)


async def publish_orders(bootstrap_servers: str, cliente_id: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = []
        for n in range(count):
            payload = events.PedidoCriado(
                id=f"{cliente_id}-{n}",
                cliente_id=cliente_id,
                valor=Decimal("1.25"),
                data=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            )
            envelope = events.new_envelope(payload, source="/tests", subject=cliente_id)
            sends.append(
                await producer.send(
                    "pedidos",
                    value=events.encode_payload(payload),
                    key=cliente_id.encode(),
                    headers=events.envelope_headers(envelope),
                )
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def test_a_stopped_rebuild_resumes_where_it_left_off(pipeline: Pipeline) -> None:
    cliente_id = unique("bulk")
    await publish_orders(pipeline.bootstrap_servers, cliente_id, 6000)
    stop = asyncio.Event()

    def stop_midway(progress: Progress) -> None:
        if progress.done > 0 and progress.remaining > 0:
            stop.set()

    first = await reports.wiring.build_rebuild(
        pipeline.reports_kit, on_progress=stop_midway, progress_interval_s=0
    ).run(stop)
    second = await reports.wiring.build_rebuild(pipeline.reports_kit).run(asyncio.Event())

    assert not first.switched
    assert first.done > 0
    assert second.switched
    report = await eventually(
        lambda: reported_totals(pipeline, [cliente_id]),
        lambda r: r.get(cliente_id, (0, ""))[0] == 6000,
    )
    assert report[cliente_id] == (6000, "7500.00")


async def test_two_rebuilds_of_the_same_views_never_run_at_once(pipeline: Pipeline) -> None:
    holder = await asyncpg.connect(pipeline.urls["reports"])
    try:
        assert await holder.fetchval("select pg_try_advisory_lock($1)", REBUILD_LOCK_KEY)

        with pytest.raises(RebuildConflictError, match="another rebuild"):
            await reports.wiring.build_rebuild(pipeline.reports_kit).run(asyncio.Event())
    finally:
        await holder.close()


async def test_a_stopped_rebuild_is_not_resumed_from_another_starting_point(
    pipeline: Pipeline,
) -> None:
    stop = asyncio.Event()
    stop.set()
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    await reports.wiring.build_rebuild(pipeline.reports_kit, from_time=since).run(
        stop, restart=True
    )

    with pytest.raises(RebuildOptionsError, match="--restart"):
        await reports.wiring.build_rebuild(pipeline.reports_kit).run(asyncio.Event())
    result = await reports.wiring.build_rebuild(pipeline.reports_kit).run(
        asyncio.Event(), restart=True
    )

    assert result.switched
