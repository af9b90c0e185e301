"""Assembling the system's status from its parts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitoramento.domain import GroupLag, ProcessHealth, degraded_parts
from monitoramento.ports import HealthProbe, KafkaInspector, StatusHistory


@dataclass(frozen=True, kw_only=True)
class Targets:
    """What to watch: the processes of each service by name, and the consumer groups."""

    processes: Mapping[str, Mapping[str, str]]
    consumer_groups: Sequence[str]
    max_outbox_age_s: float


async def system_status(
    targets: Targets,
    *,
    health: HealthProbe,
    kafka: KafkaInspector,
    history: StatusHistory,
) -> dict[str, Any]:
    """The status document of `GET /status`: every part, and the degraded ones named."""
    probes = [
        (service, health.probe(process, url))
        for service, processes in targets.processes.items()
        for process, url in processes.items()
    ]
    results = await asyncio.gather(*(probe for _, probe in probes))
    services: dict[str, list[ProcessHealth]] = {}
    for (service, _), result in zip(probes, results, strict=True):
        services.setdefault(service, []).append(result)
    kafka_ok, own_database_ok, lags = await asyncio.gather(
        kafka.reachable(),
        history.reachable(),
        asyncio.gather(*(kafka.lag(group) for group in targets.consumer_groups)),
    )
    databases = {"monitoramento": own_database_ok, **_databases(services)}
    backlog = _outbox_backlog(services)
    degraded = degraded_parts(
        services=services,
        kafka_ok=kafka_ok,
        databases=databases,
        lags=lags,
        outbox_oldest_age_s={name: item["oldest-age-s"] for name, item in backlog.items()},
        max_outbox_age_s=targets.max_outbox_age_s,
    )

    return {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "checked-at": dt.datetime.now(dt.UTC).isoformat(),
        "services": {
            service: {
                process.name: {
                    "live": process.live,
                    "ready": process.ready,
                    **({"error": process.error} if process.error else {}),
                    **({"checks": process.checks} if process.checks else {}),
                }
                for process in processes
            }
            for service, processes in services.items()
        },
        "kafka": {"reachable": kafka_ok},
        "databases": {name: {"reachable": ok} for name, ok in databases.items()},
        "consumer-lag": {group.group: _lag_document(group) for group in lags},
        "outbox-backlog": backlog,
    }


def _databases(services: Mapping[str, Sequence[ProcessHealth]]) -> dict[str, bool]:
    """A service's database counts as reachable if any of its processes reached it."""
    found: dict[str, bool] = {}
    for service, processes in services.items():
        answers = [
            bool(process.checks["database"].get("ok"))
            for process in processes
            if isinstance(process.checks.get("database"), dict)
        ]
        if answers:
            found[service] = any(answers)
        elif processes:
            found[service] = False
    return found


def _outbox_backlog(services: Mapping[str, Sequence[ProcessHealth]]) -> dict[str, Any]:
    backlog: dict[str, Any] = {}
    for service, processes in services.items():
        for process in processes:
            outbox = process.checks.get("outbox")
            if isinstance(outbox, dict) and outbox.get("ok"):
                backlog[service] = {
                    "pending": outbox.get("pending", 0),
                    "oldest-age-s": outbox.get("oldest-age-s", 0.0),
                }
                break
    return backlog


def _lag_document(group: GroupLag) -> dict[str, Any]:
    document: dict[str, Any] = {
        "total": group.total,
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "end": p.end,
                "lag": p.lag,
            }
            for p in group.partitions
        ],
    }
    if group.error:
        document["error"] = group.error
    return document
