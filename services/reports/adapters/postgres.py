"""PostgreSQL adapters of reports: the views and the queries over them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from datasync.consumer import processed_events_table
from reports.domain import ClienteAtual, FatoPedido, RelatorioCliente, Resumo, Vendas

metadata = sa.MetaData()

pedidos = sa.Table(
    "pedidos",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("cliente_id", sa.Text, nullable=False),
    sa.Column("valor", sa.Numeric(14, 2), nullable=False),
    sa.Column("data", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("segmento", sa.Text),
    sa.Column("enriquecido", sa.Boolean, nullable=False, server_default=sa.false()),
)
# One row per customer with orders, kept up to date as orders arrive, so the summary and the
# rankings read one small table instead of aggregating every order on each request.
totais_por_cliente = sa.Table(
    "totais_por_cliente",
    metadata,
    sa.Column("cliente_id", sa.Text, primary_key=True),
    sa.Column("pedidos", sa.Integer, nullable=False),
    sa.Column("total", sa.Numeric(18, 2), nullable=False),
    sa.Column("ultimo_pedido", sa.DateTime(timezone=True), nullable=False),
)
clientes = sa.Table(
    "clientes",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("nome", sa.Text, nullable=False),
    sa.Column("cidade", sa.Text),
    sa.Column("pais", sa.Text),
    sa.Column("segmento", sa.Text),
    sa.Column("versao", sa.Integer, nullable=False),
    sa.Column("removido", sa.Boolean, nullable=False),
)
processed_events = processed_events_table(metadata)


# Set-based writes: a batch of orders is one insert and one upsert of per-customer totals,
# whatever its size, instead of two statements per order.
_INSERT_FACTS = sa.text(
    """
    insert into pedidos as p (id, cliente_id, valor, data, segmento, enriquecido)
    select * from unnest(
        cast(:ids as text[]), cast(:clientes as text[]), cast(:valores as numeric[]),
        cast(:datas as timestamptz[]), cast(:segmentos as text[]), cast(:enriquecidos as boolean[])
    )
    on conflict (id) do update
        set segmento = excluded.segmento, enriquecido = true
        where excluded.enriquecido and not p.enriquecido
    returning p.cliente_id, p.valor, p.data, (p.xmax = 0) as inserted
    """
)
_ADD_TOTALS = sa.text(
    """
    insert into totais_por_cliente as t (cliente_id, pedidos, total, ultimo_pedido)
    select * from unnest(
        cast(:clientes as text[]), cast(:pedidos as integer[]), cast(:totais as numeric[]),
        cast(:ultimos as timestamptz[])
    )
    on conflict (cliente_id) do update
        set pedidos = t.pedidos + excluded.pedidos,
            total = t.total + excluded.total,
            ultimo_pedido = greatest(t.ultimo_pedido, excluded.ultimo_pedido)
    """
)
_UPSERT_CLIENTES = sa.text(
    """
    insert into clientes as c (id, nome, cidade, pais, segmento, versao, removido)
    select * from unnest(
        cast(:ids as text[]), cast(:nomes as text[]), cast(:cidades as text[]),
        cast(:paises as text[]), cast(:segmentos as text[]), cast(:versoes as integer[]),
        cast(:removidos as boolean[])
    )
    on conflict (id) do update
        set nome = excluded.nome, cidade = excluded.cidade, pais = excluded.pais,
            segmento = excluded.segmento, versao = excluded.versao, removido = excluded.removido
        -- An older version arriving late (a replay, a redelivery) changes nothing.
        where c.versao < excluded.versao
    """
)


class PostgresReportViews:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_pedidos(self, fatos: Sequence[FatoPedido]) -> None:
        # One statement may not touch a row twice: keep one fact per order, the enriched
        # copy when both are in the batch, since it carries everything the other does.
        unique: dict[str, FatoPedido] = {}
        for fato in fatos:
            if fato.id not in unique or fato.enriquecido:
                unique[fato.id] = fato
        rows = list(unique.values())
        result = await self._connection.execute(
            _INSERT_FACTS,
            {
                "ids": [f.id for f in rows],
                "clientes": [f.cliente_id for f in rows],
                "valores": [f.valor for f in rows],
                "datas": [f.data for f in rows],
                "segmentos": [f.segmento for f in rows],
                "enriquecidos": [f.enriquecido for f in rows],
            },
        )

        totals: dict[str, tuple[int, Decimal, dt.datetime]] = {}
        for cliente_id, valor, data, inserted in result:
            if not inserted:
                continue
            count, total, latest = totals.get(cliente_id, (0, Decimal(0), data))
            totals[cliente_id] = (count + 1, total + valor, max(latest, data))
        if not totals:
            return
        await self._connection.execute(
            _ADD_TOTALS,
            {
                "clientes": list(totals),
                "pedidos": [count for count, _, _ in totals.values()],
                "totais": [total for _, total, _ in totals.values()],
                "ultimos": [latest for _, _, latest in totals.values()],
            },
        )

    async def upsert_clientes(self, clientes: Sequence[ClienteAtual]) -> None:
        newest: dict[str, ClienteAtual] = {}
        for cliente in clientes:
            if cliente.id not in newest or cliente.versao > newest[cliente.id].versao:
                newest[cliente.id] = cliente
        rows = list(newest.values())
        await self._connection.execute(
            _UPSERT_CLIENTES,
            {
                "ids": [c.id for c in rows],
                "nomes": [c.nome for c in rows],
                "cidades": [c.cidade for c in rows],
                "paises": [c.pais for c in rows],
                "segmentos": [c.segmento for c in rows],
                "versoes": [c.versao for c in rows],
                "removidos": [c.removido for c in rows],
            },
        )


def _current(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A customer column, or NULL when the customer is unknown or removed."""
    return sa.case((clientes.c.removido.is_(False), column), else_=None)


class PostgresReportQueries:
    def __init__(self, engine: AsyncEngine, *, timezone: str) -> None:
        self._engine = engine
        self._timezone = timezone

    async def _all(self, query: sa.Executable) -> list[Any]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).all())

    async def resumo(self) -> Resumo:
        rows = await self._all(
            sa.select(
                sa.func.coalesce(sa.func.sum(totais_por_cliente.c.pedidos), 0),
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(totais_por_cliente.c.total), Decimal(0)),
            )
        )
        pedidos_count, clientes_count, total = rows[0]
        return Resumo(pedidos=int(pedidos_count), clientes=int(clientes_count), total=total)

    def _por_cliente(self) -> Any:
        return sa.select(
            totais_por_cliente.c.cliente_id,
            _current(clientes.c.nome),
            _current(clientes.c.pais),
            totais_por_cliente.c.pedidos,
            totais_por_cliente.c.total,
            totais_por_cliente.c.ultimo_pedido,
        ).select_from(
            totais_por_cliente.outerjoin(clientes, clientes.c.id == totais_por_cliente.c.cliente_id)
        )

    async def cliente(self, cliente_id: str) -> RelatorioCliente | None:
        rows = await self._all(
            self._por_cliente().where(totais_por_cliente.c.cliente_id == cliente_id)
        )
        if rows:
            return _relatorio(rows[0])

        # A known customer without orders still has a (zero) report.
        known = await self._all(
            sa.select(clientes.c.id, clientes.c.nome, clientes.c.pais).where(
                clientes.c.id == cliente_id, clientes.c.removido.is_(False)
            )
        )
        if not known:
            return None
        return RelatorioCliente(
            cliente_id=cliente_id,
            nome=known[0].nome,
            pais=known[0].pais,
            pedidos=0,
            total=Decimal("0.00"),
            ultimo_pedido=None,
        )

    async def top_clientes(self, limit: int) -> list[RelatorioCliente]:
        rows = await self._all(
            self._por_cliente()
            .order_by(totais_por_cliente.c.total.desc(), totais_por_cliente.c.cliente_id)
            .limit(limit)
        )
        return [_relatorio(row) for row in rows]

    async def vendas_por_pais(self) -> list[Vendas]:
        pais = _current(clientes.c.pais).label("pais")
        total = sa.func.sum(totais_por_cliente.c.total).label("total")
        rows = await self._all(
            sa.select(pais, sa.func.sum(totais_por_cliente.c.pedidos), total)
            .select_from(
                totais_por_cliente.outerjoin(
                    clientes, clientes.c.id == totais_por_cliente.c.cliente_id
                )
            )
            .group_by(pais)
            .order_by(total.desc(), pais)
        )
        return [Vendas(grupo=row[0], pedidos=int(row[1]), total=row[2]) for row in rows]

    async def vendas_por_segmento(self) -> list[Vendas]:
        total = sa.func.sum(pedidos.c.valor).label("total")
        rows = await self._all(
            sa.select(pedidos.c.segmento, sa.func.count(), total)
            .group_by(pedidos.c.segmento)
            .order_by(total.desc(), pedidos.c.segmento)
        )
        return [Vendas(grupo=row[0], pedidos=int(row[1]), total=row[2]) for row in rows]

    async def vendas_diarias(self, de: dt.date, ate: dt.date) -> list[Vendas]:
        local_day = sa.cast(sa.func.timezone(self._timezone, pedidos.c.data), sa.Date).label("dia")
        rows = await self._all(
            sa.select(local_day, sa.func.count(), sa.func.sum(pedidos.c.valor))
            .where(
                pedidos.c.data >= sa.func.timezone(self._timezone, sa.cast(de, sa.DateTime)),
                pedidos.c.data
                < sa.func.timezone(
                    self._timezone, sa.cast(ate + dt.timedelta(days=1), sa.DateTime)
                ),
            )
            .group_by(local_day)
            .order_by(local_day)
        )
        return [Vendas(grupo=row[0], pedidos=int(row[1]), total=row[2]) for row in rows]


def _relatorio(row: Any) -> RelatorioCliente:
    cliente_id, nome, pais, pedidos_count, total, ultimo = row
    return RelatorioCliente(
        cliente_id=cliente_id,
        nome=nome,
        pais=pais,
        pedidos=int(pedidos_count),
        total=total,
        ultimo_pedido=ultimo,
    )
