"""The machinery of the fault-injection suite: a stack, a load generator and the checks.

Each scenario starts a fresh local stack (`python -m datasync.stack up`), creates customers,
sends a steady, bounded stream of orders and customer changes at a fixed rate while it injects
a fault into real processes (by PID, from the stack's `pids.json`), waits for the pipeline to
go idle and checks the outcome against the generator's own record of what was accepted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from tests.conftest import KAFKA_LIBS, REPO

START_TIMEOUT_S = 240.0
IDLE_TIMEOUT_S = 240.0
SERVICE_PORTS = (3000, 3001, 3002, 3003, 3100, 3101, 3111, 3112)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Listening ports are taken below Linux's ephemeral range (32768 and up): a port in it can
# be taken, between our check and the server's bind, as the source port of one of the many
# client connections the stack opens, and stay taken for that connection's life.
_FIRST_LISTEN_PORT = 10_000
_LAST_LISTEN_PORT = 32_000


def _free_block(relative_ports: Sequence[int]) -> int:
    """A base such that base + each of `relative_ports` is free, all below 32000."""
    span = max(relative_ports)
    for _ in range(200):
        base = random.randrange(_FIRST_LISTEN_PORT, _LAST_LISTEN_PORT - span)
        if all(_port_free(base + port) for port in relative_ports):
            return base
    raise RuntimeError("no free block of ports below the ephemeral range")


def free_listen_port() -> int:
    """A free port for a server to listen on, below the ephemeral range."""
    return _free_block((0,))


def free_offset() -> int:
    """An offset at which every service port of the stack is free."""
    return _free_block(SERVICE_PORTS)


def free_kafka_ports(brokers: int) -> int:
    """A first port such that the 2 x brokers ports from it are free."""
    return _free_block(range(2 * brokers))


@dataclass
class Stack:
    """A local stack started for one scenario, in its own data directory."""

    data_dir: Path
    brokers: int = 1
    offset: int = field(default_factory=free_offset)
    postgres_port: int = field(default_factory=free_listen_port)
    kafka_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    output: BinaryIO | None = None

    def url(self, base_port: int) -> str:
        return f"http://127.0.0.1:{base_port + self.offset}"

    def database_url(self, service: str) -> str:
        return f"postgresql://{service}:{service}@127.0.0.1:{self.postgres_port}/{service}"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_port + 2 * node}" for node in range(self.brokers))

    def start(self) -> None:
        if not self.kafka_port:
            self.kafka_port = free_kafka_ports(self.brokers)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.output = (self.data_dir / "stack.out").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datasync.stack",
                "up",
                "--data-dir",
                str(self.data_dir),
                "--postgres-port",
                str(self.postgres_port),
                "--kafka-port",
                str(self.kafka_port),
                "--brokers",
                str(self.brokers),
                "--port-offset",
                str(self.offset),
                "--kafka-libs",
                str(KAFKA_LIBS),
            ],
            cwd=REPO,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the stack exited:\n{self.tail()}"
            try:
                if httpx.get(f"{self.url(3003)}/status", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"the stack did not become healthy:\n{self.tail()}")

    def tail(self) -> str:
        path = self.data_dir / "stack.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for hold in self.data_dir.glob("hold-*"):
            hold.unlink()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.output is not None:
            self.output.close()

    def pids(self) -> dict[str, int]:
        return dict(json.loads((self.data_dir / "pids.json").read_text()))

    def signal(self, name: str, signum: int, *, group: bool = False) -> int:
        """Sends a signal to one process of the stack (or its whole process group); returns
        its PID."""
        pid = self.pids()[name]
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
        return pid

    def hold(self, name: str) -> None:
        """Keeps the stack from restarting `name` until `release`."""
        (self.data_dir / f"hold-{name}").touch()

    def release(self, name: str) -> None:
        (self.data_dir / f"hold-{name}").unlink(missing_ok=True)

    def wait_restarted(self, name: str, old_pid: int, *, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = self.pids().get(name)
            if pid and pid != old_pid:
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} was not restarted within {timeout_s} s")


@dataclass
class Outcome:
    """What the load generator saw: the orders and customer changes the system accepted."""

    accepted: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    rejected: list[tuple[str, int]] = field(default_factory=list)
    last_nome: dict[str, str] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: int = 0
    retry_after_missing: int = 0
    slowest_answer_s: float = 0.0
    sent: int = 0


class LoadGenerator:
    """Sends orders at a fixed rate whether or not answers are slow (an open model), and
    customer changes at a tenth of that rate, each retried like a careful client: on a
    transport error or a 503, the same request again, since the API is idempotent."""

    def __init__(self, stack: Stack, *, clientes: list[str], rate_per_s: float) -> None:
        self._stack = stack
        self._clientes = clientes
        self._rate_per_s = rate_per_s
        self._random = random.Random(7)
        self.outcome = Outcome()
        self._version = 0

    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, body: str
    ) -> httpx.Response | None:
        for attempt in range(40):
            started = time.monotonic()
            try:
                response = await client.request(
                    method, url, content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError:
                await asyncio.sleep(min(0.25 * (attempt + 1), 2.0))
                continue
            elapsed = time.monotonic() - started
            self.outcome.slowest_answer_s = max(self.outcome.slowest_answer_s, elapsed)
            self.outcome.statuses[response.status_code] = (
                self.outcome.statuses.get(response.status_code, 0) + 1
            )
            if response.status_code == 503:
                if "retry-after" not in response.headers:
                    self.outcome.retry_after_missing += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if response.status_code >= 500:
                self.outcome.server_errors += 1
                await asyncio.sleep(0.5)
                continue
            return response
        return None

    async def _order(self, client: httpx.AsyncClient, number: int) -> None:
        pedido_id = f"f{number:06d}"
        cliente_id = self._random.choice(self._clientes)
        valor = Decimal(self._random.randint(1, 99_999)) / 100
        body = f'{{"id": "{pedido_id}", "cliente-id": "{cliente_id}", "valor": {valor}}}'
        self.outcome.sent += 1
        response = await self._send(client, "POST", f"{self._stack.url(3000)}/pedidos", body)
        if response is None:
            self.outcome.failed.append(pedido_id)
        elif response.status_code in (200, 201):
            self.outcome.accepted[pedido_id] = (cliente_id, valor)
        else:
            self.outcome.rejected.append((pedido_id, response.status_code))

    async def _rename(self, client: httpx.AsyncClient) -> None:
        cliente_id = self._random.choice(self._clientes)
        self._version += 1
        nome = f"Cliente {cliente_id} v{self._version}"
        body = json.dumps({"nome": nome, "pais": f"Pais {self._version % 7}"})
        url = f"{self._stack.url(3001)}/clientes/{cliente_id}"
        response = await self._send(client, "PUT", url, body)
        if response is not None and response.status_code == 200:
            # Renames of one customer are sent one after another, so the last answered
            # is the last written.
            self.outcome.last_nome[cliente_id] = nome

    async def run(self, duration_s: float, *, during: Callable[[], Awaitable[None]]) -> Outcome:
        """Runs the load for `duration_s` while `during` injects the fault."""
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            orders: list[asyncio.Task[None]] = []
            renames: list[asyncio.Task[None]] = []
            fault = asyncio.create_task(during())
            started = time.monotonic()
            number = 0
            rename_lock = asyncio.Lock()

            async def serial_rename() -> None:
                async with rename_lock:
                    await self._rename(client)

            while (elapsed := time.monotonic() - started) < duration_s:
                due = int(elapsed * self._rate_per_s)
                while number < due:
                    orders.append(asyncio.create_task(self._order(client, number)))
                    if number % 10 == 0:
                        renames.append(asyncio.create_task(serial_rename()))
                    number += 1
                await asyncio.sleep(0.01)
            await fault
            await asyncio.gather(*orders, *renames)
        return self.outcome


async def create_clientes(stack: Stack, count: int) -> list[str]:
    clientes = [f"fc{n:03d}" for n in range(count)]
    async with httpx.AsyncClient(timeout=10) as client:
        for cliente_id in clientes:
            response = await client.post(
                f"{stack.url(3001)}/clientes",
                json={"id": cliente_id, "nome": f"Cliente {cliente_id}", "pais": "Pais 0"},
            )
            assert response.status_code in (200, 201), response.text
    return clientes


def status(stack: Stack) -> dict[str, Any]:
    return dict(httpx.get(f"{stack.url(3003)}/status", timeout=10).json())


def wait_until_idle(stack: Stack, *, orders: int) -> float:
    """Waits until reports count `orders`, no group lags and no outbox holds a row; returns
    how long that took."""
    started = time.monotonic()
    deadline = started + IDLE_TIMEOUT_S
    last: Any = None
    while time.monotonic() < deadline:
        try:
            resumo = httpx.get(f"{stack.url(3002)}/reports/resumo", timeout=5).json()
            current = status(stack)
            lag = sum(group["total"] for group in current["consumer-lag"].values())
            backlog = sum(item["pending"] for item in current["outbox-backlog"].values())
            last = (resumo, lag, backlog, current["degraded"])
            if resumo["pedidos"] >= orders and lag == 0 and backlog == 0:
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the pipeline did not go idle: {last}")


@dataclass
class Verdict:
    scenario: str
    sent: int
    accepted: int
    in_reports: int
    duplicates: int
    lost: int
    wrong_totals: int
    stale_customers: int
    recovery_s: float
    notes: dict[str, Any] = field(default_factory=dict)

    def holds(self) -> bool:
        return (
            self.duplicates == 0
            and self.lost == 0
            and self.wrong_totals == 0
            and self.stale_customers == 0
        )


def verify(stack: Stack, scenario: str, outcome: Outcome, *, recovery_s: float) -> Verdict:
    """Checks reports against what was accepted: counts and totals per customer, the grand
    total, and that each customer shows the last data written."""
    expected: dict[str, tuple[int, Decimal]] = {}
    for cliente_id, valor in outcome.accepted.values():
        count, total = expected.get(cliente_id, (0, Decimal(0)))
        expected[cliente_id] = (count + 1, total + valor)
    resumo = httpx.get(f"{stack.url(3002)}/reports/resumo", timeout=10).json()

    lost = duplicates = wrong = stale = 0
    for cliente_id, (count, total) in expected.items():
        report = httpx.get(f"{stack.url(3002)}/reports/clientes/{cliente_id}", timeout=10).json()
        if report["pedidos"] < count:
            lost += count - report["pedidos"]
        elif report["pedidos"] > count:
            duplicates += report["pedidos"] - count
        if Decimal(report["total"]) != total:
            wrong += 1
        if cliente_id in outcome.last_nome and report["nome"] != outcome.last_nome[cliente_id]:
            stale += 1
    grand_total = sum((total for _, total in expected.values()), Decimal(0))
    if Decimal(resumo["total"]) != grand_total:
        wrong += 1

    return Verdict(
        scenario=scenario,
        sent=outcome.sent,
        accepted=len(outcome.accepted),
        in_reports=int(resumo["pedidos"]),
        duplicates=duplicates + max(int(resumo["pedidos"]) - len(outcome.accepted), 0),
        lost=lost,
        wrong_totals=wrong,
        stale_customers=stale,
        recovery_s=round(recovery_s, 1),
        notes={
            "statuses": outcome.statuses,
            "failed": len(outcome.failed),
            "rejected": outcome.rejected[:5],
            "server_errors": outcome.server_errors,
            "slowest_answer_s": round(outcome.slowest_answer_s, 2),
        },
    )


RESULTS = REPO / "bench" / "results"


def record(verdict: Verdict) -> None:
    """Appends a scenario's verdict to this run's results file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"faults-{os.environ.get('FAULTS_RUN_ID', 'latest')}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(verdict.__dict__, default=str) + "\n")
