"""The facts reports are built from and the figures they show. Standard library only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

CENT: Final = Decimal("0.01")
MAX_PERIODO_DIAS: Final = 3660
"""Longest range of `vendas-diarias`: ten years of days is a page a client can still use."""


class InvalidQueryError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FatoPedido:
    """An order as reports count it. `segmento` is the customer's segment when the order was
    enriched, None until then."""

    id: str
    cliente_id: str
    valor: Decimal
    data: dt.datetime
    segmento: str | None = None
    enriquecido: bool = False


@dataclass(frozen=True, slots=True)
class ClienteAtual:
    """The newest known state of a customer; a removed customer is no longer current."""

    id: str
    nome: str
    cidade: str | None
    pais: str | None
    segmento: str | None
    versao: int
    removido: bool


@dataclass(frozen=True, slots=True)
class Resumo:
    pedidos: int
    clientes: int
    total: Decimal


@dataclass(frozen=True, slots=True)
class RelatorioCliente:
    cliente_id: str
    nome: str | None
    pais: str | None
    pedidos: int
    total: Decimal
    ultimo_pedido: dt.datetime | None

    @property
    def ticket_medio(self) -> Decimal | None:
        """Average order value, rounded half-up to the cent; None without orders."""
        if self.pedidos == 0:
            return None
        return (self.total / self.pedidos).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Vendas:
    """Orders and their total within one group (a country, a segment or a day)."""

    grupo: str | dt.date | None
    pedidos: int
    total: Decimal


def validar_periodo(de: dt.date, ate: dt.date) -> None:
    """Raises InvalidQueryError unless `de` <= `ate` within `MAX_PERIODO_DIAS`."""
    if de > ate:
        raise InvalidQueryError("de", "must not be after ate")
    if (ate - de).days >= MAX_PERIODO_DIAS:
        raise InvalidQueryError("ate", f"the range may span at most {MAX_PERIODO_DIAS} days")
    if ate >= dt.date.max:
        # The query runs up to the day after `ate`, which the calendar must still have.
        raise InvalidQueryError("ate", f"must be before {dt.date.max.isoformat()}")
