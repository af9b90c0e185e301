"""The composition root of reports: adapters in, processes out."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import sys
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import structlog
from litestar import Litestar

from datasync.bootstrap import ServiceKit, ServiceSettings
from datasync.http import create_app
from datasync.rebuild import (
    Progress,
    RebuildConflictError,
    RebuildOptionsError,
    ViewRebuild,
    print_progress,
)
from datasync.runtime import Worker, serve
from datasync.settings import SettingsError, SettingsGroup, read_environment, read_group
from reports.adapters import kafka, postgres
from reports.adapters.http import report_handlers

SERVICE = "reports"
DEFAULT_PORT = 3002
MIGRATIONS = Path(__file__).parent / "migrations"
EX_TEMPFAIL = 75
"""Exit code of a rebuild refused because another one runs: try again later."""

log = structlog.get_logger(__name__)


class ReportSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "REPORTS_"

    timezone: str = "UTC"
    """IANA time zone in which `vendas-diarias` cuts days (for example America/Sao_Paulo)."""


def report_settings(settings: ServiceSettings) -> ReportSettings:
    found = read_group(ReportSettings, read_environment(), settings.app_env)
    try:
        zoneinfo.ZoneInfo(found.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise SettingsError(
            f"REPORTS_TIMEZONE={found.timezone!r} is not a known IANA time zone"
        ) from error
    return found


def build_kit(settings: ServiceSettings, *, process: str) -> ServiceKit:
    return ServiceKit(
        settings, service=SERVICE, migrations=MIGRATIONS, outbox_table=None, process=process
    )


def build_app(kit: ServiceKit, reports: ReportSettings) -> Litestar:
    queries = postgres.PostgresReportQueries(kit.engine, timezone=reports.timezone)
    return create_app(
        title="reports",
        route_handlers=report_handlers(queries),
        readiness=kit.readiness(),
        max_body_bytes=kit.settings.http.max_body_bytes,
        on_shutdown=[kit.close],
    )


def consumer_worker(kit: ServiceKit) -> Worker:
    return kit.consumer_worker(
        group_id=kafka.GROUP_ID,
        topics=kafka.TOPICS,
        handler=kafka.batch_handler(views=postgres.PostgresReportViews),
        processed_events=postgres.processed_events,
        shares_views_with_rebuilds=True,
    )


def settings() -> ServiceSettings:
    return ServiceSettings.from_environment(default_port=DEFAULT_PORT)


async def run_api() -> None:
    service_settings = settings()
    reports = report_settings(service_settings)
    kit = build_kit(service_settings, process="api")
    await serve(build_app(kit, reports), kit.settings.http)


async def run_consumer() -> None:
    kit = build_kit(settings(), process="consumer")
    await kit.serve_workers({"consumer": consumer_worker(kit)}, title="reports consumer")


async def run_all() -> None:
    service_settings = settings()
    reports = report_settings(service_settings)
    kit = build_kit(service_settings, process="all")
    workers = {"consumer": consumer_worker(kit)}
    await serve(build_app(kit, reports), kit.settings.http, workers=workers)


async def run_migrate() -> None:
    await build_kit(settings(), process="migrate").migrate()


def build_rebuild(
    kit: ServiceKit,
    *,
    from_time: dt.datetime | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval_s: float = 2.0,
) -> ViewRebuild:
    """A rebuild of every report view from the three topics reports consumes."""
    return ViewRebuild(
        engine=kit.engine,
        kafka=kit.settings.kafka,
        tables=[
            postgres.pedidos,
            postgres.totais_por_cliente,
            postgres.clientes,
            postgres.processed_events,
        ],
        processed_events=postgres.processed_events,
        handler=kafka.batch_handler(views=postgres.PostgresReportViews),
        topics=kafka.TOPICS,
        from_time=from_time,
        on_progress=on_progress,
        progress_interval_s=progress_interval_s,
    )


async def run_rebuild(*, from_time: dt.datetime | None, restart: bool) -> int:
    """Rebuilds the report views from the topics and switches them in; returns the exit
    code (75 when another rebuild runs)."""
    service_settings = settings()
    kit = build_kit(service_settings, process="rebuild")
    rebuild = build_rebuild(kit, from_time=from_time, on_progress=print_progress)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        result = await rebuild.run(stop, restart=restart)
    except RebuildConflictError as error:
        log.error("rebuild.conflict", error=str(error), next_step="try again when it ends")
        return EX_TEMPFAIL
    except RebuildOptionsError as error:
        log.error("rebuild.options_differ", error=str(error), next_step="nothing was changed")
        return 2
    finally:
        await kit.close()
    if not result.switched:
        log.warning("rebuild.stopped", done=result.done, next_step="run it again to resume")
        return 130
    print(json.dumps({"event": "rebuild.switched", "done": result.done}), flush=True)
    return 0


def rebuild_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports rebuild",
        description="Rebuild the report views from Kafka beside the live ones, then switch.",
    )
    parser.add_argument(
        "--from-time",
        type=dt.datetime.fromisoformat,
        default=None,
        help="start at this ISO 8601 instant instead of the beginning of the topics",
    )
    parser.add_argument(
        "--restart", action="store_true", help="discard a stopped rebuild instead of resuming"
    )
    arguments = parser.parse_args(argv)
    try:
        return asyncio.run(run_rebuild(from_time=arguments.from_time, restart=arguments.restart))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 78
