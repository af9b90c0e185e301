"""The composition root of monitoramento."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import structlog
from litestar import Litestar
from prometheus_client import Gauge

from datasync.bootstrap import ServiceKit, ServiceSettings
from datasync.http import create_app
from datasync.runtime import Worker, serve
from datasync.settings import SettingsError, SettingsGroup, read_environment, read_group
from monitoramento.adapters.http import status_handlers
from monitoramento.adapters.postgres import PostgresStatusHistory
from monitoramento.adapters.probes import AioKafkaInspector, HttpHealthProbe
from monitoramento.service import Targets, system_status

SERVICE = "monitoramento"
DEFAULT_PORT = 3003
MIGRATIONS = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)

SYSTEM_OK = Gauge("datasync_system_ok", "1 when GET /status finds every part healthy.")
PROCESS_READY = Gauge(
    "datasync_process_ready", "1 when a process answers ready.", ["service", "process"]
)
GROUP_LAG = Gauge(
    "datasync_consumer_group_lag_records", "Records not yet consumed by a group.", ["group"]
)
OUTBOX_PENDING = Gauge(
    "datasync_service_outbox_pending_rows", "Outbox rows waiting, per service.", ["service"]
)
OUTBOX_AGE = Gauge(
    "datasync_service_outbox_oldest_age_seconds",
    "Age of the oldest outbox row waiting, per service.",
    ["service"],
)


class MonitorSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "MONITOR_"

    targets: str = (
        "pedidos/api=http://127.0.0.1:3000,pedidos/relay=http://127.0.0.1:3100,"
        "clientes/api=http://127.0.0.1:3001,clientes/relay=http://127.0.0.1:3101,"
        "clientes/consumer=http://127.0.0.1:3111,"
        "reports/api=http://127.0.0.1:3002,reports/consumer=http://127.0.0.1:3112"
    )
    """Comma-separated `service/process=base-url` of every process to watch. The default
    matches the ports of the local stack."""

    consumer_groups: str = "clientes-enriquecimento,reports-views"
    """Comma-separated consumer groups whose lag is reported."""

    max_outbox_age_s: float = 30.0
    """An outbox row older than this marks its service degraded: the relay is behind."""

    sample_interval_s: float = 15.0
    """How often a snapshot is stored in the history and the gauges are refreshed."""

    probe_timeout_s: float = 2.0
    """Timeout of one health request; a hung process shows as not live, not as a hang."""

    history_rows: int = 5760
    """Snapshots kept: one day at the default interval."""

    def parsed_targets(self) -> dict[str, dict[str, str]]:
        processes: dict[str, dict[str, str]] = {}
        for item in filter(None, (part.strip() for part in self.targets.split(","))):
            name, separator, url = item.partition("=")
            service, slash, process = name.partition("/")
            if not separator or not slash or not url.startswith(("http://", "https://")):
                raise SettingsError(
                    f"MONITOR_TARGETS item {item!r} is malformed: expected service/process=url"
                )
            processes.setdefault(service, {})[process] = url.rstrip("/")
        return processes


def build(kit: ServiceKit) -> tuple[Litestar, Worker]:
    monitor = read_group(MonitorSettings, read_environment(), kit.settings.app_env)
    targets = Targets(
        processes=monitor.parsed_targets(),
        consumer_groups=[g.strip() for g in monitor.consumer_groups.split(",") if g.strip()],
        max_outbox_age_s=monitor.max_outbox_age_s,
    )
    client = httpx.AsyncClient(timeout=monitor.probe_timeout_s)
    health = HttpHealthProbe(client)
    kafka = AioKafkaInspector(kit.settings.kafka)
    history = PostgresStatusHistory(kit.engine, retention_rows=monitor.history_rows)

    async def current_status() -> dict[str, Any]:
        document = await system_status(targets, health=health, kafka=kafka, history=history)
        _update_gauges(document)
        return document

    async def sampler(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await history.record(await current_status())
            except Exception as error:  # noqa: BLE001 - the next sample tries again
                log.warning(
                    "monitor.sample_failed",
                    error=repr(error),
                    next_step="will retry",
                    retry_in_s=monitor.sample_interval_s,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), monitor.sample_interval_s)

    async def close() -> None:
        await client.aclose()
        await kafka.close()
        await kit.close()

    app = create_app(
        title="monitoramento",
        route_handlers=status_handlers(current_status=current_status, history=history),
        readiness=kit.readiness(),
        max_body_bytes=kit.settings.http.max_body_bytes,
        on_shutdown=[close],
    )
    return app, sampler


def _update_gauges(document: Mapping[str, Any]) -> None:
    SYSTEM_OK.set(1 if document["status"] == "ok" else 0)
    for service, processes in document["services"].items():
        for process, state in processes.items():
            PROCESS_READY.labels(service, process).set(1 if state["ready"] else 0)
    for group, lag in document["consumer-lag"].items():
        GROUP_LAG.labels(group).set(lag["total"])
    for service, backlog in document["outbox-backlog"].items():
        OUTBOX_PENDING.labels(service).set(backlog["pending"])
        OUTBOX_AGE.labels(service).set(backlog["oldest-age-s"])


def build_kit(settings: ServiceSettings, *, process: str) -> ServiceKit:
    return ServiceKit(
        settings, service=SERVICE, migrations=MIGRATIONS, outbox_table=None, process=process
    )


def settings() -> ServiceSettings:
    return ServiceSettings.from_environment(default_port=DEFAULT_PORT)


async def run_api() -> None:
    kit = build_kit(settings(), process="api")
    app, sampler = build(kit)
    await serve(app, kit.settings.http, workers={"sampler": sampler})


async def run_migrate() -> None:
    await build_kit(settings(), process="migrate").migrate()
