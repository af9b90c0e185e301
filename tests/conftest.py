"""Fixtures shared by the whole suite: real PostgreSQL and Kafka, started once per session.

Integration tests never mock either: they get a database of their own on a real server and
topics on a real broker. Each test that needs a clean slate asks `fresh_database` for a newly
created, migrated database; Kafka topics are shared, so tests use unique ids.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from datasync.bootstrap import ServiceSettings
from datasync.local import LocalKafka, LocalPostgres, ensure_kafka_jars, ensure_topics
from datasync.stack import topic_partitions

REPO = Path(__file__).resolve().parents[1]
# The shared sample data sits beside the repository; NORTHWIND_DIR points elsewhere.
NORTHWIND = Path(os.environ.get("NORTHWIND_DIR", REPO.parent / "shared" / "data" / "northwind"))
KAFKA_LIBS = REPO / ".data" / "kafka-libs"


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    """An id no other test uses, within the id rules of the APIs."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    # Outside pytest's base temporary directory: every pytest session starting on this
    # machine sets that directory's mode back to 0700, which would lock the unprivileged
    # PostgreSQL user out of a server another session is still running.
    scratch = Path(tempfile.mkdtemp(prefix="datasync-test-pg-"))
    server = LocalPostgres(scratch / "data", port=free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(
        tmp_path_factory.mktemp("kafka"),
        lib_dir=ensure_kafka_jars(KAFKA_LIBS),
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start()
    asyncio.run(ensure_topics(broker.bootstrap_servers, topic_partitions()))
    yield broker
    broker.stop()


_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def fresh_database(postgres: LocalPostgres) -> Callable[[str], str]:
    """Creates a new database for a service, migrated to head, and returns its URL."""

    def create(service: str, *, migrated: bool = True) -> str:
        name = f"{service}_{next(_database_numbers)}"
        url = postgres.ensure_database(name, owner=service, password=service)
        if migrated:
            subprocess.run(
                [sys.executable, "-m", service, "migrate"],
                env={"DATABASE_URL": url, "LOG_LEVEL": "warning", "PATH": ""},
                check=True,
                capture_output=True,
                timeout=120,
            )
        return url

    return create


def settings_for(
    database_url: str, kafka: LocalKafka | None = None, **extra: str
) -> ServiceSettings:
    """The settings a service process would read, for an in-process test."""
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers if kafka else "127.0.0.1:1",
        "LOG_FORMAT": "json",
        "OUTBOX_POLL_INTERVAL_MS": "200",
        "CONSUMER_RETRY_BACKOFF_MS": "20",
        "CONSUMER_MAX_ATTEMPTS": "3",
        **extra,
    }
    return ServiceSettings.from_environment(default_port=free_port(), env=env)
