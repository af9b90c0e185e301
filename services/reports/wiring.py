"""The composition root of reports: adapters in, processes out."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import ClassVar

from litestar import Litestar

from datasync.bootstrap import ServiceKit, ServiceSettings
from datasync.http import create_app
from datasync.runtime import Worker, serve
from datasync.settings import SettingsError, SettingsGroup, read_environment, read_group
from reports.adapters import kafka, postgres
from reports.adapters.http import report_handlers

SERVICE = "reports"
DEFAULT_PORT = 3002
MIGRATIONS = Path(__file__).parent / "migrations"


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
        handlers=kafka.handlers(views=postgres.PostgresReportViews),
        processed_events=postgres.processed_events,
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
