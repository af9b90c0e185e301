"""What the clientes application needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

from clientes.domain import Cliente, PedidoAEnriquecer
from datasync.events import Event


class ClienteRepository(Protocol):
    async def lock(self, cliente_id: str) -> None:
        """Serialises, until the transaction ends, every change that concerns this customer
        (its data and its waiting orders)."""

    async def lock_many(self, cliente_ids: Sequence[str]) -> None:
        """`lock` for several customers, in the order given."""

    async def get(self, cliente_id: str) -> Cliente | None:
        """The customer with this id, removed ones included."""

    async def get_many(self, cliente_ids: Sequence[str]) -> dict[str, Cliente]:
        """The customers with these ids that exist, removed ones included, by id."""

    async def save(self, cliente: Cliente) -> None:
        """Inserts or replaces the customer."""

    async def list_active(self, *, after_id: str | None, limit: int) -> list[Cliente]:
        """Customers not removed, sorted by id, after `after_id`."""


class PendingPedidos(Protocol):
    async def keep(self, pedido: PedidoAEnriquecer) -> None:
        """Keeps an order until its customer exists (a second keep of the same id is a no-op)."""

    async def keep_many(self, pedidos: Sequence[PedidoAEnriquecer]) -> None:
        """`keep` for several orders."""

    async def take_all(self, cliente_id: str) -> list[PedidoAEnriquecer]:
        """Removes and returns the orders waiting for this customer."""


class EventOutbox(Protocol):
    async def append(self, *, topic: str, key: str, payload: Event) -> None: ...

    async def append_many(self, *, topic: str, keyed: Sequence[tuple[str, Event]]) -> None:
        """Queues events, each with its key, in the order given."""


class UnitOfWork(Protocol):
    @property
    def clientes(self) -> ClienteRepository: ...

    @property
    def pendentes(self) -> PendingPedidos: ...

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
