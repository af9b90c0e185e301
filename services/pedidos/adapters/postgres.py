"""PostgreSQL adapters of the pedidos service.

Reads go through SQLAlchemy Core. The write of `POST /pedidos`, the one path whose speed
bounds the service, is plain SQL on asyncpg (prepared once per connection by asyncpg's
statement cache) behind a group commit: concurrent orders share one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from datasync import events
from datasync.group_commit import GroupCommit
from datasync.outbox import header_rows, outbox_table
from datasync.uow import SqlUnitOfWork
from pedidos.domain import Pedido

metadata = sa.MetaData()

pedidos = sa.Table(
    "pedidos",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("cliente_id", sa.Text, nullable=False),
    sa.Column("valor", sa.Numeric(14, 2), nullable=False),
    sa.Column("data", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "criado_em", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("pedidos_cliente_id_id", "cliente_id", "id"),
)
outbox = outbox_table(metadata)

SOURCE = "/datasync/pedidos"


def _to_pedido(row: Any) -> Pedido:
    mapping = row._mapping
    return Pedido(
        id=mapping["id"],
        cliente_id=mapping["cliente_id"],
        valor=mapping["valor"],
        data=mapping["data"],
    )


class PostgresPedidoRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, pedido_id: str) -> Pedido | None:
        row = (
            await self._connection.execute(
                sa.select(
                    pedidos.c.id, pedidos.c.cliente_id, pedidos.c.valor, pedidos.c.data
                ).where(pedidos.c.id == pedido_id)
            )
        ).first()
        return _to_pedido(row) if row else None

    async def list_by_cliente(
        self, cliente_id: str | None, *, after_id: str | None, limit: int
    ) -> list[Pedido]:
        query = sa.select(
            pedidos.c.id, pedidos.c.cliente_id, pedidos.c.valor, pedidos.c.data
        ).order_by(pedidos.c.id)
        if cliente_id is not None:
            query = query.where(pedidos.c.cliente_id == cliente_id)
        if after_id is not None:
            query = query.where(pedidos.c.id > after_id)
        rows = (await self._connection.execute(query.limit(limit))).all()
        return [_to_pedido(row) for row in rows]


class PostgresUnitOfWork(SqlUnitOfWork):
    pedidos: PostgresPedidoRepository

    def _bind(self, connection: AsyncConnection) -> None:
        self.pedidos = PostgresPedidoRepository(connection)


@dataclass(frozen=True, slots=True)
class NovoPedido:
    """One order waiting for a group commit, with its outbox row already encoded."""

    pedido: Pedido
    event_id: str
    topic: str
    key: str
    headers: str
    payload: bytes


# The orders whose ids are free are inserted; the outbox rows of exactly those follow, in
# the order the requests arrived, so the relay publishes them in that order.
INSERT_NEW = """
with novos as (
    insert into pedidos (id, cliente_id, valor, data)
    select * from unnest($1::text[], $2::text[], $3::numeric[], $4::timestamptz[])
    on conflict (id) do nothing
    returning id
), eventos as (
    insert into outbox (event_id, topic, key, headers, payload)
    select e.event_id, e.topic, e.key, e.headers, e.payload
    from unnest($1::text[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[], $9::bytea[])
        with ordinality as e(pedido_id, event_id, topic, key, headers, payload, position)
    join novos on novos.id = e.pedido_id
    order by e.position
)
select id from novos
"""

SELECT_STORED = "select id, cliente_id, valor, data from pedidos where id = any($1::text[])"


async def write_new_pedidos(
    connection: asyncpg.Connection, batch: Sequence[NovoPedido]
) -> list[Pedido | None]:
    """Writes a batch in one statement, atomic without a transaction of its own: None for
    each order stored, the stored order for each whose id was taken (before, or by an
    earlier item of the same batch).

    The orders of taken ids are read after that statement committed: a conflicting row of a
    concurrent transaction makes the insert wait for that transaction, so a row that
    caused a conflict is committed and visible by then."""
    first_with_id: dict[str, NovoPedido] = {}
    for novo in batch:
        first_with_id.setdefault(novo.pedido.id, novo)
    firsts = list(first_with_id.values())

    rows = await connection.fetch(
        INSERT_NEW,
        [novo.pedido.id for novo in firsts],
        [novo.pedido.cliente_id for novo in firsts],
        [novo.pedido.valor for novo in firsts],
        [novo.pedido.data for novo in firsts],
        [novo.event_id for novo in firsts],
        [novo.topic for novo in firsts],
        [novo.key for novo in firsts],
        [novo.headers for novo in firsts],
        [novo.payload for novo in firsts],
    )
    created = {row["id"] for row in rows}

    def stored_now(novo: NovoPedido) -> bool:
        return novo.pedido.id in created and first_with_id[novo.pedido.id] is novo

    taken = list({novo.pedido.id for novo in batch if not stored_now(novo)})
    stored: dict[str, Pedido] = {}
    if taken:
        for row in await connection.fetch(SELECT_STORED, taken):
            stored[row["id"]] = Pedido(
                id=row["id"], cliente_id=row["cliente_id"], valor=row["valor"], data=row["data"]
            )
    return [None if stored_now(novo) else stored[novo.pedido.id] for novo in batch]


class GroupCommitPedidoIntake:
    """`PedidoIntake` over a shared group commit, for the requests of one request id."""

    def __init__(
        self, writer: GroupCommit[NovoPedido, Pedido | None], *, request_id: str | None
    ) -> None:
        self._writer = writer
        self._request_id = request_id

    async def add_new(
        self, pedido: Pedido, *, topic: str, key: str, event: events.Event
    ) -> Pedido | None:
        envelope = events.new_envelope(
            event, source=SOURCE, subject=key, request_id=self._request_id
        )
        return await self._writer.submit(
            NovoPedido(
                pedido=pedido,
                event_id=envelope.id,
                topic=topic,
                key=key,
                headers=msgspec.json.encode(header_rows(envelope)).decode(),
                payload=events.encode_payload(event),
            )
        )
