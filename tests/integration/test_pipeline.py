"""The pipeline in one process, on a real PostgreSQL and a real Kafka broker.

The relays and consumers run as asyncio tasks next to the three REST APIs, with databases of
their own and consumer groups no other test uses, so every assertion is about records this
module wrote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from structlog.testing import capture_logs

from datasync import events
from tests.conftest import unique
from tests.integration.conftest import WAIT_S, Pipeline, eventually, records_of

pytestmark = pytest.mark.integration

Client = httpx.AsyncClient


async def report_of(pipeline: Pipeline, cliente_id: str) -> dict[str, Any]:
    response = await pipeline.reports.get(f"/reports/clientes/{cliente_id}")
    return response.json() if response.status_code == 200 else {}


async def test_an_order_reaches_the_reports_with_its_customer(pipeline: Pipeline) -> None:
    cliente_id = unique("c")
    await pipeline.clientes.post(
        "/clientes",
        json={"id": cliente_id, "nome": "Ana", "pais": "Brasil", "segmento": "varejo"},
    )

    await pipeline.pedidos.post(
        "/pedidos",
        json={"id": unique("p"), "cliente-id": cliente_id, "valor": 10.05},
    )

    # The order counts as soon as it is accepted; its customer's data may arrive later.
    report = await eventually(
        lambda: report_of(pipeline, cliente_id),
        lambda r: r.get("pedidos") == 1 and r.get("nome") == "Ana",
    )
    assert report["nome"] == "Ana"
    assert report["pais"] == "Brasil"
    assert report["total"] == "10.05"
    assert report["ticket-medio"] == "10.05"
    segmentos = await eventually(
        lambda: segment_of_orders(pipeline, cliente_id), lambda found: found == ["varejo"]
    )
    assert segmentos == ["varejo"]


async def segment_of_orders(pipeline: Pipeline, cliente_id: str) -> list[str | None]:
    connection = await asyncpg.connect(pipeline.urls["reports"])
    try:
        rows = await connection.fetch(
            "select segmento from pedidos where cliente_id = $1 order by id", cliente_id
        )
    finally:
        await connection.close()
    return [row["segmento"] for row in rows]


async def test_an_order_before_its_customer_counts_at_once_and_is_enriched_later(
    pipeline: Pipeline,
) -> None:
    cliente_id = unique("c")
    await pipeline.pedidos.post(
        "/pedidos", json={"id": unique("p"), "cliente-id": cliente_id, "valor": 7}
    )
    early = await eventually(
        lambda: report_of(pipeline, cliente_id), lambda r: r.get("pedidos") == 1
    )

    await pipeline.clientes.post(
        "/clientes",
        json={"id": cliente_id, "nome": "Tardio", "pais": "Chile", "segmento": "atacado"},
    )

    late = await eventually(
        lambda: report_of(pipeline, cliente_id), lambda r: r.get("nome") == "Tardio"
    )
    assert early["nome"] is None
    assert late["pedidos"] == 1
    assert late["total"] == "7.00"
    assert await eventually(
        lambda: segment_of_orders(pipeline, cliente_id), lambda s: s == ["atacado"]
    )


async def test_a_renamed_customer_shows_its_new_name_and_country(pipeline: Pipeline) -> None:
    cliente_id = unique("c")
    await pipeline.clientes.post(
        "/clientes", json={"id": cliente_id, "nome": "Velho", "pais": "Peru"}
    )
    await pipeline.pedidos.post(
        "/pedidos", json={"id": unique("p"), "cliente-id": cliente_id, "valor": 3}
    )
    await eventually(lambda: report_of(pipeline, cliente_id), lambda r: r.get("pedidos") == 1)

    await pipeline.clientes.put(f"/clientes/{cliente_id}", json={"nome": "Novo", "pais": "Chile"})

    report = await eventually(
        lambda: report_of(pipeline, cliente_id), lambda r: r.get("nome") == "Novo"
    )
    assert report["pais"] == "Chile"


async def send_raw(
    bootstrap_servers: str,
    topic: str,
    *,
    key: str,
    value: bytes,
    headers: list[tuple[str, bytes]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key.encode(), headers=headers)
    finally:
        await producer.stop()


def pedido_record(cliente_id: str, pedido_id: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    payload = events.PedidoCriado(
        id=pedido_id,
        cliente_id=cliente_id,
        valor=Decimal("4.50"),
        data=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
    )
    envelope = events.new_envelope(payload, source="/tests", subject=cliente_id)
    return events.encode_payload(payload), events.envelope_headers(envelope)


async def test_report_queries_reject_what_no_customer_or_day_can_be(pipeline: Pipeline) -> None:
    unknown = await pipeline.reports.get("/reports/clientes/%00")
    no_range = await pipeline.reports.get("/reports/vendas-diarias", params={"ate": "2024-01-01"})

    assert unknown.status_code == 404
    assert no_range.status_code == 400
    assert [p["name"] for p in no_range.json()["invalid-params"]] == ["de"]


async def test_a_redelivered_event_counts_once(pipeline: Pipeline) -> None:
    cliente_id = unique("c")
    value, headers = pedido_record(cliente_id, unique("p"))

    for _ in range(2):
        await send_raw(
            pipeline.bootstrap_servers, "pedidos", key=cliente_id, value=value, headers=headers
        )
    marker_value, marker_headers = pedido_record(cliente_id, unique("p"))
    await send_raw(
        pipeline.bootstrap_servers,
        "pedidos",
        key=cliente_id,
        value=marker_value,
        headers=marker_headers,
    )

    report = await eventually(
        lambda: report_of(pipeline, cliente_id), lambda r: r.get("pedidos", 0) >= 2
    )
    assert report["pedidos"] == 2
    assert report["total"] == "9.00"


async def dead_letters(bootstrap_servers: str, key: str, count: int) -> list[Any]:
    return await records_of(bootstrap_servers, "pedidos.dlq", key, count)


async def test_poison_records_are_dead_lettered_and_the_partition_moves_on(
    pipeline: Pipeline,
) -> None:
    cliente_id = unique("c")
    good_value, good_headers = pedido_record(cliente_id, unique("p"))
    poison = [
        (
            b"\xff not json",
            [*good_headers[:1], ("ce_id", uuid.uuid4().hex.encode()), *good_headers[2:]],
        ),
        (json.dumps({"id": 5}).encode(), [("ce_id", uuid.uuid4().hex.encode()), *good_headers[2:]]),
        (good_value, [(k, b"datasync.nope" if k == "ce_type" else v) for k, v in good_headers]),
    ]

    with capture_logs() as logs:
        for value, headers in poison:
            await send_raw(
                pipeline.bootstrap_servers, "pedidos", key=cliente_id, value=value, headers=headers
            )
        await send_raw(
            pipeline.bootstrap_servers,
            "pedidos",
            key=cliente_id,
            value=good_value,
            headers=good_headers,
        )
        report = await eventually(
            lambda: report_of(pipeline, cliente_id), lambda r: r.get("pedidos") == 1
        )

    letters = await dead_letters(pipeline.bootstrap_servers, cliente_id, count=6)
    # Both consumer groups (clientes and reports) read `pedidos`, so each poison record is
    # dead-lettered once by each of them.
    assert len(letters) == 6
    reasons = {dict(letter.headers)["dlq-reason"] for letter in letters}
    assert reasons == {b"undecodable"}
    assert all(dict(letter.headers)["dlq-original-topic"] == b"pedidos" for letter in letters)
    assert report["total"] == "4.50"
    assert any(entry["event"] == "consumer.dead_lettered" for entry in logs)


@contextlib.contextmanager
def capture_debug_logs() -> Iterator[list[dict[str, Any]]]:
    """Every line logged meanwhile, debug lines too, each with its context variables."""
    wrapper_class = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            yield logs
    finally:
        structlog.configure(wrapper_class=wrapper_class)


async def test_the_request_id_travels_from_the_request_into_the_events(
    pipeline: Pipeline,
) -> None:
    cliente_id = unique("c")
    request_id = unique("req")
    await pipeline.clientes.post("/clientes", json={"id": cliente_id, "nome": "Rastreada"})

    pedido_id = unique("p")

    with capture_debug_logs() as logs:
        await pipeline.pedidos.post(
            "/pedidos",
            json={"id": pedido_id, "cliente-id": cliente_id, "valor": 1},
            headers={"x-request-id": request_id},
        )
        await eventually(lambda: report_of(pipeline, cliente_id), lambda r: r.get("pedidos") == 1)

    consumer = AIOKafkaConsumer(
        "pedidos-enriquecidos",
        bootstrap_servers=pipeline.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        enriched: list[Any] = []
        deadline = time.monotonic() + WAIT_S
        while not enriched and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                enriched.extend(r for r in records if r.key == cliente_id.encode())
    finally:
        await consumer.stop()
    assert enriched, "no enriched order was published"
    assert dict(enriched[0].headers)["ce_requestid"] == request_id.encode()
    consumer_lines = [
        entry
        for entry in logs
        if entry["event"] == "clientes.pedido_enriched" and entry.get("pedido_id") == pedido_id
    ]
    assert consumer_lines, "the consumer logged nothing about the order"
    assert consumer_lines[0]["request_id"] == request_id
