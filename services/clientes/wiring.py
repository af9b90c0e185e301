"""The composition root of clientes: adapters in, processes out."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar

from clientes.adapters import kafka, postgres
from clientes.adapters.http import cliente_handlers
from datasync.bootstrap import ServiceKit, ServiceSettings
from datasync.http import create_app
from datasync.runtime import Worker, serve

SERVICE = "clientes"
DEFAULT_PORT = 3001
MIGRATIONS = Path(__file__).parent / "migrations"


def build_kit(settings: ServiceSettings, *, process: str) -> ServiceKit:
    return ServiceKit(
        settings,
        service=SERVICE,
        migrations=MIGRATIONS,
        outbox_table=postgres.outbox,
        process=process,
    )


def build_app(kit: ServiceKit) -> Litestar:
    engine = kit.engine
    return create_app(
        title="clientes",
        route_handlers=cliente_handlers(
            unit_of_work=lambda request_id: postgres.PostgresUnitOfWork(
                engine, request_id=request_id
            )
        ),
        readiness=kit.readiness(),
        max_body_bytes=kit.settings.http.max_body_bytes,
        on_shutdown=[kit.close],
    )


def consumer_worker(kit: ServiceKit) -> Worker:
    return kit.consumer_worker(
        group_id=kafka.GROUP_ID,
        topics=kafka.TOPICS,
        handler=kafka.batch_handler(
            unit_of_work=lambda connection, request_id_of: postgres.PostgresUnitOfWork(
                None, joined=connection, request_id_of=request_id_of
            )
        ),
        processed_events=postgres.processed_events,
    )


def settings() -> ServiceSettings:
    return ServiceSettings.from_environment(default_port=DEFAULT_PORT)


async def run_api() -> None:
    kit = build_kit(settings(), process="api")
    await serve(build_app(kit), kit.settings.http)


async def run_relay() -> None:
    kit = build_kit(settings(), process="relay")
    await kit.serve_workers({"relay": kit.relay_worker()}, title="clientes relay")


async def run_consumer() -> None:
    kit = build_kit(settings(), process="consumer")
    await kit.serve_workers({"consumer": consumer_worker(kit)}, title="clientes consumer")


async def run_all() -> None:
    kit = build_kit(settings(), process="all")
    workers = {"relay": kit.relay_worker(), "consumer": consumer_worker(kit)}
    await serve(build_app(kit), kit.settings.http, workers=workers)


async def run_migrate() -> None:
    await build_kit(settings(), process="migrate").migrate()
