"""Pieces every composition root assembles: settings, engine, Kafka probe, relay, consumer."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from datasync import db, kafka
from datasync.consumer import BatchHandler, IdempotentConsumer
from datasync.http import Readiness, create_app
from datasync.logs import configure_logging
from datasync.outbox import OutboxRelay
from datasync.runtime import KafkaProbe, Worker, readiness_checks, serve
from datasync.settings import (
    AppEnv,
    ConsumerSettings,
    DatabaseSettings,
    HttpSettings,
    KafkaSettings,
    LogSettings,
    OutboxSettings,
    read_app_env,
    read_environment,
    read_group,
)


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Everything a service process reads from its environment, read once."""

    app_env: AppEnv
    log: LogSettings
    database: DatabaseSettings
    kafka: KafkaSettings
    outbox: OutboxSettings
    consumer: ConsumerSettings
    http: HttpSettings

    @classmethod
    def from_environment(
        cls, *, default_port: int, env: Mapping[str, str] | None = None
    ) -> ServiceSettings:
        """Reads the settings; raises `SettingsError` naming the first bad variable."""
        values = read_environment() if env is None else dict(env)
        app_env = read_app_env(values)
        return cls(
            app_env=app_env,
            log=read_group(LogSettings, values, app_env),
            database=read_group(DatabaseSettings, values, app_env),
            kafka=read_group(KafkaSettings, values, app_env),
            outbox=read_group(OutboxSettings, values, app_env),
            consumer=read_group(ConsumerSettings, values, app_env),
            http=read_group(HttpSettings, values, app_env, port=default_port),
        )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ServiceKit:
    """The shared infrastructure of one service process."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        service: str,
        migrations: Path,
        outbox_table: sa.Table | None,
        process: str,
    ) -> None:
        configure_logging(settings.log, service=service)
        self.settings = settings
        self.service = service
        self.migrations = migrations
        self.outbox_table = outbox_table
        self.client_id = f"{service}-{process}"
        self.engine: AsyncEngine = db.create_engine(
            settings.database, application_name=self.client_id
        )
        self.kafka_probe = KafkaProbe(settings.kafka, client_id=f"{self.client_id}-probe")

    def readiness(self) -> Readiness:
        return Readiness(
            readiness_checks(
                engine=self.engine,
                migrations=self.migrations,
                kafka=self.kafka_probe,
                outbox_table=self.outbox_table,
            )
        )

    async def close(self) -> None:
        await self.kafka_probe.close()
        await self.engine.dispose()

    def relay_worker(self) -> Worker:
        async def relay(stop: asyncio.Event) -> None:
            producer = kafka.create_producer(self.settings.kafka, client_id=f"{self.service}-relay")
            await OutboxRelay(
                database_url=self.settings.database.url,
                producer=producer,
                settings=self.settings.outbox,
            ).run(stop)

        return relay

    def consumer_worker(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        processed_events: sa.Table,
        shares_views_with_rebuilds: bool = False,
    ) -> Worker:
        async def consume(stop: asyncio.Event) -> None:
            consumer = kafka.create_consumer(
                self.settings.kafka,
                self.settings.consumer,
                *topics,
                group_id=self.settings.consumer.group_id or group_id,
                client_id=f"{self.service}-consumer",
            )
            dead_letters = kafka.create_producer(
                self.settings.kafka, client_id=f"{self.service}-dead-letters"
            )
            await IdempotentConsumer(
                engine=self.engine,
                consumer=consumer,
                dead_letter_producer=dead_letters,
                processed_events=processed_events,
                handler=handler,
                settings=self.settings.consumer,
                shares_views_with_rebuilds=shares_views_with_rebuilds,
                group_id=self.settings.consumer.group_id or group_id,
            ).run(stop)

        return consume

    async def serve_workers(self, workers: Mapping[str, Worker], *, title: str) -> None:
        """Runs workers with only the ops endpoints over HTTP."""
        app = create_app(
            title=title,
            route_handlers=[],
            readiness=self.readiness(),
            max_body_bytes=self.settings.http.max_body_bytes,
            on_shutdown=[self.close],
        )
        await serve(app, self.settings.http, workers=workers)

    async def migrate(self) -> None:
        await asyncio.to_thread(db.migrate, self.migrations, self.settings.database.url)
        await self.close()
