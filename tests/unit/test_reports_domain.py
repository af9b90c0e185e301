"""Unit tests of the reports figures and of how events turn into view changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import pytest

from datasync import events
from reports.domain import (
    MAX_PERIODO_DIAS,
    ClienteAtual,
    FatoPedido,
    InvalidQueryError,
    RelatorioCliente,
    validar_periodo,
)
from reports.service import registrar_evento

DATA = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
DIA = dt.date(2024, 3, 1)
VALOR = Decimal("440.00")


class FakeReportViews:
    """Records every call, in order, as (method name, argument)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, FatoPedido | ClienteAtual]] = []

    async def add_pedidos(self, fatos: Sequence[FatoPedido]) -> None:
        self.calls.extend(("add_pedido", fato) for fato in fatos)

    async def upsert_clientes(self, clientes: Sequence[ClienteAtual]) -> None:
        self.calls.extend(("upsert_cliente", cliente) for cliente in clientes)


def relatorio(*, pedidos: int, total: Decimal) -> RelatorioCliente:
    return RelatorioCliente(
        cliente_id="ALFKI",
        nome="Alfreds",
        pais="Germany",
        pedidos=pedidos,
        total=total,
        ultimo_pedido=DATA if pedidos else None,
    )


# --------------------------------------------------------------------------------------
# RelatorioCliente.ticket_medio
# --------------------------------------------------------------------------------------


def test_a_customer_without_orders_has_no_ticket_medio() -> None:
    sem_pedidos = relatorio(pedidos=0, total=Decimal("0.00"))

    assert sem_pedidos.ticket_medio is None


@pytest.mark.parametrize(
    ("pedidos", "total", "expected"),
    [
        (1, Decimal("440.00"), "440.00"),
        (2, Decimal("0.05"), "0.03"),
        (2, Decimal("0.01"), "0.01"),
        (2, Decimal("0.15"), "0.08"),
        (2, Decimal("2.25"), "1.13"),
        (3, Decimal("10.00"), "3.33"),
        (3, Decimal("20.00"), "6.67"),
        (4, Decimal(100), "25.00"),
    ],
)
def test_ticket_medio_is_the_average_rounded_half_up_to_the_cent(
    pedidos: int, total: Decimal, expected: str
) -> None:
    figures = relatorio(pedidos=pedidos, total=total)

    ticket = figures.ticket_medio

    assert str(ticket) == expected


def test_ticket_medio_of_a_large_total_stays_exact() -> None:
    figures = relatorio(pedidos=3, total=Decimal("2999999999999.99"))

    assert figures.ticket_medio == Decimal("1000000000000.00")


# --------------------------------------------------------------------------------------
# validar_periodo
# --------------------------------------------------------------------------------------


def test_a_period_of_one_day_is_valid() -> None:
    validar_periodo(DIA, DIA)


def test_the_longest_period_is_valid() -> None:
    ate = DIA + dt.timedelta(days=MAX_PERIODO_DIAS - 1)

    validar_periodo(DIA, ate)


def test_a_period_ending_on_the_last_day_of_the_calendar_is_rejected() -> None:
    with pytest.raises(InvalidQueryError, match=r"^ate: must be before 9999-12-31$"):
        validar_periodo(dt.date.max, dt.date.max)


def test_a_period_one_day_longer_than_the_longest_is_rejected() -> None:
    ate = DIA + dt.timedelta(days=MAX_PERIODO_DIAS)

    with pytest.raises(
        InvalidQueryError, match=r"^ate: the range may span at most 3660 days$"
    ) as caught:
        validar_periodo(DIA, ate)

    assert caught.value.field == "ate"


def test_a_period_that_ends_before_it_starts_is_rejected() -> None:
    with pytest.raises(InvalidQueryError, match=r"^de: must not be after ate$") as caught:
        validar_periodo(DIA, DIA - dt.timedelta(days=1))

    assert caught.value.field == "de"


# --------------------------------------------------------------------------------------
# registrar_evento
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_order_is_counted_without_segment() -> None:
    views = FakeReportViews()
    criado = events.PedidoCriado(id="10248", cliente_id="ALFKI", valor=VALOR, data=DATA)

    await registrar_evento(views, criado)

    assert views.calls == [
        (
            "add_pedido",
            FatoPedido(id="10248", cliente_id="ALFKI", valor=VALOR, data=DATA),
        )
    ]


@pytest.mark.asyncio
async def test_an_enriched_order_is_counted_with_its_customer_segment() -> None:
    views = FakeReportViews()
    enriquecido = events.PedidoEnriquecido(
        id="10248",
        cliente_id="ALFKI",
        valor=VALOR,
        data=DATA,
        cliente=events.ClienteDoPedido(nome="Alfreds", pais="Germany", segmento="varejo"),
    )

    await registrar_evento(views, enriquecido)

    assert views.calls == [
        (
            "add_pedido",
            FatoPedido(
                id="10248",
                cliente_id="ALFKI",
                valor=VALOR,
                data=DATA,
                segmento="varejo",
                enriquecido=True,
            ),
        )
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("event_type", [events.ClienteRegistrado, events.ClienteAtualizado])
async def test_a_customer_snapshot_becomes_its_current_state(
    event_type: type[events.ClienteRegistrado] | type[events.ClienteAtualizado],
) -> None:
    views = FakeReportViews()
    snapshot = event_type(
        id="ALFKI",
        nome="Alfreds",
        versao=2,
        email="maria@alfreds.de",
        cidade="Berlin",
        pais="Germany",
        segmento="varejo",
    )

    await registrar_evento(views, snapshot)

    assert views.calls == [
        (
            "upsert_cliente",
            ClienteAtual(
                id="ALFKI",
                nome="Alfreds",
                cidade="Berlin",
                pais="Germany",
                segmento="varejo",
                versao=2,
                removido=False,
            ),
        )
    ]


@pytest.mark.asyncio
async def test_a_removed_customer_is_no_longer_current() -> None:
    views = FakeReportViews()
    removido = events.ClienteRemovido(id="ALFKI", nome="Alfreds", versao=3, pais="Germany")

    await registrar_evento(views, removido)

    assert views.calls == [
        (
            "upsert_cliente",
            ClienteAtual(
                id="ALFKI",
                nome="Alfreds",
                cidade=None,
                pais="Germany",
                segmento=None,
                versao=3,
                removido=True,
            ),
        )
    ]
