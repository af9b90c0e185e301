"""PostgreSQL adapters of the clientes service (SQLAlchemy Core over asyncpg)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from clientes.domain import Cliente, DadosCliente, PedidoAEnriquecer
from datasync.consumer import processed_events_table
from datasync.events import Event
from datasync.outbox import outbox_table
from datasync.uow import SqlOutbox, SqlUnitOfWork

metadata = sa.MetaData()

clientes = sa.Table(
    "clientes",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("nome", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("cidade", sa.Text),
    sa.Column("pais", sa.Text),
    sa.Column("segmento", sa.Text),
    sa.Column("versao", sa.Integer, nullable=False),
    sa.Column("removido", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "atualizado_em", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
pedidos_pendentes = sa.Table(
    "pedidos_pendentes",
    metadata,
    sa.Column("pedido_id", sa.Text, primary_key=True),
    sa.Column("cliente_id", sa.Text, nullable=False, index=True),
    sa.Column("valor", sa.Numeric(14, 2), nullable=False),
    sa.Column("data", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "recebido_em", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)

SOURCE = "/datasync/clientes"


def _to_cliente(row: Any) -> Cliente:
    return Cliente(
        id=row.id,
        dados=DadosCliente(
            nome=row.nome,
            email=row.email,
            cidade=row.cidade,
            pais=row.pais,
            segmento=row.segmento,
        ),
        versao=row.versao,
        removido=row.removido,
    )


class PostgresClienteRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def lock(self, cliente_id: str) -> None:
        await self._connection.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(cliente_id, 0)))
        )

    async def lock_many(self, cliente_ids: Sequence[str]) -> None:
        if not cliente_ids:
            return
        # One statement; `with ordinality` keeps the caller's order, which prevents deadlocks.
        await self._connection.execute(
            sa.text(
                "select pg_advisory_xact_lock(hashtextextended(id, 0))"
                " from unnest(cast(:ids as text[])) with ordinality as locked(id, position)"
                " order by position"
            ),
            {"ids": list(cliente_ids)},
        )

    async def get_many(self, cliente_ids: Sequence[str]) -> dict[str, Cliente]:
        rows = (
            await self._connection.execute(
                sa.select(clientes).where(clientes.c.id.in_(list(cliente_ids)))
            )
        ).all()
        return {row.id: _to_cliente(row) for row in rows}

    async def get(self, cliente_id: str) -> Cliente | None:
        row = (
            await self._connection.execute(sa.select(clientes).where(clientes.c.id == cliente_id))
        ).first()
        return _to_cliente(row) if row else None

    async def save(self, cliente: Cliente) -> None:
        values = {
            "id": cliente.id,
            "nome": cliente.dados.nome,
            "email": cliente.dados.email,
            "cidade": cliente.dados.cidade,
            "pais": cliente.dados.pais,
            "segmento": cliente.dados.segmento,
            "versao": cliente.versao,
            "removido": cliente.removido,
        }
        statement = insert(clientes).values(values)
        await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    **{k: statement.excluded[k] for k in values if k != "id"},
                    "atualizado_em": sa.func.now(),
                },
            )
        )

    async def list_active(self, *, after_id: str | None, limit: int) -> list[Cliente]:
        query = sa.select(clientes).where(~clientes.c.removido).order_by(clientes.c.id)
        if after_id is not None:
            query = query.where(clientes.c.id > after_id)
        rows = (await self._connection.execute(query.limit(limit))).all()
        return [_to_cliente(row) for row in rows]


class PostgresPendingPedidos:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def keep(self, pedido: PedidoAEnriquecer) -> None:
        await self._connection.execute(
            insert(pedidos_pendentes)
            .values(
                pedido_id=pedido.id,
                cliente_id=pedido.cliente_id,
                valor=pedido.valor,
                data=pedido.data,
            )
            .on_conflict_do_nothing(index_elements=["pedido_id"])
        )

    async def keep_many(self, pedidos: Sequence[PedidoAEnriquecer]) -> None:
        await self._connection.execute(
            insert(pedidos_pendentes)
            .values(
                [
                    {
                        "pedido_id": pedido.id,
                        "cliente_id": pedido.cliente_id,
                        "valor": pedido.valor,
                        "data": pedido.data,
                    }
                    for pedido in pedidos
                ]
            )
            .on_conflict_do_nothing(index_elements=["pedido_id"])
        )

    async def take_all(self, cliente_id: str) -> list[PedidoAEnriquecer]:
        rows = (
            await self._connection.execute(
                sa.delete(pedidos_pendentes)
                .where(pedidos_pendentes.c.cliente_id == cliente_id)
                .returning(
                    pedidos_pendentes.c.pedido_id,
                    pedidos_pendentes.c.cliente_id,
                    pedidos_pendentes.c.valor,
                    pedidos_pendentes.c.data,
                )
            )
        ).all()
        found = [
            PedidoAEnriquecer(id=row[0], cliente_id=row[1], valor=row[2], data=row[3])
            for row in rows
        ]
        return sorted(found, key=lambda pedido: (pedido.data, pedido.id))


class PostgresUnitOfWork(SqlUnitOfWork):
    clientes: PostgresClienteRepository
    pendentes: PostgresPendingPedidos
    outbox: SqlOutbox

    def __init__(
        self,
        engine: AsyncEngine | None,
        *,
        request_id: str | None = None,
        request_id_of: Callable[[Event], str | None] | None = None,
        joined: AsyncConnection | None = None,
    ) -> None:
        super().__init__(engine, joined=joined)
        self._request_id = request_id
        self._request_id_of = request_id_of

    def _bind(self, connection: AsyncConnection) -> None:
        self.clientes = PostgresClienteRepository(connection)
        self.pendentes = PostgresPendingPedidos(connection)
        self.outbox = SqlOutbox(
            connection,
            outbox,
            source=SOURCE,
            request_id=self._request_id,
            request_id_of=self._request_id_of,
        )
