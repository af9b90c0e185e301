"""The composition root of pedidos: adapters in, processes out."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar

from datasync.bootstrap import ServiceKit, ServiceSettings, utc_now
from datasync.db import WritePool
from datasync.group_commit import GroupCommit
from datasync.http import create_app
from datasync.runtime import serve
from pedidos.adapters import postgres
from pedidos.adapters.http import pedido_handlers

SERVICE = "pedidos"
DEFAULT_PORT = 3000
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
    """The REST API, over the kit's database."""
    engine = kit.engine
    database = kit.settings.database
    pool = WritePool(database, application_name=f"{kit.client_id}-writer")
    writer = GroupCommit(
        name="pedidos",
        pool=pool,
        write=postgres.write_new_pedidos,
        writers=database.write_pool_size,
        max_batch=database.group_commit_max_items,
        delay_s=database.group_commit_delay_ms / 1000,
        acquire_timeout_s=database.connect_timeout_s,
    )

    async def close_writer() -> None:
        # Requests still waiting for their commit are answered before the pool closes.
        await writer.drain()
        await pool.close()

    return create_app(
        title="pedidos",
        route_handlers=pedido_handlers(
            unit_of_work=lambda: postgres.PostgresUnitOfWork(engine),
            intake=lambda request_id: postgres.GroupCommitPedidoIntake(
                writer, request_id=request_id
            ),
            clock=utc_now,
        ),
        readiness=kit.readiness(),
        max_body_bytes=kit.settings.http.max_body_bytes,
        on_shutdown=[close_writer, kit.close],
    )


def settings() -> ServiceSettings:
    return ServiceSettings.from_environment(default_port=DEFAULT_PORT)


async def run_api() -> None:
    kit = build_kit(settings(), process="api")
    await serve(build_app(kit), kit.settings.http)


async def run_relay() -> None:
    kit = build_kit(settings(), process="relay")
    await kit.serve_workers({"relay": kit.relay_worker()}, title="pedidos relay")


async def run_all() -> None:
    kit = build_kit(settings(), process="all")
    await serve(build_app(kit), kit.settings.http, workers={"relay": kit.relay_worker()})


async def run_migrate() -> None:
    await build_kit(settings(), process="migrate").migrate()
