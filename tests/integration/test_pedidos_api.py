"""The pedidos REST API against a real PostgreSQL: contract, idempotency and bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from pedidos import wiring
from tests.conftest import free_port, settings_for, unique

pytestmark = pytest.mark.integration

Client = AsyncTestClient[Any]


@pytest.fixture(scope="module")
def database_url(fresh_database: Callable[[str], str]) -> str:
    return fresh_database("pedidos")


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    kit = wiring.build_kit(settings_for(database_url), process="api")
    async with AsyncTestClient(app=wiring.build_app(kit)) as test_client:
        yield test_client


async def counts(database_url: str, pedido_id: str) -> tuple[int, int]:
    """Rows of one order in `pedidos` and of its events in the outbox."""
    connection = await asyncpg.connect(database_url)
    try:
        pedidos = await connection.fetchval("select count(*) from pedidos where id = $1", pedido_id)
        events = await connection.fetchval(
            "select count(*) from outbox where convert_from(payload, 'UTF8') like $1",
            f'%"id":"{pedido_id}"%',
        )
    finally:
        await connection.close()
    return pedidos, events


def pedido(pedido_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": pedido_id, "cliente-id": "456", "valor": 100.0, **fields}


@pytest.mark.asyncio
async def test_the_seed_example_is_accepted_with_exact_money(client: Client) -> None:
    pedido_id = unique("p")

    response = await client.post("/pedidos", json=pedido(pedido_id))

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == pedido_id
    assert body["cliente-id"] == "456"
    assert body["valor"] == "100.00"
    assert body["data"].endswith("Z")


@pytest.mark.asyncio
async def test_an_accepted_order_and_its_event_are_written_together(
    client: Client, database_url: str
) -> None:
    pedido_id = unique("p")

    await client.post(
        "/pedidos",
        content=json.dumps(pedido(pedido_id, valor=19.9)),
        headers={"content-type": "application/json", "x-request-id": "req-42"},
    )

    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "select topic, key, headers, convert_from(payload, 'UTF8') as payload from outbox"
            " where convert_from(payload, 'UTF8') like $1",
            f'%"id":"{pedido_id}"%',
        )
    finally:
        await connection.close()
    assert row is not None
    assert row["topic"] == "pedidos"
    assert row["key"] == "456"
    headers = dict(json.loads(row["headers"]))
    assert headers["ce_type"] == "datasync.pedidos.PedidoCriado"
    assert headers["ce_source"] == "/datasync/pedidos"
    assert headers["ce_subject"] == "456"
    assert headers["ce_requestid"] == "req-42"
    assert json.loads(row["payload"])["valor"] == "19.90"


@pytest.mark.asyncio
async def test_a_repeated_order_answers_200_and_publishes_nothing_new(
    client: Client, database_url: str
) -> None:
    pedido_id = unique("p")
    first = await client.post("/pedidos", json=pedido(pedido_id, data="2024-01-02T03:04:05Z"))

    again = await client.post("/pedidos", json=pedido(pedido_id, data="2024-01-02T03:04:05Z"))
    without_date = await client.post("/pedidos", json=pedido(pedido_id))

    assert first.status_code == 201
    assert again.status_code == 200
    assert without_date.status_code == 200
    assert again.json() == first.json()
    assert await counts(database_url, pedido_id) == (1, 1)


@pytest.mark.asyncio
async def test_the_same_id_with_other_content_is_a_conflict(
    client: Client, database_url: str
) -> None:
    pedido_id = unique("p")
    await client.post("/pedidos", json=pedido(pedido_id))

    response = await client.post("/pedidos", json=pedido(pedido_id, valor=100.01))

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert pedido_id in response.json()["detail"]
    assert [param["name"] for param in response.json()["invalid-params"]] == ["id"]
    assert await counts(database_url, pedido_id) == (1, 1)


BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    ("malformed JSON", b'{"id": "x1", ', "application/json", 400, "body"),
    ("a JSON array", b"[1, 2]", "application/json", 422, "body"),
    ("missing valor", b'{"id": "x1", "cliente-id": "c"}', "application/json", 422, "valor"),
    ("missing id", b'{"cliente-id": "c", "valor": 1}', "application/json", 422, "id"),
    ("id as a number", b'{"id": 7, "cliente-id": "c", "valor": 1}', "application/json", 422, "id"),
    (
        "negative valor",
        b'{"id": "x1", "cliente-id": "c", "valor": -5}',
        "application/json",
        422,
        "valor",
    ),
    (
        "zero valor",
        b'{"id": "x1", "cliente-id": "c", "valor": 0}',
        "application/json",
        422,
        "valor",
    ),
    (
        "NaN literal",
        b'{"id": "x1", "cliente-id": "c", "valor": NaN}',
        "application/json",
        400,
        "body",
    ),
    (
        "Infinity literal",
        b'{"id": "x1", "cliente-id": "c", "valor": Infinity}',
        "application/json",
        400,
        "body",
    ),
    (
        "NaN string",
        b'{"id": "x1", "cliente-id": "c", "valor": "NaN"}',
        "application/json",
        422,
        "valor",
    ),
    (
        "valor as a string",
        b'{"id": "x1", "cliente-id": "c", "valor": "100.00"}',
        "application/json",
        422,
        "valor",
    ),
    (
        "valor as a boolean",
        b'{"id": "x1", "cliente-id": "c", "valor": true}',
        "application/json",
        422,
        "valor",
    ),
    (
        "three decimals",
        b'{"id": "x1", "cliente-id": "c", "valor": 1.005}',
        "application/json",
        422,
        "valor",
    ),
    (
        "too large",
        b'{"id": "x1", "cliente-id": "c", "valor": 1000000000000}',
        "application/json",
        422,
        "valor",
    ),
    (
        "huge exponent",
        b'{"id": "x1", "cliente-id": "c", "valor": 1e999999}',
        "application/json",
        422,
        "valor",
    ),
    (
        "id too long",
        b'{"id": "' + b"a" * 65 + b'", "cliente-id": "c", "valor": 1}',
        "application/json",
        422,
        "id",
    ),
    (
        "id with a slash",
        b'{"id": "a/b", "cliente-id": "c", "valor": 1}',
        "application/json",
        422,
        "id",
    ),
    ("empty id", b'{"id": "", "cliente-id": "c", "valor": 1}', "application/json", 422, "id"),
    (
        "cliente-id with a space",
        b'{"id": "x1", "cliente-id": "a b", "valor": 1}',
        "application/json",
        422,
        "cliente-id",
    ),
    (
        "data without offset",
        b'{"id": "x1", "cliente-id": "c", "valor": 1, "data": "2024-01-01T10:00:00"}',
        "application/json",
        422,
        "data",
    ),
    (
        "data not a date",
        b'{"id": "x1", "cliente-id": "c", "valor": 1, "data": "yesterday"}',
        "application/json",
        422,
        "data",
    ),
    (
        "unknown field",
        b'{"id": "x1", "cliente-id": "c", "valor": 1, "cliente_id": "c"}',
        "application/json",
        422,
        "cliente_id",
    ),
    (
        "form content type",
        b"id=x1&valor=1",
        "application/x-www-form-urlencoded",
        415,
        "content-type",
    ),
    ("no content type", b'{"id": "x1", "cliente-id": "c", "valor": 1}', "", 415, "content-type"),
    (
        "latin-1 charset",
        b'{"id": "x1", "cliente-id": "c", "valor": 1}',
        "application/json; charset=latin-1",
        415,
        "content-type",
    ),
    ("id of dots", b'{"id": "..", "cliente-id": "c", "valor": 1}', "application/json", 422, "id"),
    (
        "data beyond year 1 in UTC",
        b'{"id": "x1", "cliente-id": "c", "valor": 1, "data": "0001-01-01T00:00:00+14:00"}',
        "application/json",
        422,
        "data",
    ),
    (
        "deeply nested valor",
        b'{"id": "x1", "cliente-id": "c", "valor": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}",
        "application/json",
        400,
        "body",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_input_gets_a_problem_naming_the_field_and_writes_nothing(
    client: Client, database_url: str, body: bytes, content_type: str, status: int, field: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}

    response = await client.post("/pedidos", content=body, headers=headers)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert field in [param["name"] for param in problem["invalid-params"]]
    assert await counts(database_url, "x1") == (0, 0)


@pytest.mark.asyncio
async def test_a_body_over_64_kib_is_refused_with_413(client: Client) -> None:
    body = json.dumps(pedido(unique("p"), padding="x" * 70_000)).encode()

    response = await client.post(
        "/pedidos", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert [param["name"] for param in response.json()["invalid-params"]] == ["body"]


async def test_an_order_reads_back_in_utc_whatever_offset_it_came_with(client: Client) -> None:
    pedido_id = unique("p")

    created = await client.post(
        "/pedidos", json=pedido(pedido_id, data="2024-01-01T00:00:00+05:30")
    )
    read = await client.get(f"/pedidos/{pedido_id}")

    assert created.json()["data"] == "2023-12-31T18:30:00Z"
    assert read.json()["data"] == created.json()["data"]


@pytest.mark.parametrize("path", ["/pedidos/%00", "/pedidos/a%2Fb", "/pedidos/.."])
async def test_a_path_id_no_order_can_have_is_404(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.asyncio
async def test_an_order_can_be_read_back_and_a_missing_one_is_404(client: Client) -> None:
    pedido_id = unique("p")
    await client.post("/pedidos", json=pedido(pedido_id, valor=12.5))

    found = await client.get(f"/pedidos/{pedido_id}")
    missing = await client.get("/pedidos/does-not-exist")

    assert found.status_code == 200
    assert found.json()["valor"] == "12.50"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.asyncio
async def test_orders_of_a_customer_are_listed_page_by_page(client: Client) -> None:
    cliente_id = unique("c")
    created = sorted(f"{cliente_id}-{n}" for n in range(5))
    for pedido_id in created:
        await client.post("/pedidos", json={"id": pedido_id, "cliente-id": cliente_id, "valor": 1})

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"cliente-id": cliente_id, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/pedidos", params=params)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page.get("next-cursor")
        if cursor is None:
            break

    assert seen == created


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "%%%not-base64"}, "cursor"),
        ({"cursor": "_w"}, "cursor"),
        ({"cursor": "AAAA"}, "cursor"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cliente-id": "\x00"}, "cliente-id"),
    ],
)
async def test_bad_pagination_is_a_400_naming_the_parameter(
    client: Client, params: dict[str, str], field: str
) -> None:
    response = await client.get("/pedidos", params=params)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [param["name"] for param in response.json()["invalid-params"]]


@pytest.mark.asyncio
async def test_without_its_database_the_api_answers_503_fast_with_retry_after() -> None:
    unreachable = f"postgresql://pedidos:pedidos@127.0.0.1:{free_port()}/pedidos"
    kit = wiring.build_kit(settings_for(unreachable, DATABASE_CONNECT_TIMEOUT_S="1"), process="api")

    async with AsyncTestClient(app=wiring.build_app(kit)) as test_client:
        response = await test_client.post("/pedidos", json=pedido(unique("p")))
        ready = await test_client.get("/health/ready")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False


@pytest.mark.asyncio
async def test_readiness_reports_a_database_behind_on_migrations(
    fresh_database: Callable[..., str],
) -> None:
    unmigrated = fresh_database("pedidos", migrated=False)
    kit = wiring.build_kit(settings_for(unmigrated), process="api")

    async with AsyncTestClient(app=wiring.build_app(kit)) as test_client:
        ready = await test_client.get("/health/ready")
        live = await test_client.get("/health/live")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert "code expects 0001" in ready.json()["checks"]["migrations"]["error"]


@pytest.mark.asyncio
async def test_metrics_and_the_openapi_document_are_served(client: Client) -> None:
    await client.post("/pedidos", json=pedido(unique("p")))

    metrics = await client.get("/metrics")
    openapi = await client.get("/schema/openapi.json")
    swagger = await client.get("/schema/swagger")

    assert 'datasync_http_requests_total{method="POST",route="/pedidos",status="201"}' in (
        metrics.text
    )
    assert metrics.headers["content-type"].count("charset") == 1
    post = openapi.json()["paths"]["/pedidos"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"id", "cliente-id", "valor"}
    assert swagger.status_code == 200
