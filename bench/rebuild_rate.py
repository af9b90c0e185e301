"""Rebuild rate of the report views against Kafka's own consumer throughput, same run.

    .venv/bin/python bench/rebuild_rate.py [--events 100000]

Starts its own PostgreSQL and Kafka on free loopback ports in a temporary directory, writes
`--events` real `PedidoCriado` records to `pedidos`, then measures on that one topic:

1. `kafka-consumer-perf-test` (the broker's `ConsumerPerformance` tool): the ceiling of
   reading the records at all;
2. `python -m reports rebuild`'s engine (`ViewRebuild`): reading, decoding, applying and
   committing every record into fresh view tables, then switching them in.

Writes `bench/results/rebuild-<time>.json` and prints a Markdown table. Both figures come
from the same machine in the same minute, so their ratio means something even on a busy
laptop; the absolute numbers do not travel.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from limits import interrupt_on_sigterm, whole_positive

import reports.wiring
from datasync import events
from datasync.bootstrap import ServiceSettings
from datasync.local import LocalKafka, LocalPostgres, ensure_kafka_jars, ensure_topics
from datasync.stack import topic_partitions

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def produce(bootstrap_servers: str, count: int) -> float:
    """Writes `count` orders of 89 customers; returns the mean record size in bytes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    size = 0
    try:
        pending = []
        for n in range(count):
            cliente_id = f"C{n % 89:03d}"
            payload = events.PedidoCriado(
                id=f"P{n:08d}",
                cliente_id=cliente_id,
                valor=Decimal(n % 5000 + 1) / 100,
                data=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n),
            )
            envelope = events.new_envelope(payload, source="/bench", subject=cliente_id)
            value = events.encode_payload(payload)
            size += len(value)
            pending.append(
                await producer.send(
                    events.TOPIC_PEDIDOS,
                    value=value,
                    key=cliente_id.encode(),
                    headers=events.envelope_headers(envelope),
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return size / count


def kafka_consumer_perf(lib_dir: Path, bootstrap_servers: str, count: int) -> dict[str, float]:
    """Runs the broker's consumer perf tool over the topic; returns its figures."""
    started = time.monotonic()
    output = subprocess.run(
        [
            "java",
            "-Xmx512m",
            "-cp",
            f"{lib_dir}/*",
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            bootstrap_servers,
            "--topic",
            events.TOPIC_PEDIDOS,
            "--messages",
            str(count),
            "--group",
            f"perf-{time.time_ns()}",
            "--timeout",
            "120000",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    wall_s = time.monotonic() - started
    lines = [line for line in output.stdout.splitlines() if line.strip()]
    header = [name.strip() for name in lines[-2].split(",")]
    values = [value.strip() for value in lines[-1].split(",")]
    figures = dict(zip(header, values, strict=True))
    return {
        "records_per_s": float(figures["nMsg.sec"]),
        "mb_per_s": float(figures["MB.sec"]),
        "records": float(figures["data.consumed.in.nMsg"]),
        "tool_wall_s": round(wall_s, 2),
    }


async def rebuild(database_url: str, bootstrap_servers: str) -> dict[str, float]:
    settings = ServiceSettings.from_environment(
        default_port=free_port(),
        env={
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "LOG_LEVEL": "warning",
        },
    )
    kit = reports.wiring.build_kit(settings, process="rebuild")
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    try:
        result = await reports.wiring.build_rebuild(kit).run(asyncio.Event())
    finally:
        await kit.close()
    wall_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "records_per_s": round(result.done / wall_s, 1),
        "records": float(result.done),
        "wall_s": round(wall_s, 2),
        "python_cpu_s": round(cpu_s, 2),
        "switched": float(result.switched),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=whole_positive, default=100_000)
    arguments = parser.parse_args()
    interrupt_on_sigterm()
    lib_dir = ensure_kafka_jars(REPO / ".data" / "kafka-libs")

    with tempfile.TemporaryDirectory(prefix="datasync-bench-") as scratch:
        base = Path(scratch)
        postgres = LocalPostgres(base / "postgres", port=free_port())
        kafka = LocalKafka(
            base / "kafka", lib_dir=lib_dir, port=free_port(), controller_port=free_port()
        )
        postgres.start()
        kafka.start()
        try:
            url = postgres.ensure_database("reports", owner="reports", password="reports")
            subprocess.run(
                [sys.executable, "-m", "reports", "migrate"],
                env={**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "warning"},
                check=True,
                capture_output=True,
                timeout=120,
            )
            asyncio.run(ensure_topics(kafka.bootstrap_servers, topic_partitions()))
            record_bytes = asyncio.run(produce(kafka.bootstrap_servers, arguments.events))
            perf = kafka_consumer_perf(lib_dir, kafka.bootstrap_servers, arguments.events)
            rebuilt = asyncio.run(rebuild(url, kafka.bootstrap_servers))
        finally:
            kafka.stop()
            postgres.stop()

    run: dict[str, Any] = {
        "benchmark": "rebuild_rate",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "events": arguments.events,
        "mean_record_bytes": round(record_bytes, 1),
        "kafka_consumer_perf_test": perf,
        "rebuild": rebuilt,
        "rebuild_over_kafka": round(rebuilt["records_per_s"] / perf["records_per_s"], 3),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"rebuild-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps(run, indent=2))
    print()
    print("| what | records/s |")
    print("| --- | ---: |")
    print(f"| kafka-consumer-perf-test | {perf['records_per_s']:,.0f} |")
    print(f"| rebuild of the report views | {rebuilt['records_per_s']:,.0f} |")
    print(f"| ratio | {run['rebuild_over_kafka']:.3f} |")
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
