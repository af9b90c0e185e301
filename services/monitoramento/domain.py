"""How the parts' health adds up to the system's status. Standard library only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ProcessHealth:
    """What one process of a service said about itself."""

    name: str
    live: bool
    ready: bool
    checks: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    partitions: Sequence[PartitionLag]
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(partition.lag for partition in self.partitions)


def degraded_parts(
    *,
    services: Mapping[str, Sequence[ProcessHealth]],
    kafka_ok: bool,
    databases: Mapping[str, bool],
    lags: Sequence[GroupLag],
    outbox_oldest_age_s: Mapping[str, float],
    max_outbox_age_s: float,
) -> list[str]:
    """Names every part that is not healthy, so a degraded status never hides its cause."""
    degraded: list[str] = []
    for service, processes in services.items():
        for process in processes:
            if not process.live:
                degraded.append(f"{service}/{process.name}: not live")
            elif not process.ready:
                degraded.append(f"{service}/{process.name}: not ready")
    if not kafka_ok:
        degraded.append("kafka: unreachable")
    for name, ok in databases.items():
        if not ok:
            degraded.append(f"database {name}: unreachable")
    degraded.extend(f"consumer group {group.group}: {group.error}" for group in lags if group.error)
    for service, age_s in outbox_oldest_age_s.items():
        if age_s > max_outbox_age_s:
            degraded.append(f"{service} outbox: oldest row waiting {age_s:.0f} s")
    return degraded
