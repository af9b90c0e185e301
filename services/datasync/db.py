"""Database plumbing shared by the services: engines, migrations and port errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from datasync.settings import DatabaseSettings


class DatabaseUnavailableError(Exception):
    """The database could not be reached or did not answer in time. Temporary: the same
    operation may succeed later, so HTTP answers 503 and consumers retry."""

    retriable = True


def async_url(url: str) -> sa.URL:
    """The SQLAlchemy URL for asyncpg of a plain `postgresql://` URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg")


def create_engine(settings: DatabaseSettings, *, application_name: str) -> AsyncEngine:
    """An engine with a bounded pool that fails fast when the database is away."""
    return create_async_engine(
        async_url(settings.url),
        pool_size=settings.pool_size,
        max_overflow=0,
        pool_timeout=settings.connect_timeout_s,
        # No ping before each use: it would cost every request a round trip. A connection
        # broken by a database restart fails its next statement instead; SQLAlchemy sees a
        # disconnect, drops it from the pool, and that request gets a 503 while the next
        # ones get fresh connections, so the service recovers without a restart of its own.
        pool_pre_ping=False,
        connect_args={
            "timeout": settings.connect_timeout_s,
            "command_timeout": settings.command_timeout_s,
            "server_settings": {"application_name": application_name},
        },
    )


class WritePool:
    """An asyncpg pool for the write paths that skip SQLAlchemy, opened on first use so it
    belongs to the event loop that serves the requests."""

    def __init__(self, settings: DatabaseSettings, *, application_name: str) -> None:
        self._settings = settings
        self._application_name = application_name
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def __call__(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._settings.url,
                    min_size=0,
                    max_size=self._settings.write_pool_size,
                    timeout=self._settings.connect_timeout_s,
                    command_timeout=self._settings.command_timeout_s,
                    server_settings={"application_name": self._application_name},
                    # The writers take no locks, listen to nothing and set nothing, so the
                    # default reset (four statements on every release) would only cost.
                    reset=_keep_session,
                )
            return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """A pool reset that leaves the session as it is."""


def is_connection_error(error: BaseException) -> bool:
    """Whether an error means "the database is not there right now" rather than a bug."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa.exc.TimeoutError, TimeoutError, OSError, ConnectionError)):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        return _is_connection_error_cause(error.orig)
    # Raw asyncpg errors (the write paths that skip SQLAlchemy) are sorted by their names.
    return isinstance(error, sa.exc.InterfaceError) or _is_connection_error_cause(error)


def _is_connection_error_cause(cause: BaseException | None) -> bool:
    if cause is None:
        return False
    name = type(cause).__name__
    # asyncpg's protocol refuses a connection whose last operation a lost connection cut
    # short ("cannot switch to state ..."): the connection is gone, not the request wrong.
    broken = (OSError, TimeoutError, ConnectionError, asyncpg.InternalClientError)
    return (
        isinstance(cause, broken)
        or "ConnectionDoesNotExist" in name
        or "CannotConnectNow" in name
        or "AdminShutdown" in name
        or "ConnectionFailure" in name
        or "InterfaceError" in name
        or _is_connection_error_cause(cause.__cause__)
    )


def _alembic_config(script_location: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # Passed through attributes, not the ini options, because configparser would try to
    # interpolate a `%` in a password.
    config.attributes["database_url"] = url
    return config


def migrate(script_location: Path, url: str) -> None:
    """Upgrades a database to the head of a service's migrations. Synchronous: call it from
    async code through `asyncio.to_thread`."""
    command.upgrade(_alembic_config(script_location, url), "head")


def head_revision(script_location: Path) -> str | None:
    """The newest revision in a service's migration scripts."""
    scripts = ScriptDirectory.from_config(_alembic_config(script_location, ""))
    return scripts.get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision a database is at, or None before the first migration."""
    async with engine.connect() as connection:
        exists = await connection.scalar(sa.text("select to_regclass('alembic_version')"))
        if exists is None:
            return None
        revision: str | None = await connection.scalar(
            sa.text("select version_num from alembic_version")
        )
        return revision


def run_migrations_env(target_metadata: sa.MetaData) -> None:
    """The body of every service's `migrations/env.py`: runs the migrations online with an
    asyncpg engine."""
    url = context.config.attributes["database_url"]

    def run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())
