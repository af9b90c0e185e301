"""The benchmark suite: the whole pipeline against the limits of its parts, in one run.

    make bench          # or: .venv/bin/python bench/suite.py [--step-seconds 10]

Needs `oha` (`bench/tools.sh` installs it). Everything shares this machine's cores, so every
figure is read in the same run as the limit it is compared with, together with the CPU
seconds each process spent, the load generator's included. In order:

1. Limits, with no service running: the load generator against a trivial endpoint; `R_http`
   (Litestar decoding and answering the real order, no database); `R_asyncpg` and
   `R_pgbench` (the service's write, one order per transaction, `synchronous_commit` on);
   Kafka's own producer and consumer perf tools and a bare aiokafka loop, at our event size.
2. Start-up: each service process started alone, timed until `/health/ready` answers; then
   the memory of each, idle.
3. Each stage alone on a backlog: `POST /pedidos` at saturation fills the outbox with every
   downstream stage stopped; then the pedidos relay, the clientes consumer (enrichment), the
   clientes relay and the reports consumer each run alone until their backlog is gone.
4. Open-model steps: oha sends at a fixed rate whether answers are slow or not (latency
   corrected for coordinated omission), stepping up until the pipeline no longer keeps up.
   Each step records HTTP percentiles, order-to-report latency (a probe order every 200 ms
   to a customer of its own, polled on `/reports/clientes/<id>` by `bench/prober.py`, a
   process of its own), CPU and peak memory of every process, the backlog left at the end,
   and commits per WAL flush.
5. Half the sustained rate (the highest step that kept up): first 30 s while the stack
   recovers from the steps past saturation (reported, not judged), then 30 s where the
   latency targets are read. A 10 s step gives about 50 probes, whose p99 is their
   maximum; this run gives about 150, and a p99 of every request over 30 s.

Writes `bench/results/suite-<time>.json`, `.md` and `.png` plots (`bench/report.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import limits
import report
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from limits import not_negative, oha_binary, positive, whole_positive
from pipeline import Pipeline, cpu_of, free_port, trees_rss_mib
from prober import PROBE_INTERVAL_S

from datasync import events
from datasync.local import ensure_topics
from datasync.stack import process_specs, topic_partitions

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = REPO / "bench" / "results"

LOAD_CLIENTES = 500
CONNECTIONS = 64
"""Connections of the load generator: enough that a fixed rate is never held back by
answers in flight at these latencies, as few as keep the servers' per-connection cost low."""

LINES_PER_REQUEST = 100
"""Body lines per request sent: with lines picked at random, about 0.5 % repeats."""

MAX_STEPS = 40
"""Open-model steps at most, whatever the ceiling: about ten minutes of steps."""

DOWNSTREAM = ["pedidos-relay", "clientes-consumer", "clientes-relay", "reports-consumer"]


def order_bodies(path: Path, count: int, *, prefix: str) -> Path:
    """One order per line, every id new, customers spread over the load customers.

    oha picks a line at random for each request, so a file must hold many more lines than
    requests for repeats to stay rare (a repeat is answered 200 and counted apart); callers
    ask for `LINES_PER_REQUEST` lines a request."""
    with path.open("w") as out:
        for n in range(count):
            cliente = f"B{n % LOAD_CLIENTES:04d}"
            valor = f"{n % 5000 + 1}.{n % 100:02d}"
            out.write(f'{{"id": "{prefix}-{n}", "cliente-id": "{cliente}", "valor": {valor}}}\n')
    return path


def oha(
    url: str,
    *,
    bodies: Path | None,
    seconds: float | None = None,
    requests: int | None = None,
    rate: float | None = None,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """Runs oha, returning its figures and its own CPU seconds (from the kernel's rusage)."""
    command = [oha_binary(), "--no-tui", "--output-format", "json", "-c", str(connections)]
    if seconds is not None:
        # Requests in flight at the deadline are awaited, not counted as errors.
        command += ["-z", f"{seconds}s", "-w"]
    if requests is not None:
        command += ["-n", str(requests)]
    if rate is not None:
        command += ["-q", str(rate), "--latency-correction"]
    if bodies is not None:
        command += ["-m", "POST", "-T", "application/json", "-Z", str(bodies)]
    command.append(url)
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=output, stderr=errors)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            # Interrupted: oha must not go on loading a stack that is being torn down.
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"oha exited with {process.returncode}: {message}")
        output.seek(0)
        raw = json.loads(output.read())
    latency = raw["metrics"]["latency_ms"]
    statuses = dict(raw["statusCodeDistribution"])
    return {
        "requests_per_s": round(raw["summary"]["requestsPerSec"], 1),
        "p50_ms": latency["p50"],
        "p95_ms": round(raw["latencyPercentiles"]["p95"] * 1000, 3),
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "statuses": statuses,
        "errors": raw["errorDistribution"],
        "loadgen_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
    }


# --------------------------------------------------------------------------------------
# database readings
# --------------------------------------------------------------------------------------


async def scalar(url: str, query: str) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def count(url: str, table: str) -> int:
    # The table names are this file's own constants, never input.
    return int(asyncio.run(scalar(url, f"select count(*) from {table}")))  # noqa: S608


WAL_READING = """
select
    (select coalesce(sum(fsyncs), 0) from pg_stat_io where object = 'wal') as fsyncs,
    (select sum(xact_commit) from pg_stat_database) as commits
"""


async def wal_reading(superuser_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(superuser_url)
    try:
        # Statistics reach the shared views when a backend flushes them, about once a second.
        await asyncio.sleep(1.2)
        row = await connection.fetchrow(WAL_READING)
    finally:
        await connection.close()
    assert row is not None
    return {"fsyncs": int(row["fsyncs"]), "commits": int(row["commits"])}


CONSUMER_GROUPS = {
    "clientes-enriquecimento": [events.TOPIC_PEDIDOS],
    "reports-views": [
        events.TOPIC_PEDIDOS,
        events.TOPIC_PEDIDOS_ENRIQUECIDOS,
        events.TOPIC_CLIENTES,
    ],
}


async def behind(pipeline: Pipeline) -> int:
    """Work accepted but not yet in the reports: rows in both outboxes plus the records the
    consumer groups have not committed."""
    pending = 0
    for service in ("pedidos", "clientes"):
        pending += int(await scalar(pipeline.database_url(service), "select count(*) from outbox"))
    bootstrap = pipeline.broker.bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await reader.start()
    try:
        for group, topics in CONSUMER_GROUPS.items():
            committed = await admin.list_consumer_group_offsets(group)
            partitions = [
                TopicPartition(topic, number)
                for topic in topics
                for number in reader.partitions_for_topic(topic) or ()
            ]
            ends = await reader.end_offsets(partitions)
            for partition, end in ends.items():
                done = committed.get(partition)
                pending += end - (done.offset if done is not None and done.offset >= 0 else 0)
    finally:
        await reader.stop()
        await admin.close()
    return pending


def group_commit_totals(client: httpx.Client, url: str) -> tuple[float, float]:
    """Orders and transactions of the pedidos group commit so far, from its metrics."""
    text = client.get(f"{url}/metrics").text
    found = {
        name: float(value)
        for name, value in re.findall(
            r'^datasync_group_commit_batch_items_(sum|count)\{writer="pedidos"\} (\S+)$',
            text,
            re.MULTILINE,
        )
    }
    return found.get("sum", 0.0), found.get("count", 0.0)


# --------------------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------------------


def measure_limits(pipeline: Pipeline, scratch: Path, seconds: float) -> dict[str, Any]:
    found: dict[str, Any] = {}
    found["loadgen_ceiling"] = limits.loadgen_ceiling(seconds=seconds, connections=CONNECTIONS)

    # The service's write needs the service's tables; a database of its own keeps these rows
    # out of the pipeline measured later.
    postgres = pipeline.servers.postgres
    assert postgres is not None
    url = postgres.ensure_database("limits", owner="limits", password="limits")
    subprocess.run(
        [sys.executable, "-m", "pedidos", "migrate"],
        env={**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "warning"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    pids = {"postgres": postgres.pid or 0, "bench": os.getpid()}
    with cpu_of(pids) as reading:
        rate = asyncio.run(limits.asyncpg_rate(url, seconds=int(seconds), connections=CONNECTIONS))
    found["r_asyncpg"] = {"per_s": round(rate, 1), **reading}
    found["r_pgbench"] = limits.r_pgbench(
        postgres.superuser_url(), url, seconds=seconds, clients=CONNECTIONS
    )

    app_dir = scratch / "http-only"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "http_only.py").write_text(limits.HTTP_ONLY_APP)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "http_only:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--app-dir",
            str(app_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        limits.wait_for_port(port)
        bodies = order_bodies(scratch / "http-only.txt", 1_000, prefix="h")
        with cpu_of({"server": server.pid}) as reading:
            figures = oha(f"http://127.0.0.1:{port}/pedidos", bodies=bodies, seconds=seconds)
        found["r_http"] = {**figures, **reading}
    finally:
        server.terminate()
        server.wait(timeout=30)

    size = limits.real_event_size()
    bootstrap = pipeline.broker.bootstrap_servers
    partitions = topic_partitions()[events.TOPIC_PEDIDOS]
    asyncio.run(ensure_topics(bootstrap, {"bench-perf": partitions, "bench-aiokafka": partitions}))
    found["event_size_bytes"] = size
    found["kafka_perf"] = limits.kafka_perf(
        lib_dir=pipeline.broker.lib_dir,
        bootstrap_servers=bootstrap,
        topic="bench-perf",
        record_size=size,
        records=500_000,
        broker_pid=pipeline.broker.pid,
    )
    found["bare_aiokafka"] = limits.bare_aiokafka(
        bootstrap_servers=bootstrap, topic="bench-aiokafka", record_size=size, records=100_000
    )
    return found


def seed_clientes(client: httpx.Client, url: str, ids: list[str]) -> None:
    for cliente_id in ids:
        response = client.post(
            f"{url}/clientes",
            json={"id": cliente_id, "nome": f"Cliente {cliente_id}", "pais": "Brasil"},
        )
        response.raise_for_status()


def seed_probe_clientes(
    client: httpx.Client, url: str, *, seconds: float, runs: int
) -> Iterator[str]:
    """Seeds a customer of its own for every probe that `runs` open-model runs lasting
    `seconds` in all will send, with room for each run's last probes."""
    ids = [f"E{n:05d}" for n in range(int(seconds / PROBE_INTERVAL_S) + 20 * runs)]
    seed_clientes(client, url, ids)
    return iter(ids)


def drain_rate(
    read_count: Any, *, target: int, timeout_s: float = 600.0, settle_s: float = 3.0
) -> dict[str, Any]:
    """Samples a growing (or shrinking) count until it reaches `target` or stops moving.

    The rate is the steady one, between the moments a tenth and nine tenths of the whole
    movement were done: the first batches of a process just started also pay for its
    connections, the client's metadata and a consumer's group join, and the last one is
    partial. The rate from the first change to the last is kept beside it."""
    samples = [(time.monotonic(), read_count())]
    deadline = samples[0][0] + timeout_s
    last_change = samples[0]
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now, value = time.monotonic(), read_count()
        samples.append((now, value))
        if value != last_change[1]:
            last_change = (now, value)
        moved_at_all = last_change is not samples[0]
        if value == target or (moved_at_all and now - last_change[0] > settle_s):
            break

    first_value = samples[0][1]
    moved = abs(last_change[1] - first_value)
    reached = samples[-1][1] == target
    if not moved:
        return {"per_s": 0.0, "moved": 0, "reached_target": reached}

    def when_done(share: float) -> tuple[float, int]:
        return next(s for s in samples if abs(s[1] - first_value) >= share * moved)

    first_change = next(sample for sample in samples if sample[1] != first_value)
    tenth, nine_tenths = when_done(0.1), when_done(0.9)
    whole_s = max(last_change[0] - first_change[0], 1e-6)
    steady_s = max(nine_tenths[0] - tenth[0], 1e-6)
    return {
        "per_s": round(abs(nine_tenths[1] - tenth[1]) / steady_s, 1),
        "first_to_last_per_s": round(moved / whole_s, 1),
        "moved": moved,
        "seconds": round(whole_s, 3),
        "reached_target": reached,
    }


def measure_stages(
    pipeline: Pipeline, client: httpx.Client, scratch: Path, backlog: int
) -> dict[str, Any]:
    """Each stage alone on a backlog of `backlog` orders, the others stopped."""
    pedidos_db = pipeline.database_url("pedidos")
    clientes_db = pipeline.database_url("clientes")
    reports_db = pipeline.database_url("reports")
    stages: dict[str, Any] = {}
    pipeline.stop(DOWNSTREAM)

    bodies = order_bodies(
        scratch / "backlog.txt", backlog * LINES_PER_REQUEST, prefix=f"s{uuid.uuid4().hex[:6]}"
    )
    pids = pipeline.pids()
    with cpu_of(pids) as reading:
        stages["post_pedidos"] = oha(
            f"{pipeline.url('pedidos-api')}/pedidos", bodies=bodies, requests=backlog
        )
    stages["post_pedidos"].update(reading)
    created = stages["post_pedidos"]["statuses"].get("201", 0)

    def timed_alone(name: str, read: Any, target: int) -> dict[str, Any]:
        # Sampling starts with the process, not once it is ready: a stage may drain much
        # of its backlog before its readiness probe first answers.
        service = pipeline.services[name]
        service.start()
        with cpu_of({**pipeline.pids(), name: service.pid}) as usage:
            figures = drain_rate(read, target=target)
        service.wait_ready(client)
        return {**figures, **usage}

    stages["pedidos_relay"] = timed_alone(
        "pedidos-relay", lambda: count(pedidos_db, "outbox"), target=0
    )
    already = count(clientes_db, "processed_events")
    stages["clientes_consumer"] = timed_alone(
        "clientes-consumer",
        lambda: count(clientes_db, "processed_events"),
        target=already + created,
    )
    stages["clientes_relay"] = timed_alone(
        "clientes-relay", lambda: count(clientes_db, "outbox"), target=0
    )
    already = count(reports_db, "processed_events")
    pending = created * 2  # each order reaches reports twice: as placed, and enriched
    stages["reports_consumer"] = timed_alone(
        "reports-consumer",
        lambda: count(reports_db, "processed_events"),
        target=already + pending,
    )
    return stages


class Prober:
    """Sends one order every `PROBE_INTERVAL_S` to a customer of its own and times how long
    it takes to appear in that customer's report (`bench/prober.py`).

    It runs as a process of its own: in this one, the threads that read memory and CPU
    would hold the interpreter lock while a probe waits for its turn to time an answer."""

    def __init__(self, pedidos_url: str, reports_url: str, clientes: list[str]) -> None:
        self._command = [sys.executable, str(BENCH / "prober.py"), pedidos_url, reports_url]
        self._clientes = clientes
        self.latencies_ms: list[float] = []
        self.lost = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> Prober:
        self._process = subprocess.Popen(
            [*self._command, *self._clientes], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        return self

    def __exit__(self, *_: object) -> None:
        assert self._process is not None
        # `communicate` closes its input: the signal to stop sending and report.
        output, _errors = self._process.communicate(timeout=60)
        if self._process.returncode != 0:
            raise RuntimeError(f"the prober exited with {self._process.returncode}")
        result = json.loads(output)
        self.latencies_ms, self.lost = result["latencies_ms"], result["lost"]


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


class MemoryWatch:
    """The peak resident memory of each process while the block runs, sampled every 0.5 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self.peak_mib: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, mib in trees_rss_mib(self._pids).items():
                self.peak_mib[name] = max(self.peak_mib[name], mib)


def ramp(rates: list[int], *, ceiling: float, most: int = MAX_STEPS) -> list[int]:
    """The offered rates of the open-model steps: those given, then on past the last by
    about 8 % a step, up to `ceiling`, so that a machine faster than the list foresaw is
    still taken to saturation."""
    planned = list(rates)
    while len(planned) < most:
        following = max(planned[-1] + 100, int(round(planned[-1] * 1.08, -2)))
        if following > ceiling:
            break
        planned.append(following)
    return planned[:most]


def open_model_steps(
    pipeline: Pipeline,
    client: httpx.Client,
    scratch: Path,
    *,
    rates: list[int],
    seconds: float,
    probe_clientes: Iterator[str],
) -> list[dict[str, Any]]:
    """Steps the offered rate up until two steps in a row fail to keep up."""
    steps: list[dict[str, Any]] = []
    misses = 0
    for rate in rates:
        step = open_model_step(
            pipeline, client, scratch, rate=rate, seconds=seconds, probe_clientes=probe_clientes
        )
        steps.append(step)
        misses = 0 if step["kept_up"] else misses + 1
        if misses == 2:
            break
    return steps


def open_model_step(
    pipeline: Pipeline,
    client: httpx.Client,
    scratch: Path,
    *,
    rate: int,
    seconds: float,
    probe_clientes: Iterator[str],
) -> dict[str, Any]:
    """Offers `rate` orders/s for `seconds`, then waits for the pipeline to drain."""
    postgres = pipeline.servers.postgres
    assert postgres is not None
    superuser_url = postgres.superuser_url()
    bodies = order_bodies(
        scratch / f"step-{rate}.txt",
        int(rate * seconds * LINES_PER_REQUEST),
        prefix=f"r{rate}-{uuid.uuid4().hex[:4]}",
    )
    step_probes = list(itertools.islice(probe_clientes, int(seconds / PROBE_INTERVAL_S) + 10))
    wal_before = asyncio.run(wal_reading(superuser_url))
    orders_before, batches_before = group_commit_totals(client, pipeline.url("pedidos-api"))
    with (
        MemoryWatch(pipeline.pids()) as memory,
        Prober(pipeline.url("pedidos-api"), pipeline.url("reports-api"), step_probes) as probe,
        cpu_of({**pipeline.pids(), "bench": os.getpid(), "prober": probe.pid}) as usage,
    ):
        http = oha(
            f"{pipeline.url('pedidos-api')}/pedidos", bodies=bodies, seconds=seconds, rate=rate
        )
    backlog_at_end = asyncio.run(behind(pipeline))
    orders_after, batches_after = group_commit_totals(client, pipeline.url("pedidos-api"))
    wal_after = asyncio.run(wal_reading(superuser_url))

    drained = drain_rate(lambda: asyncio.run(behind(pipeline)), target=0, timeout_s=120.0)
    fsyncs = wal_after["fsyncs"] - wal_before["fsyncs"]
    commits = wal_after["commits"] - wal_before["commits"]
    batches = batches_after - batches_before
    accepted = sum(n for code, n in http["statuses"].items() if code == "201")
    total_cpu = sum(usage["cpu_s"].values()) + http["loadgen_cpu_s"]
    step = {
        "offered_per_s": rate,
        "http": http,
        "accepted_per_s": round(accepted / seconds, 1),
        "order_to_report_ms": {
            "p50": percentile(probe.latencies_ms, 0.50),
            "p95": percentile(probe.latencies_ms, 0.95),
            "p99": percentile(probe.latencies_ms, 0.99),
            "max": round(max(probe.latencies_ms), 1) if probe.latencies_ms else None,
            "probes": len(probe.latencies_ms),
            "lost": probe.lost,
        },
        "backlog_at_end": backlog_at_end,
        "drain_after_step": drained,
        "cpu_s": {**usage["cpu_s"], "oha": http["loadgen_cpu_s"]},
        "wall_s": usage["wall_s"],
        "cpu_ms_per_order": round(total_cpu * 1000 / max(accepted, 1), 3),
        "cpu_busy_share": round(total_cpu / (usage["wall_s"] * (os.cpu_count() or 1)), 3),
        "peak_rss_mib": {name: round(mib, 1) for name, mib in memory.peak_mib.items()},
        "wal": {
            "commits": commits,
            "fsyncs": fsyncs,
            "commits_per_flush": round(commits / fsyncs, 2) if fsyncs else None,
            "orders_per_pedidos_commit": (
                round((orders_after - orders_before) / batches, 2) if batches else None
            ),
        },
    }
    # Kept up: answered at the offered rate without errors, and the pipeline behind it held
    # no more than about a second of orders at the end of the step.
    step["kept_up"] = bool(
        step["accepted_per_s"] >= 0.97 * rate
        and not http["errors"]
        and backlog_at_end <= max(rate, 200)
    )
    print(
        f"  {rate}/s: accepted {step['accepted_per_s']}/s, p99 {http['p99_ms']} ms, "
        f"to report p99 {step['order_to_report_ms']['p99']} ms, "
        f"backlog {backlog_at_end}, kept up: {step['kept_up']}",
        file=sys.stderr,
        flush=True,
    )
    return step


MAX_BACKLOG = 1_000_000
"""Orders of the backlog at most: its request bodies alone take about 7 GB on disk."""


def backlog_size(text: str) -> int:
    value = whole_positive(text)
    if value > MAX_BACKLOG:
        raise argparse.ArgumentTypeError(f"{text} is above {MAX_BACKLOG:,}")
    return value


def rising_rates(text: str) -> list[int]:
    """Offered rates, each a whole number of orders/s above the one before it."""
    rates = [whole_positive(part.strip()) for part in text.split(",")]
    if any(later <= earlier for earlier, later in itertools.pairwise(rates)):
        raise argparse.ArgumentTypeError(f"{text!r} does not rise from one rate to the next")
    return rates


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--step-seconds", type=positive, default=10.0, help="length of each open-model step"
    )
    parser.add_argument(
        "--half-seconds",
        type=positive,
        default=30.0,
        help="length of the run at half the sustained rate, where the latency targets are "
        "read: long enough for a p99 of about 150 probes and of every request",
    )
    parser.add_argument(
        "--half-settle-seconds",
        type=not_negative,
        default=30.0,
        help="how long half the sustained rate is offered before that run, while the stack "
        "recovers from the steps past saturation; read and reported like a step, not used "
        "for the targets (0 skips it)",
    )
    parser.add_argument(
        "--limit-seconds", type=positive, default=8.0, help="length of each limit measurement"
    )
    parser.add_argument(
        "--backlog",
        type=backlog_size,
        default=40_000,
        help="orders sent before each stage is measured alone on them",
    )
    parser.add_argument(
        "--rates",
        type=rising_rates,
        default="250,500,750,1000,1250,1500,1750,2000,2100,2200,2300,2400,2500,2600,2800,3000",
        help="offered orders/s of the first open-model steps, in order; the steps go on "
        "past the last by about 8 %% each until the pipeline no longer keeps up",
    )
    parser.add_argument(
        "--ramp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="go on past the last rate until saturation (--no-ramp: only the rates given, "
        "for a short run)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="the services' LOG_LEVEL; by default their own (info), as users run them",
    )
    parser.add_argument(
        "--skip-limits",
        action="store_true",
        help="skip the limits, for a quick comparison of two settings of the product; "
        "writes only the JSON, since the verdicts need the limits",
    )
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    oha_binary()
    limits.interrupt_on_sigterm()

    started = dt.datetime.now(dt.UTC)
    run: dict[str, Any] = {
        "benchmark": "suite",
        "when": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "settings": vars(arguments),
    }
    with tempfile.TemporaryDirectory(prefix="datasync-suite-") as scratch_name:
        scratch = Path(scratch_name)
        pipeline = Pipeline(scratch, port_offset=free_offset(), log_level=arguments.log_level)
        try:
            print("starting PostgreSQL and Kafka", file=sys.stderr, flush=True)
            pipeline.start_servers()
            if not arguments.skip_limits:
                print("measuring the limits", file=sys.stderr, flush=True)
                run["limits"] = measure_limits(pipeline, scratch, arguments.limit_seconds)

            with httpx.Client(timeout=10.0) as client:
                print("starting the services one by one", file=sys.stderr, flush=True)
                run["startup_s"] = {
                    name: pipeline.start([name], client)[name] for name in pipeline.services
                }
                time.sleep(5)
                run["idle_rss_mib"] = {
                    name: round(mib, 1) for name, mib in trees_rss_mib(pipeline.pids()).items()
                }
                seed_clientes(
                    client,
                    pipeline.url("clientes-api"),
                    [f"B{n:04d}" for n in range(LOAD_CLIENTES)],
                )

                print("measuring each stage alone on a backlog", file=sys.stderr, flush=True)
                run["stages"] = measure_stages(pipeline, client, scratch, arguments.backlog)

                # The whole pipeline cannot take more orders than its API takes alone.
                ceiling = run["stages"]["post_pedidos"]["requests_per_s"]
                planned = (
                    ramp(arguments.rates, ceiling=ceiling) if arguments.ramp else arguments.rates
                )
                probe_clientes = seed_probe_clientes(
                    client,
                    pipeline.url("clientes-api"),
                    seconds=len(planned) * arguments.step_seconds
                    + arguments.half_settle_seconds
                    + arguments.half_seconds,
                    runs=len(planned) + 2,
                )

                print("open-model steps", file=sys.stderr, flush=True)
                run["steps"] = open_model_steps(
                    pipeline,
                    client,
                    scratch,
                    rates=planned,
                    seconds=arguments.step_seconds,
                    probe_clientes=probe_clientes,
                )
                sustained = report.sustained_step(run["steps"])
                if sustained is not None:
                    half_rate = round(sustained["offered_per_s"] / 2)
                    print(f"half the sustained rate: {half_rate}/s", file=sys.stderr, flush=True)
                    halves = {
                        "half_saturation_settling": arguments.half_settle_seconds,
                        "half_saturation": arguments.half_seconds,
                    }
                    for key, seconds in halves.items():
                        if seconds:
                            run[key] = open_model_step(
                                pipeline,
                                client,
                                scratch,
                                rate=half_rate,
                                seconds=seconds,
                                probe_clientes=probe_clientes,
                            )
        finally:
            pipeline.close()

    RESULTS.mkdir(parents=True, exist_ok=True)
    if "limits" not in run:
        path = RESULTS / f"suite-{started:%Y%m%dT%H%M%SZ}-partial.json"
        path.write_text(json.dumps(run, indent=2) + "\n")
        print(f"written to {path.relative_to(REPO)} (no limits, so no verdicts)")
        return 0
    run["summary"] = report.summarize(run)
    stem = RESULTS / f"suite-{started:%Y%m%dT%H%M%SZ}"
    stem.with_suffix(".json").write_text(json.dumps(run, indent=2) + "\n")
    markdown = report.markdown(run)
    stem.with_suffix(".md").write_text(markdown)
    report.plots(run, stem)
    print(markdown)
    print(f"written to {stem.relative_to(REPO)}.json, .md and -*.png")
    return 0


def free_offset() -> int:
    """A port offset at which every service port of the stack is free, below Linux's
    ephemeral range, where a client connection's source port could take one first."""
    for offset in range(7_000, 28_000, 137):
        with contextlib.ExitStack() as stack:
            try:
                for spec in process_specs(offset):
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", spec.port))
            except OSError:
                continue
            return offset
    raise RuntimeError("no free port range for the services")


if __name__ == "__main__":
    sys.exit(main())
