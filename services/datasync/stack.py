"""The local stack: every part of data-sync on one machine, from one command.

`python -m datasync.stack up` starts (or reuses) PostgreSQL and Kafka, creates the databases,
roles and topics, applies each service's migrations, then runs every service process (APIs,
outbox relays, consumers) as a child it supervises: a process that dies is restarted with a
growing pause. Ctrl-C (or SIGTERM) stops the services first, so they finish requests and
commit offsets, then Kafka, then PostgreSQL. All state lives under one data directory, so the
next `up` finds every order where it was left.

Servers given through the environment are used instead of local ones:
`PEDIDOS_DATABASE_URL`, `CLIENTES_DATABASE_URL`, `REPORTS_DATABASE_URL`,
`MONITORAMENTO_DATABASE_URL` and `KAFKA_BOOTSTRAP_SERVERS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from datasync import events
from datasync.local.kafka import LocalKafka, ensure_kafka_jars, ensure_topics
from datasync.local.postgres import LocalPostgres
from datasync.settings import read_environment

SERVICES: Final = ("pedidos", "clientes", "reports", "monitoramento")
RESTARTED: Final = -1
EX_CONFIG: Final = 78
"""Exit code of a process that refused its configuration: restarting it would not help."""


STALLED_SHUTDOWN_S: Final = 3.0
"""How long PostgreSQL may stay in a shutdown before the stack ends it and starts it again."""

WORKER_NICENESS: Final = 5
"""CPU priority of the relays and consumers against the APIs' 0, on one shared machine. When
the cores are busy a request is served first and the background work waits a little, which
it absorbs by taking larger batches; the scheduler still gives it about a third of the
weight of an API, so it is slowed, never starved."""


@dataclass(frozen=True)
class ProcessSpec:
    """One service process: `python -m <service> <command>` serving HTTP on `port`."""

    name: str
    service: str
    command: str
    port: int
    niceness: int = 0
    """Added to the CPU niceness the process inherits from whoever launches it."""


def launch(
    spec: ProcessSpec,
    env: Mapping[str, str],
    *,
    output: TextIO | int,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Starts the process of `spec` at its CPU priority, its output into `output`."""
    process = subprocess.Popen(
        [sys.executable, "-m", spec.service, spec.command],
        env=dict(env),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=new_session,
    )
    if spec.niceness:
        # Relative to the priority the process inherited, as `nice` does: lowering one's own
        # priority needs no privilege. A process that already exited has none to lower.
        with contextlib.suppress(ProcessLookupError):
            inherited = os.getpriority(os.PRIO_PROCESS, process.pid)
            os.setpriority(os.PRIO_PROCESS, process.pid, inherited + spec.niceness)
    return process


def process_specs(port_offset: int = 0) -> list[ProcessSpec]:
    """Every process of the stack. APIs listen on 3000-3003; relays on 310x and consumers on
    311x serve only their health and metrics."""
    layout = [
        ("pedidos-api", "pedidos", "api", 3000),
        ("clientes-api", "clientes", "api", 3001),
        ("reports-api", "reports", "api", 3002),
        ("monitoramento-api", "monitoramento", "api", 3003),
        ("pedidos-relay", "pedidos", "relay", 3100),
        ("clientes-relay", "clientes", "relay", 3101),
        ("clientes-consumer", "clientes", "consumer", 3111),
        ("reports-consumer", "reports", "consumer", 3112),
    ]
    return [
        ProcessSpec(
            name, svc, cmd, port + port_offset, niceness=0 if cmd == "api" else WORKER_NICENESS
        )
        for name, svc, cmd, port in layout
    ]


def monitor_targets(specs: Sequence[ProcessSpec], *, host: str = "127.0.0.1") -> str:
    return ",".join(
        f"{spec.service}/{spec.command}=http://{host}:{spec.port}"
        for spec in specs
        if spec.service != "monitoramento"
    )


@dataclass
class Supervised:
    spec: ProcessSpec
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start_at: float = 0.0
    started_at: float = 0.0
    log_file: TextIO | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.log_file is None:
            self.log_file = self.log_path.open("a", encoding="utf-8")
        # Own session: Ctrl-C reaches the supervisor only, which then stops the children in
        # order instead of all at once.
        self.process = launch(self.spec, self.env, output=self.log_file, new_session=True)
        self.started_at = time.monotonic()

    def tend(self, now: float, out: TextIO) -> int | None:
        """Restarts the process after a pause if it exited. Returns EX_CONFIG when it
        refused its configuration (restarting would not help), RESTARTED when started again.
        """
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return None
        if code == EX_CONFIG:
            print(f"{self.spec.name} refused its configuration; see {self.log_path}", file=out)
            return EX_CONFIG
        if self.next_start_at == 0.0:
            # Doubling pause, capped at 30 s, so a crash loop does not eat the CPU; a process
            # that had run for a minute starts the count again.
            if now - self.started_at > 60:
                self.restarts = 0
            delay_s = min(2.0**self.restarts, 30.0)
            self.next_start_at = now + delay_s
            print(
                f"{self.spec.name} exited with {code}; restarting in {delay_s:.0f} s "
                f"(see {self.log_path})",
                file=out,
                flush=True,
            )
        elif now >= self.next_start_at:
            self.restarts += 1
            self.next_start_at = 0.0
            self.start()
            return RESTARTED
        return None

    def live(self) -> bool:
        """Whether the process answers its liveness probe."""
        url = f"http://127.0.0.1:{self.spec.port}/health/live"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


class StackError(RuntimeError):
    """The stack could not be prepared; the message says what to do."""


@dataclass
class Infrastructure:
    """The servers of the stack: started here, or given through the environment."""

    database_urls: dict[str, str]
    bootstrap_servers: str
    postgres: LocalPostgres | None = None
    brokers: list[LocalKafka] = field(default_factory=list)
    _postgres_stopping_since: float | None = field(default=None, init=False, repr=False)

    def stop(self) -> None:
        for broker in self.brokers:
            broker.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def restart_dead(self, out: TextIO, *, held: set[str]) -> bool:
        """Starts again any server of ours that died, except those `held` down on purpose
        (fault tests); returns whether one was started."""
        restarted = False
        self._end_a_stalled_shutdown(out, held=held)
        if self.postgres is not None and not self.postgres.running and "postgres" not in held:
            print("PostgreSQL died; starting it again", file=out, flush=True)
            try:
                self.postgres.start()
                restarted = True
            except RuntimeError as error:
                # Backends of a crashed server may hold its shared memory for a moment;
                # the next round of the supervisor tries again.
                print(f"PostgreSQL did not start yet: {error}", file=out, flush=True)
        for broker in self.brokers:
            if not broker.running and f"kafka-{broker.node_id}" not in held:
                print(f"Kafka node {broker.node_id} died; starting it again", file=out, flush=True)
                broker.start(wait=False)
                restarted = True
        return restarted

    def _end_a_stalled_shutdown(self, out: TextIO, *, held: set[str]) -> None:
        # Told to shut down politely, PostgreSQL waits for every session to end, and the
        # services' pools keep theirs: it would refuse new connections for good. A shutdown
        # that lasts is finished the fast way, which ends the sessions, and then it is
        # started again like a server that died.
        if self.postgres is None or "postgres" in held or not self.postgres.shutting_down:
            self._postgres_stopping_since = None
            return
        now = time.monotonic()
        if self._postgres_stopping_since is None:
            self._postgres_stopping_since = now
        elif now - self._postgres_stopping_since >= STALLED_SHUTDOWN_S:
            print(
                "PostgreSQL has been shutting down for "
                f"{STALLED_SHUTDOWN_S:.0f} s, held by open sessions; ending it to restart it",
                file=out,
                flush=True,
            )
            self.postgres.stop()
            self._postgres_stopping_since = None

    def pids(self) -> dict[str, int]:
        found = {"postgres": self.postgres.pid} if self.postgres and self.postgres.pid else {}
        for broker in self.brokers:
            if broker.pid:
                found[f"kafka-{broker.node_id}"] = broker.pid
        return found


def start_infrastructure(
    data_dir: Path,
    env: Mapping[str, str],
    *,
    postgres_port: int,
    kafka_port: int,
    brokers: int,
    kafka_libs: Path,
    out: TextIO,
) -> Infrastructure:
    """Starts what the environment does not provide and prepares databases and topics."""
    urls = {
        service: env[f"{service.upper()}_DATABASE_URL"]
        for service in SERVICES
        if env.get(f"{service.upper()}_DATABASE_URL")
    }
    infrastructure = Infrastructure(database_urls=urls, bootstrap_servers="")
    try:
        if len(urls) < len(SERVICES):
            print(f"starting PostgreSQL on 127.0.0.1:{postgres_port}", file=out, flush=True)
            postgres = LocalPostgres(data_dir / "postgres", port=postgres_port)
            postgres.start()
            infrastructure.postgres = postgres
            for service in SERVICES:
                if service not in urls:
                    urls[service] = postgres.ensure_database(
                        service, owner=service, password=service
                    )

        replication = min(brokers, 3)
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            infrastructure.bootstrap_servers = env["KAFKA_BOOTSTRAP_SERVERS"]
        else:
            print("preparing the Kafka broker jars (mvn)", file=out, flush=True)
            lib_dir = ensure_kafka_jars(kafka_libs)
            nodes = [
                (node, kafka_port + 2 * (node - 1), kafka_port + 2 * (node - 1) + 1)
                for node in range(1, brokers + 1)
            ]
            for node, port, controller_port in nodes:
                broker = LocalKafka(
                    data_dir / ("kafka" if brokers == 1 else f"kafka-{node}"),
                    lib_dir=lib_dir,
                    port=port,
                    controller_port=controller_port,
                    node_id=node,
                    cluster=nodes if brokers > 1 else None,
                    replication_factor=replication,
                    min_insync_replicas=2 if brokers >= 3 else 1,
                )
                print(f"starting Kafka node {node} on 127.0.0.1:{port}", file=out, flush=True)
                broker.start(wait=False)
                infrastructure.brokers.append(broker)
            for broker in infrastructure.brokers:
                broker.wait_until_ready()
            infrastructure.bootstrap_servers = ",".join(
                broker.bootstrap_servers for broker in infrastructure.brokers
            )

        asyncio.run(
            ensure_topics(
                infrastructure.bootstrap_servers,
                topic_partitions(),
                replication_factor=replication,
            )
        )
    except BaseException:
        infrastructure.stop()
        raise
    return infrastructure


def topic_partitions(partitions: int = 3) -> dict[str, int]:
    """Every topic and its dead-letter topic. Three partitions let up to three consumers
    of a group share the load; dead letters are few, one partition keeps them in order."""
    topics = dict.fromkeys(events.ALL_TOPICS, partitions)
    topics.update({events.dead_letter_topic(topic): 1 for topic in events.ALL_TOPICS})
    return topics


def service_env(
    base: Mapping[str, str],
    spec: ProcessSpec,
    infrastructure: Infrastructure,
    *,
    targets: str,
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "DATABASE_URL": infrastructure.database_urls[spec.service],
            "KAFKA_BOOTSTRAP_SERVERS": infrastructure.bootstrap_servers,
            "HTTP_PORT": str(spec.port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if spec.service == "monitoramento":
        env.setdefault("MONITOR_TARGETS", targets)
    return env


def migrate(infrastructure: Infrastructure, base_env: Mapping[str, str], log_dir: Path) -> None:
    """Applies each service's migrations, each as its own `python -m <service> migrate`."""
    for service in SERVICES:
        env = {**base_env, "DATABASE_URL": infrastructure.database_urls[service]}
        env["KAFKA_BOOTSTRAP_SERVERS"] = infrastructure.bootstrap_servers
        with (log_dir / f"{service}-migrate.log").open("a", encoding="utf-8") as log_file:
            result = subprocess.run(
                [sys.executable, "-m", service, "migrate"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )
        if result.returncode != 0:
            raise StackError(
                f"migrations of {service} failed (exit {result.returncode}); "
                f"see {log_dir / f'{service}-migrate.log'}"
            )


class StopRequestedError(Exception):
    """Raised from the signal handler to leave the supervision loop."""


def supervise(
    children: Sequence[Supervised],
    *,
    out: TextIO,
    infrastructure: Infrastructure | None = None,
    pid_file: Path | None = None,
    banner: str | None = None,
) -> int:
    """Keeps every child running until a signal; returns the exit code of the stack.

    The servers the stack started itself (PostgreSQL, Kafka) are restarted too when they
    die, so a crash of either is an outage the services ride out, not the end of the stack.
    The PIDs of everything running are kept in `pid_file`, for tools that inject faults.
    """

    def on_signal(signum: int, _frame: object) -> None:
        raise StopRequestedError(signum)

    # SIGHUP too: a closed terminal or a dropped SSH session must stop the stack, not leave
    # its servers running without a supervisor.
    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    exit_code = 0
    try:
        for child in children:
            child.start()
        _write_pids(pid_file, children, infrastructure)
        announced = banner is None
        while True:
            now = time.monotonic()
            if not announced and all(child.live() for child in children):
                # Said only once every process answers, so the README's curl works at once.
                print(banner, file=out, flush=True)
                announced = True
            held = _held(pid_file)
            if infrastructure is not None and infrastructure.restart_dead(out, held=held):
                _write_pids(pid_file, children, infrastructure)
            for child in children:
                if child.spec.name in held:
                    continue
                outcome = child.tend(now, out)
                if outcome == EX_CONFIG:
                    return EX_CONFIG
                if outcome == RESTARTED:
                    _write_pids(pid_file, children, infrastructure)
            time.sleep(0.2)
    except StopRequestedError:
        print("\nstopping the services", file=out, flush=True)
    finally:
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code


def _held(pid_file: Path | None) -> set[str]:
    """Names of processes a fault test wants left down: `hold-<name>` files beside the PIDs."""
    if pid_file is None:
        return set()
    return {path.name.removeprefix("hold-") for path in pid_file.parent.glob("hold-*")}


def _write_pids(
    pid_file: Path | None,
    children: Sequence[Supervised],
    infrastructure: Infrastructure | None,
) -> None:
    if pid_file is None:
        return
    pids = {
        child.spec.name: child.process.pid
        for child in children
        if child.process is not None and child.process.poll() is None
    }
    if infrastructure is not None:
        pids.update(infrastructure.pids())
    scratch = pid_file.with_suffix(".tmp")
    scratch.write_text(json.dumps(pids, indent=2) + "\n")
    scratch.replace(pid_file)


def stop_children(children: Sequence[Supervised], *, timeout_s: float = 30.0) -> None:
    """SIGTERM to every child, then SIGKILL to those still running after `timeout_s`."""
    for child in children:
        child.stop()
    deadline = time.monotonic() + timeout_s
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        child.close()


def up(arguments: argparse.Namespace, *, out: TextIO = sys.stdout) -> int:
    data_dir: Path = arguments.data_dir.absolute()
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = read_environment()
    specs = process_specs(arguments.port_offset)
    wanted = [(spec.name, spec.port) for spec in specs]
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        wanted += [
            (f"kafka node {node + 1}", arguments.kafka_port + offset)
            for node in range(arguments.brokers)
            for offset in (2 * node, 2 * node + 1)
        ]
    if any(not env.get(f"{service.upper()}_DATABASE_URL") for service in SERVICES):
        wanted.append(("postgres", arguments.postgres_port))
    taken = [f"{name} ({port})" for name, port in wanted if not _port_free(port)]
    if taken:
        print(
            "error: these ports are already in use: " + ", ".join(taken) + ". Stop what "
            "holds them, or move the stack with --port-offset, --kafka-port, --postgres-port.",
            file=out,
            flush=True,
        )
        return 1

    try:
        infrastructure = start_infrastructure(
            data_dir,
            env,
            postgres_port=arguments.postgres_port,
            kafka_port=arguments.kafka_port,
            brokers=arguments.brokers,
            kafka_libs=(arguments.kafka_libs or data_dir / "kafka-libs").absolute(),
            out=out,
        )
    except RuntimeError as error:  # LocalPostgresError, LocalKafkaError: they say what to do
        print(f"error: {error}", file=out, flush=True)
        return 1

    try:
        print("applying migrations", file=out, flush=True)
        migrate(infrastructure, env, log_dir)
        targets = monitor_targets(specs)
        children = [
            Supervised(
                spec=spec,
                env=service_env(env, spec, infrastructure, targets=targets),
                log_path=log_dir / f"{spec.name}.log",
            )
            for spec in specs
        ]
        print("starting the services", file=out, flush=True)
        return supervise(
            children,
            out=out,
            infrastructure=infrastructure,
            pid_file=data_dir / "pids.json",
            banner=_banner(specs, infrastructure, log_dir),
        )
    except StackError as error:
        print(f"error: {error}", file=out, flush=True)
        return 1
    finally:
        print("stopping Kafka and PostgreSQL", file=out, flush=True)
        infrastructure.stop()
        print("stopped", file=out, flush=True)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves bind: a port left in TIME_WAIT by the previous run is
        # free to listen on; only one somebody listens on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _banner(specs: Sequence[ProcessSpec], infrastructure: Infrastructure, log_dir: Path) -> str:
    lines = ["", "data-sync is running:"]
    for spec in specs:
        kind = "REST API" if spec.command == "api" else "health and metrics"
        lines.append(f"  {spec.name:<20} http://127.0.0.1:{spec.port}  ({kind})")
    lines.append(f"  {'kafka':<20} {infrastructure.bootstrap_servers}")
    for service, url in infrastructure.database_urls.items():
        lines.append(f"  {service + ' db':<20} {_without_password(url)}")
    lines.append(f"  API docs: http://127.0.0.1:{specs[0].port}/schema/swagger (each API)")
    lines.append(f"  logs: {log_dir}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{location}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasync.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start everything and supervise it until Ctrl-C")
    start.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data"),
        help="where PostgreSQL, Kafka, logs and pids.json live between runs",
    )
    start.add_argument(
        "--postgres-port",
        type=int,
        default=55432,
        help="loopback port of the local PostgreSQL (unused when every *_DATABASE_URL is set)",
    )
    start.add_argument(
        "--kafka-port",
        type=int,
        default=9092,
        help="client port of the first Kafka node; its controller listens on the next port, "
        "and further nodes take the two ports after that",
    )
    start.add_argument(
        "--brokers",
        type=int,
        default=1,
        choices=(1, 3),
        help="3 runs a KRaft cluster with replication factor 3 and min.insync.replicas=2",
    )
    start.add_argument(
        "--kafka-libs",
        type=Path,
        default=None,
        help="where the broker jars are kept (default: DATA_DIR/kafka-libs)",
    )
    start.add_argument(
        "--port-offset", type=int, default=0, help="added to every service port (3000...)"
    )
    arguments = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return up(arguments)
    return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
