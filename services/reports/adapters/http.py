"""REST adapter of reports (Litestar)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.params import FromPath, FromQuery, QueryParameter

from datasync.http import ProblemError, invalid, require_key
from datasync.money import format_money
from reports.domain import InvalidQueryError, RelatorioCliente, Vendas, validar_periodo
from reports.ports import ReportQueries


class ResumoOut(msgspec.Struct, kw_only=True, rename="kebab"):
    pedidos: int
    clientes: int
    total: str


class ClienteOut(msgspec.Struct, kw_only=True, rename="kebab"):
    cliente_id: str
    nome: str | None
    pais: str | None
    pedidos: int
    total: str
    ticket_medio: str | None
    ultimo_pedido: dt.datetime | None


class PaisOut(msgspec.Struct, kw_only=True, rename="kebab"):
    pais: str | None
    pedidos: int
    total: str


class SegmentoOut(msgspec.Struct, kw_only=True, rename="kebab"):
    segmento: str | None
    pedidos: int
    total: str


class DiaOut(msgspec.Struct, kw_only=True, rename="kebab"):
    dia: dt.date
    pedidos: int
    total: str


def _cliente_out(relatorio: RelatorioCliente) -> ClienteOut:
    ticket = relatorio.ticket_medio
    return ClienteOut(
        cliente_id=relatorio.cliente_id,
        nome=relatorio.nome,
        pais=relatorio.pais,
        pedidos=relatorio.pedidos,
        total=format_money(relatorio.total),
        ticket_medio=format_money(ticket) if ticket is not None else None,
        ultimo_pedido=relatorio.ultimo_pedido,
    )


def _date(value: dt.date | dt.datetime | str | None) -> dt.date | None:
    return value if isinstance(value, dt.date) or value is None else None


def report_handlers(queries: ReportQueries) -> list[Any]:
    @get("/reports/resumo", tags=["reports"], summary="Orders, customers with orders, total")
    async def resumo() -> ResumoOut:
        found = await queries.resumo()
        return ResumoOut(
            pedidos=found.pedidos, clientes=found.clientes, total=format_money(found.total)
        )

    @get("/reports/clientes/{cliente_id:str}", tags=["reports"], summary="One customer")
    async def cliente(cliente_id: FromPath[str]) -> ClienteOut:
        require_key(cliente_id, what="cliente")
        found = await queries.cliente(cliente_id)
        if found is None:
            raise ProblemError(
                404, "Not found", detail=f"no orders nor data for cliente {cliente_id}"
            )
        return _cliente_out(found)

    @get("/reports/top-clientes", tags=["reports"], summary="Customers with the highest total")
    async def top_clientes(
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 10,
    ) -> list[ClienteOut]:
        return [_cliente_out(found) for found in await queries.top_clientes(limit)]

    @get(
        "/reports/vendas-por-pais",
        tags=["reports"],
        summary="Sales per current country of the customer (null: not known yet)",
    )
    async def vendas_por_pais() -> list[PaisOut]:
        return [_pais(v) for v in await queries.vendas_por_pais()]

    @get(
        "/reports/vendas-por-segmento",
        tags=["reports"],
        summary="Sales per customer segment at the time of the order",
    )
    async def vendas_por_segmento() -> list[SegmentoOut]:
        return [
            SegmentoOut(
                segmento=str(v.grupo) if v.grupo is not None else None,
                pedidos=v.pedidos,
                total=format_money(v.total),
            )
            for v in await queries.vendas_por_segmento()
        ]

    @get(
        "/reports/vendas-diarias",
        tags=["reports"],
        summary="Sales per day of the order, in the configured time zone",
    )
    async def vendas_diarias(de: FromQuery[dt.date], ate: FromQuery[dt.date]) -> list[DiaOut]:
        try:
            validar_periodo(de, ate)
        except InvalidQueryError as error:
            raise invalid(error.field, error.reason, status=400) from error
        return [
            DiaOut(dia=_date(v.grupo) or de, pedidos=v.pedidos, total=format_money(v.total))
            for v in await queries.vendas_diarias(de, ate)
        ]

    return [resumo, cliente, top_clientes, vendas_por_pais, vendas_por_segmento, vendas_diarias]


def _pais(vendas: Vendas) -> PaisOut:
    return PaisOut(
        pais=str(vendas.grupo) if vendas.grupo is not None else None,
        pedidos=vendas.pedidos,
        total=format_money(vendas.total),
    )
