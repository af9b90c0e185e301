"""What the application needs from the outside world, as Protocols."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from datasync.events import Event
from pedidos.domain import Pedido


class PedidoRepository(Protocol):
    async def get(self, pedido_id: str) -> Pedido | None:
        """The accepted order with this id, if any."""

    async def list_by_cliente(
        self, cliente_id: str | None, *, after_id: str | None, limit: int
    ) -> list[Pedido]:
        """Orders sorted by id, optionally of one customer, after `after_id`."""


class PedidoIntake(Protocol):
    """The write side of accepting orders: one durable commit per order and its event."""

    async def add_new(self, pedido: Pedido, *, topic: str, key: str, event: Event) -> Pedido | None:
        """Stores a new order and queues its event in the same commit, returning once both
        are durable.

        Returns:
            None when the order was stored now; the order already stored under its id, with
            nothing written, when the id was taken.
        """


class UnitOfWork(Protocol):
    """One database transaction for reading orders."""

    @property
    def pedidos(self) -> PedidoRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
