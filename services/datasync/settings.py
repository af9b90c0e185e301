"""Settings read from the environment, once, by a composition root.

Each concern has its own group (a frozen Struct); a field `poll_interval_ms` of the group with
prefix `OUTBOX_` is read from `OUTBOX_POLL_INTERVAL_MS`. `APP_ENV` (`dev`, `staging` or
`prod`) picks the defaults; anything missing or malformed stops start-up with a
`SettingsError` that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Self, TypeVar

import msgspec
from dotenv import dotenv_values


class SettingsError(Exception):
    """A setting is missing or malformed. The message names the variable."""


class AppEnv(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


REQUIRED: Final = object()
"""Marks a default that does not exist in some environment: the variable must be set."""


class SettingsGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Base of a settings group. Subclasses set `prefix` and may override defaults per
    environment in `env_defaults` (use `REQUIRED` to demand a value)."""

    prefix: ClassVar[str] = ""
    env_defaults: ClassVar[Mapping[AppEnv, Mapping[str, Any]]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str], app_env: AppEnv) -> Self:
        """Reads the group from an environment mapping.

        Raises:
            SettingsError: a variable is malformed, or required and missing.
        """
        values: dict[str, Any] = {}
        overrides = cls.env_defaults.get(app_env, {})
        for field in msgspec.structs.fields(cls):
            variable = f"{cls.prefix}{field.name.upper()}"
            raw = env.get(variable)
            if raw is None or raw == "":
                default = overrides.get(field.name, msgspec.NODEFAULT)
                if default is REQUIRED:
                    raise SettingsError(f"{variable} is required when APP_ENV={app_env}")
                if default is not msgspec.NODEFAULT:
                    values[field.name] = default
                elif field.required:
                    raise SettingsError(f"{variable} is required")
                continue
            try:
                values[field.name] = msgspec.convert(raw, field.type, strict=False)
            except msgspec.ValidationError as error:
                raise SettingsError(f"{variable}={raw!r} is malformed: {error}") from error

        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as error:
            raise SettingsError(f"{cls.prefix or 'settings'}: {error}") from error


def read_environment(dotenv_path: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over the values of a `.env` file, if one exists.

    Variables already set in the environment win, so a `.env` file never overrides what an
    operator passed explicitly.
    """
    env: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        env.update({key: value for key, value in dotenv_values(dotenv_path).items() if value})
    env.update(os.environ)
    return env


def read_app_env(env: Mapping[str, str]) -> AppEnv:
    """Reads `APP_ENV`, which defaults to `dev`.

    Raises:
        SettingsError: the value is not one of dev, staging, prod.
    """
    raw = env.get("APP_ENV", "dev") or "dev"
    try:
        return AppEnv(raw)
    except ValueError as error:
        choices = ", ".join(member.value for member in AppEnv)
        raise SettingsError(f"APP_ENV={raw!r} is malformed: expected one of {choices}") from error


class LogSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "LOG_"
    env_defaults: ClassVar[Mapping[AppEnv, Mapping[str, Any]]] = {
        AppEnv.STAGING: {"format": "json"},
        AppEnv.PROD: {"format": "json"},
    }

    level: str = "info"
    """Lowest level written: debug, info, warning or error."""

    format: str = "auto"
    """`json` (one object a line, for collectors), `console` (for people) or `auto`: console
    on a terminal, JSON otherwise."""


class DatabaseSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "DATABASE_"

    url: str
    """`postgresql://user:password@host:port/database` of this service's own database."""

    def __post_init__(self) -> None:
        scheme, separator, rest = self.url.partition("://")
        if scheme not in ("postgresql", "postgres") or not separator or "/" not in rest:
            raise ValueError("DATABASE_URL: expected postgresql://user:password@host:port/db")

    pool_size: int = 10
    """Connections kept open. Ten covers one HTTP worker at the concurrency the benchmarks
    use without queueing, and stays far under PostgreSQL's default connection limit when
    every service runs against one server."""

    write_pool_size: Annotated[int, msgspec.Meta(ge=1)] = 1
    """Group-commit writers of a service (pedidos' `POST`), each with a connection: the
    writes in flight at once. One carries any rate this service reaches, since a batch holds
    up to `group_commit_max_items`; more writers commit smaller batches, each paying the
    statement and the WAL flush for fewer requests."""

    group_commit_max_items: Annotated[int, msgspec.Meta(ge=1)] = 256
    """Largest batch one group commit writes, which bounds the statement and its latency."""

    group_commit_delay_ms: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    """How long a group-commit writer gathers requests before writing a batch that is not
    full: what a request may lose in latency so that commits carry several requests at
    moderate rates too. At 1,200 orders/s, 2 ms with one writer cut PostgreSQL's CPU by a
    third and the API's by a sixth against no delay and four writers. 0 writes at once."""

    connect_timeout_s: float = 2.0
    """How long a request waits for a connection (from the pool, or a new one) before it
    fails fast with 503. A database next to the service connects in milliseconds."""

    command_timeout_s: float = 10.0
    """Upper bound of one statement, so an outage turns into an answer instead of a hang."""


class KafkaSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "KAFKA_"
    env_defaults: ClassVar[Mapping[AppEnv, Mapping[str, Any]]] = {
        AppEnv.STAGING: {"bootstrap_servers": REQUIRED},
        AppEnv.PROD: {"bootstrap_servers": REQUIRED},
    }

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated `host:port` of brokers to bootstrap from."""

    request_timeout_ms: int = 30_000
    """Upper bound of one broker request; the library default, stated so it is a choice."""

    producer_max_batch_bytes: int = 524_288
    """Bytes a producer gathers into one batch per partition. The client keeps one request in
    flight per broker, and a request carries one batch per partition, so at the library's
    16 KiB a 500-row outbox batch over three partitions took three round trips; this takes
    one. It stays under the broker's default `message.max.bytes` (1 MiB)."""

    security_protocol: str = "PLAINTEXT"
    """PLAINTEXT locally; SASL_SSL or SSL where the cluster requires it."""

    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None


class OutboxSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "OUTBOX_"

    batch_size: int = 500
    """Rows published per round trip. Large enough to amortise the commit of the delete,
    small enough that one batch is published well within the request timeout."""

    poll_interval_ms: int = 1000
    """Fallback poll period. New rows wake the relay at once through LISTEN/NOTIFY; the poll
    only covers a lost notification (for example across a database restart)."""

    standby_retry_ms: int = 2000
    """How often a standby relay tries to become the active one. Bounds fail-over time."""


class ConsumerSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "CONSUMER_"

    group_id: str | None = None
    """Consumer group; by default the service's own (for example `reports-views`). Another
    name starts a separate group that reads every topic again from the beginning."""

    max_batch_records: int = 1000
    """Records handled in one database transaction and one offset commit. On a backlog the
    reports consumer applied 19,800 records/s in batches of 1,000 against 15,600 in batches
    of 500; a batch of 1,000 still commits in well under a tenth of a second."""

    fetch_min_bytes: int = 32_768
    """Bytes the broker gathers before it answers a fetch (about a hundred events), unless
    `fetch_max_wait_ms` passes first. Answering every record on its own made each consumer,
    the broker and PostgreSQL spend as much CPU at 250 orders/s as at 1,500, in batches of
    one or two records."""

    fetch_max_wait_ms: int = 50
    """Longest a fetch waits for `fetch_min_bytes`: what an event may lose in latency so
    that batches stay large under light load. Against 20 ms, at 700 orders/s the two
    consumers and the clientes relay spent 0.14 ms of CPU less per order, for 20 ms more
    from order to report at the median."""

    max_attempts: int = 5
    """Attempts for a record whose handler fails before it goes to the dead-letter topic."""

    retry_backoff_ms: int = 200
    """First retry delay; it doubles with every attempt."""

    session_timeout_ms: int = 10_000
    """How long the group waits for a silent (crashed) consumer before giving its partitions
    to another member. Short, so a killed process stalls its partitions for seconds only."""

    max_poll_interval_ms: int = 60_000
    """Longest time between two polls before the member leaves the group; also how long a
    rebalance waits for members to rejoin. A batch stuck retrying a database outage for
    longer than this hands its partitions over, and they are redelivered without loss."""


class HttpSettings(SettingsGroup, frozen=True):
    prefix: ClassVar[str] = "HTTP_"

    host: str = "127.0.0.1"
    """Interface to bind. Loopback by default; containers set 0.0.0.0."""

    port: int = 8000
    """Port of the HTTP API (or of the ops endpoints of a worker process)."""

    max_body_bytes: int = 65_536
    """Largest request body accepted; larger ones get 413 before they are read whole."""


_G = TypeVar("_G", bound=SettingsGroup)


def read_group(group: type[_G], env: Mapping[str, str], app_env: AppEnv, **defaults: Any) -> _G:
    """Reads one group, with defaults supplied by the composition root (such as a service's
    own port) applied when the variable is not set."""
    merged = dict(env)
    for name, value in defaults.items():
        variable = f"{group.prefix}{name.upper()}"
        if not merged.get(variable):
            merged[variable] = str(value)
    return group.from_env(merged, app_env)
