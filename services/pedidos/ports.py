"""What the application needs from the outside world, as Protocols."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from datasync.events import Event
from pedidos.domain import Pedido


class PedidoRepository(Protocol):
    async def get(self, pedido_id: str) -> Pedido | None:
        """The accepted order with this id, if any."""

    async def add(self, pedido: Pedido) -> bool:
        """Stores a new order. Returns False, writing nothing, if the id is already taken."""

    async def list_by_cliente(
        self, cliente_id: str | None, *, after_id: str | None, limit: int
    ) -> list[Pedido]:
        """Orders sorted by id, optionally of one customer, after `after_id`."""


class EventOutbox(Protocol):
    async def append(self, *, topic: str, key: str, payload: Event) -> None:
        """Queues an event to be published once the unit of work commits."""


class UnitOfWork(Protocol):
    """One database transaction. Leaving the block without `commit` rolls it back."""

    @property
    def pedidos(self) -> PedidoRepository: ...

    @property
    def outbox(self) -> EventOutbox: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
