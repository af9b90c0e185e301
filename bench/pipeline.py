"""The whole data-sync stack run for a benchmark: servers, service processes, and readings.

Starts PostgreSQL and one Kafka broker in a scratch directory on free loopback ports, then
each service process on its own, so a benchmark can time start-ups, stop a stage to let a
backlog build, start it alone, and read CPU and memory of every process by PID.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import limits
import psutil

from datasync.local import LocalKafka
from datasync.stack import (
    Infrastructure,
    ProcessSpec,
    launch,
    migrate,
    monitor_targets,
    process_specs,
    service_env,
    start_infrastructure,
)

REPO = Path(__file__).resolve().parents[1]
KAFKA_LIBS = REPO / ".data" / "kafka-libs"


def free_port(*, pair: bool = False) -> int:
    """A free loopback port; with `pair`, one whose next port is free too (Kafka's
    controller listens beside its broker)."""
    while True:
        port = limits.free_port()
        if not pair:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, the ones that exited and
    were reaped included (PostgreSQL's backends of closed connections)."""
    try:
        return limits.tree_cpu_s(psutil.Process(pid)) or 0.0
    except psutil.NoSuchProcess:
        return 0.0


def trees_rss_mib(roots: dict[str, int]) -> dict[str, float]:
    """Resident memory of each process tree, in MiB, from one pass over this machine's
    processes (a pass per tree would take ten times as long, every sample)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    rss: dict[int, int] = {}
    for process in psutil.process_iter(["ppid", "memory_info"]):
        memory = process.info["memory_info"]
        if memory is not None:
            children[process.info["ppid"]].append(process.pid)
            rss[process.pid] = memory.rss

    def total(pid: int) -> int:
        return rss.get(pid, 0) + sum(total(child) for child in children[pid])

    return {name: total(pid) / 2**20 for name, pid in roots.items()}


@dataclass
class ServiceProcess:
    spec: ProcessSpec
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.spec.name} is not running"
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = launch(self.spec, self.env, output=log_file.fileno())
        self.started_at = time.monotonic()
        self.ready_after_s = None

    def wait_ready(self, client: httpx.Client, timeout_s: float = 60.0) -> float:
        """Seconds from the start of the process until `/health/ready` answered 200 on a
        port this process listens on: another process holding the port (a second run of
        a benchmark on the same machine) must not pass for it."""
        url = f"http://127.0.0.1:{self.spec.port}/health/ready"
        deadline = self.started_at + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url, timeout=1.0).status_code == 200 and self._listening():
                    self.ready_after_s = time.monotonic() - self.started_at
                    return self.ready_after_s
            time.sleep(0.02)
        raise RuntimeError(f"{self.spec.name} not ready in {timeout_s} s; see {self.log_path}")

    def _listening(self) -> bool:
        try:
            connections = psutil.Process(self.pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            return False
        return any(
            connection.status == psutil.CONN_LISTEN and connection.laddr.port == self.spec.port
            for connection in connections
        )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Pipeline:
    """PostgreSQL, Kafka and every service process of the stack, for one benchmark run."""

    scratch: Path
    port_offset: int
    log_level: str | None = None
    """None runs the services at their default level (info); a benchmark of the cost of
    logging may set another."""
    infrastructure: Infrastructure | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def start_servers(self) -> None:
        out = io.StringIO()
        self.infrastructure = start_infrastructure(
            self.scratch,
            {},
            postgres_port=free_port(),
            kafka_port=free_port(pair=True),
            brokers=1,
            kafka_libs=KAFKA_LIBS,
            out=out,
        )
        log_dir = self.scratch / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        # The defaults a user runs with: info logs, one line per request, into files.
        base_env = {**os.environ, "APP_ENV": "dev"}
        base_env.pop("LOG_LEVEL", None)
        if self.log_level is not None:
            base_env["LOG_LEVEL"] = self.log_level
        migrate(self.infrastructure, base_env, log_dir)
        specs = process_specs(self.port_offset)
        targets = monitor_targets(specs)
        for spec in specs:
            self.services[spec.name] = ServiceProcess(
                spec=spec,
                env=service_env(base_env, spec, self.infrastructure, targets=targets),
                log_path=log_dir / f"{spec.name}.log",
            )

    @property
    def servers(self) -> Infrastructure:
        assert self.infrastructure is not None
        return self.infrastructure

    @property
    def broker(self) -> LocalKafka:
        return self.servers.brokers[0]

    def database_url(self, service: str) -> str:
        return self.servers.database_urls[service]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.services[name].spec.port}"

    def start(self, names: list[str], client: httpx.Client) -> dict[str, float]:
        """Starts processes together; returns each one's seconds until ready."""
        for name in names:
            self.services[name].start()
        return {name: round(self.services[name].wait_ready(client), 3) for name in names}

    def stop(self, names: list[str]) -> None:
        for name in names:
            self.services[name].stop()

    def running(self) -> list[str]:
        return [name for name, service in self.services.items() if service.process is not None]

    def pids(self) -> dict[str, int]:
        """Every process to account for: the running services, PostgreSQL and Kafka."""
        found = {name: self.services[name].pid for name in self.running()}
        if self.servers.postgres is not None and self.servers.postgres.pid:
            found["postgres"] = self.servers.postgres.pid
        if self.broker.pid:
            found["kafka"] = self.broker.pid
        return found

    def close(self) -> None:
        self.stop(self.running())
        if self.infrastructure is not None:
            self.infrastructure.stop()


@contextlib.contextmanager
def cpu_of(pids: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Measures the CPU seconds each process spends inside the block, and the wall time.
    This process, when listed, counts without its children (the services, oha)."""

    def reading_of(pid: int) -> float:
        return limits.this_process_cpu_s() if pid == os.getpid() else process_tree_cpu_s(pid)

    before = {name: reading_of(pid) for name, pid in pids.items()}
    started = time.monotonic()
    reading: dict[str, Any] = {}
    yield reading
    reading["wall_s"] = round(time.monotonic() - started, 3)
    reading["cpu_s"] = {
        name: round(reading_of(pid) - before[name], 3) for name, pid in pids.items()
    }
