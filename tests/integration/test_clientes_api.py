"""The clientes REST API against a real PostgreSQL: CRUD, events and bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from clientes import wiring
from tests.conftest import settings_for, unique

pytestmark = pytest.mark.integration

Client = AsyncTestClient[Any]


@pytest.fixture(scope="module")
def database_url(fresh_database: Callable[[str], str]) -> str:
    return fresh_database("clientes")


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    kit = wiring.build_kit(settings_for(database_url), process="api")
    async with AsyncTestClient(app=wiring.build_app(kit)) as test_client:
        yield test_client


async def events_of(database_url: str, cliente_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) of the outbox rows about one customer, oldest first."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "select headers, convert_from(payload, 'UTF8') as payload from outbox"
            " where topic = 'clientes' and key = $1 order by id",
            cliente_id,
        )
    finally:
        await connection.close()
    return [(dict(json.loads(r["headers"]))["ce_type"], json.loads(r["payload"])) for r in rows]


async def test_a_customer_is_created_read_updated_and_removed(
    client: Client, database_url: str
) -> None:
    cliente_id = unique("c")

    created = await client.post(
        "/clientes", json={"id": cliente_id, "nome": "Ana", "pais": "Brasil"}
    )
    read = await client.get(f"/clientes/{cliente_id}")
    updated = await client.put(
        f"/clientes/{cliente_id}", json={"nome": "Ana Lima", "pais": "Portugal"}
    )
    removed = await client.delete(f"/clientes/{cliente_id}")
    gone = await client.get(f"/clientes/{cliente_id}")

    assert created.status_code == 201
    assert read.json()["nome"] == "Ana"
    assert updated.json() == {**read.json(), "nome": "Ana Lima", "pais": "Portugal", "versao": 2}
    assert removed.status_code == 204
    assert gone.status_code == 404
    assert [
        (kind.rsplit(".", 1)[1], body["versao"])
        for kind, body in await events_of(database_url, cliente_id)
    ] == [
        ("ClienteRegistrado", 1),
        ("ClienteAtualizado", 2),
        ("ClienteRemovido", 3),
    ]


async def test_repeats_and_unchanged_updates_publish_nothing(
    client: Client, database_url: str
) -> None:
    cliente_id = unique("c")
    body = {"id": cliente_id, "nome": "Bruno", "cidade": "Recife"}
    await client.post("/clientes", json=body)

    again = await client.post("/clientes", json=body)
    unchanged = await client.put(
        f"/clientes/{cliente_id}", json={"nome": "Bruno", "cidade": "Recife"}
    )
    conflict = await client.post("/clientes", json={**body, "nome": "Outro"})

    assert again.status_code == 200
    assert unchanged.status_code == 200
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert [param["name"] for param in conflict.json()["invalid-params"]] == ["id"]
    assert len(await events_of(database_url, cliente_id)) == 1


async def test_a_removed_customer_created_again_continues_its_versions(client: Client) -> None:
    cliente_id = unique("c")
    await client.post("/clientes", json={"id": cliente_id, "nome": "Caio"})
    await client.delete(f"/clientes/{cliente_id}")

    recreated = await client.post("/clientes", json={"id": cliente_id, "nome": "Caio"})

    assert recreated.status_code == 201
    assert recreated.json()["versao"] == 3


async def test_customers_are_listed_page_by_page(client: Client) -> None:
    prefix = unique("list")
    for n in range(3):
        await client.post("/clientes", json={"id": f"{prefix}-{n}", "nome": f"N{n}"})

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/clientes", params=params)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page.get("next-cursor")
        if cursor is None:
            break

    assert [item for item in seen if item.startswith(prefix)] == [f"{prefix}-{n}" for n in range(3)]
    assert seen == sorted(seen)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"id": "x", "nome": "   "}, 422, "nome"),
        ({"id": "x"}, 422, "nome"),
        ({"id": "x", "nome": 5}, 422, "nome"),
        ({"id": "x y", "nome": "A"}, 422, "id"),
        ({"id": "x", "nome": "A", "email": "not-an-email"}, 422, "email"),
        ({"id": "x", "nome": "A" * 201}, 422, "nome"),
        ({"id": "x", "nome": "A", "telefone": "1"}, 422, "telefone"),
        ({"id": "x", "nome": "a\x00b"}, 422, "nome"),
        ({"id": "x", "nome": "A", "cidade": "\x00"}, 422, "cidade"),
        ({"id": "x", "nome": "A", "email": "a\x00@b.co"}, 422, "email"),
        ({"id": "x", "nome": "Ana\nMaria"}, 422, "nome"),
        ({"id": "x", "nome": "A", "pais": "Bra\tsil"}, 422, "pais"),
        ({"id": "x", "nome": "\u202egnaL"}, 422, "nome"),
        ({"id": "x", "nome": "A", "segmento": "x\u2066y"}, 422, "segmento"),
    ],
)
async def test_bad_customers_get_a_problem_naming_the_field(
    client: Client, database_url: str, body: dict[str, Any], status: int, field: str
) -> None:
    response = await client.post("/clientes", json=body)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [param["name"] for param in response.json()["invalid-params"]]
    assert await events_of(database_url, "x") == []


@pytest.mark.parametrize("cliente_id", ["nobody", "%00", ".."])
async def test_reading_updating_or_removing_an_unknown_customer_is_404(
    client: Client, cliente_id: str
) -> None:
    read = await client.get(f"/clientes/{cliente_id}")
    updated = await client.put(f"/clientes/{cliente_id}", json={"nome": "A"})
    removed = await client.delete(f"/clientes/{cliente_id}")

    assert (read.status_code, updated.status_code, removed.status_code) == (404, 404, 404)
