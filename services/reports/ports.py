"""What the reports application needs from the outside world, as Protocols."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from reports.domain import ClienteAtual, FatoPedido, RelatorioCliente, Resumo, Vendas


class ReportViews(Protocol):
    """The views, written by the consumer inside its transaction."""

    async def add_pedidos(self, fatos: Sequence[FatoPedido]) -> None:
        """Counts each order once. Seeing one again, enriched or not, never counts it twice;
        an enriched copy only fills in the segment."""

    async def upsert_clientes(self, clientes: Sequence[ClienteAtual]) -> None:
        """Keeps, for each customer, the state with the highest version."""


class ReportQueries(Protocol):
    async def resumo(self) -> Resumo: ...

    async def cliente(self, cliente_id: str) -> RelatorioCliente | None: ...

    async def top_clientes(self, limit: int) -> list[RelatorioCliente]: ...

    async def vendas_por_pais(self) -> list[Vendas]: ...

    async def vendas_por_segmento(self) -> list[Vendas]: ...

    async def vendas_diarias(self, de: dt.date, ate: dt.date) -> list[Vendas]: ...
