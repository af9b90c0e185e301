"""What monitoramento needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from monitoramento.domain import GroupLag, ProcessHealth


class HealthProbe(Protocol):
    async def probe(self, name: str, base_url: str) -> ProcessHealth:
        """Asks one process for `/health/live` and `/health/ready`; never raises."""


class KafkaInspector(Protocol):
    async def reachable(self) -> bool: ...

    async def lag(self, group: str) -> GroupLag:
        """Committed offsets against end offsets of every partition the group consumes."""


class StatusHistory(Protocol):
    async def record(self, status: dict[str, Any]) -> None: ...

    async def latest(self, limit: int) -> Sequence[dict[str, Any]]: ...

    async def reachable(self) -> bool: ...
