"""PostgreSQL adapters of the pedidos service (SQLAlchemy Core over asyncpg)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from datasync.outbox import outbox_table
from datasync.uow import SqlOutbox, SqlUnitOfWork
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

    async def add(self, pedido: Pedido) -> bool:
        result = await self._connection.execute(
            insert(pedidos)
            .values(
                id=pedido.id, cliente_id=pedido.cliente_id, valor=pedido.valor, data=pedido.data
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return result.rowcount == 1

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
    outbox: SqlOutbox

    def __init__(self, engine: AsyncEngine, *, request_id: str | None = None) -> None:
        super().__init__(engine)
        self._request_id = request_id

    def _bind(self, connection: AsyncConnection) -> None:
        self.pedidos = PostgresPedidoRepository(connection)
        self.outbox = SqlOutbox(connection, outbox, source=SOURCE, request_id=self._request_id)
