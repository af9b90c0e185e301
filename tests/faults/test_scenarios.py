"""Faults under load: every order answered 2xx reaches the reports exactly once, to the cent.

Run all scenarios: `make faults`; one: `pytest tests/faults -k kafka_killed --all-faults`.
The fast ones (poison records, a killed broker, killed service processes) also run in
`make test`; the others need `--all-faults`. Each appends its verdict to
`bench/results/faults-<run>.jsonl`; `docs/reliability.md` shows a run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import free_port
from tests.faults.harness import (
    LoadGenerator,
    Stack,
    create_clientes,
    record,
    status,
    verify,
    wait_until_idle,
)

pytestmark = pytest.mark.faults

RATE_PER_S = float(os.environ.get("FAULTS_RATE_PER_S", "40"))
DURATION_S = float(os.environ.get("FAULTS_DURATION_S", "30"))
slow = pytest.mark.slow_fault


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    brokers = 3 if "three_brokers" in request.node.name else 1
    started = Stack(tmp_path / "stack", brokers=brokers)
    try:
        started.start()
        yield started
    finally:
        started.stop()


async def wait_status_ok(stack: Stack, *, since: float, timeout_s: float = 180.0) -> float:
    """Seconds from `since` until GET /status answers ok."""
    async with httpx.AsyncClient(timeout=5) as client:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                response = await client.get(f"{stack.url(3003)}/status")
                if response.status_code == 200:
                    return time.monotonic() - since
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError("the system did not report itself healthy again")


async def run_scenario(stack: Stack, name: str, fault: object) -> None:
    """Creates customers, runs the load with `fault`, waits for idle and checks."""
    clientes = await create_clientes(stack, 40)
    generator = LoadGenerator(stack, clientes=clientes, rate_per_s=RATE_PER_S)
    recovery: list[float] = []

    async def during() -> None:
        await asyncio.sleep(DURATION_S / 3)
        injected = time.monotonic()
        await fault(stack)  # type: ignore[operator]
        recovery.append(await wait_status_ok(stack, since=injected))

    outcome = await generator.run(DURATION_S, during=during)
    idle_s = await asyncio.to_thread(wait_until_idle, stack, orders=len(outcome.accepted))
    verdict = verify(stack, name, outcome, recovery_s=recovery[0] if recovery else 0.0)
    verdict.notes["idle_after_load_s"] = round(idle_s, 1)
    record(verdict)

    assert outcome.server_errors == 0, verdict.notes
    assert not outcome.rejected, verdict.notes
    assert verdict.holds(), verdict


async def test_kafka_killed_with_sigkill_and_restarted(stack: Stack) -> None:
    async def kill_broker(target: Stack) -> None:
        pid = target.signal("kafka-1", signal.SIGKILL)
        await asyncio.to_thread(target.wait_restarted, "kafka-1", pid)

    await run_scenario(stack, "1 Kafka broker SIGKILL, restarted", kill_broker)


async def test_each_service_process_killed_with_sigkill_and_restarted(stack: Stack) -> None:
    names = [
        "pedidos-api",
        "pedidos-relay",
        "clientes-api",
        "clientes-relay",
        "clientes-consumer",
        "reports-consumer",
        "reports-api",
    ]

    async def kill_each(target: Stack) -> None:
        for name in names:
            pid = target.signal(name, signal.SIGKILL)
            await asyncio.to_thread(target.wait_restarted, name, pid)
            await asyncio.sleep(1)

    await run_scenario(stack, "3 each service process SIGKILL, restarted", kill_each)


async def produce_poison(bootstrap_servers: str) -> int:
    """Three kinds of poison on each consumed topic; returns how many records."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    sent = 0
    try:
        for topic in ("pedidos", "clientes", "pedidos-enriquecidos"):
            headers = [
                ("ce_id", f"poison-{topic}-{time.time_ns()}".encode()),
                ("ce_type", b"datasync.pedidos.PedidoCriado"),
                ("ce_source", b"/faults"),
                ("ce_time", b"2024-01-01T00:00:00+00:00"),
                ("ce_subject", b"poison"),
                ("ce_schemaversion", b"1"),
            ]
            await producer.send_and_wait(topic, b"\x00 not json", key=b"poison", headers=headers)
            await producer.send_and_wait(
                topic, b'{"id": 1, "valor": []}', key=b"poison", headers=headers
            )
            await producer.send_and_wait(topic, b"{}", key=b"poison", headers=headers[:1])
            sent += 3
    finally:
        await producer.stop()
    return sent


async def test_poison_records_are_dead_lettered_while_the_pipeline_keeps_moving(
    stack: Stack,
) -> None:
    async def poison(target: Stack) -> None:
        await produce_poison(target.bootstrap_servers)

    await run_scenario(stack, "7 poison records on every topic", poison)

    listing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "datasync.reprocess", "dead-letters", "--topic", "pedidos"],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    async with httpx.AsyncClient(timeout=10) as client:
        metrics = (await client.get(f"{stack.url(3112)}/metrics")).text
    # pedidos is read by two groups (clientes and reports): each poison record twice.
    assert len(listing.stdout.splitlines()) == 6
    assert 'datasync_consumer_records_total{outcome="dead_lettered",topic="pedidos"}' in metrics


@slow
async def test_postgres_restarted_mid_load(stack: Stack) -> None:
    async def restart_postgres(target: Stack) -> None:
        target.hold("postgres")
        # The whole process group, backends included: what a crash of the machine does.
        pid = target.signal("postgres", signal.SIGKILL, group=True)
        await asyncio.sleep(5)
        answered = await _probe_post(target)
        target.release("postgres")
        await asyncio.to_thread(target.wait_restarted, "postgres", pid)
        assert answered.status_code == 503, answered.text
        assert answered.headers["retry-after"] == "1"

    await run_scenario(stack, "4 PostgreSQL killed, down 5 s, restarted", restart_postgres)


async def _probe_post(stack: Stack) -> httpx.Response:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.post(
            f"{stack.url(3000)}/pedidos",
            json={"id": f"probe-{time.time_ns()}", "cliente-id": "fc000", "valor": 1},
        )
    assert time.monotonic() - started < 10, "the outage answer was not fast"
    return response


@slow
async def test_kafka_unreachable_for_a_minute(stack: Stack) -> None:
    async def freeze_kafka(target: Stack) -> None:
        pid = target.signal("kafka-1", signal.SIGSTOP)
        try:
            await asyncio.sleep(50)
            degraded = await asyncio.to_thread(status, target)
            await asyncio.sleep(10)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert degraded["status"] == "degraded"
        assert any("kafka" in part for part in degraded["degraded"]), degraded["degraded"]
        assert degraded["outbox-backlog"]["pedidos"]["pending"] > 0, degraded["outbox-backlog"]

    await run_scenario(stack, "5 Kafka unreachable (frozen) for 60 s", freeze_kafka)


@slow
async def test_three_brokers_one_killed_and_left_down_then_back(stack: Stack) -> None:
    async def kill_one(target: Stack) -> None:
        target.hold("kafka-2")
        pid = target.signal("kafka-2", signal.SIGKILL)
        await asyncio.sleep(DURATION_S / 3)
        target.release("kafka-2")
        await asyncio.to_thread(target.wait_restarted, "kafka-2", pid)

    await run_scenario(stack, "2 three brokers, one killed, down, back", kill_one)


def start_consumer(service: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", service, "consumer"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@slow
async def test_consumers_scaled_from_one_to_three_and_back(stack: Stack) -> None:
    async def scale(target: Stack) -> None:
        extra: list[subprocess.Popen[bytes]] = []
        for service in ("reports", "clientes"):
            for _ in range(2):
                env = {
                    **os.environ,
                    "DATABASE_URL": target.database_url(service),
                    "KAFKA_BOOTSTRAP_SERVERS": target.bootstrap_servers,
                    "HTTP_PORT": str(free_port()),
                    "LOG_LEVEL": "warning",
                }
                extra.append(await asyncio.to_thread(start_consumer, service, env))
        await asyncio.sleep(DURATION_S / 3)
        for process in extra:
            process.send_signal(signal.SIGTERM)
        for process in extra:
            await asyncio.to_thread(process.wait, 60)

    await run_scenario(stack, "6 consumers scaled 1 -> 3 -> 1", scale)


@slow
async def test_sigterm_to_every_process_during_load(stack: Stack) -> None:
    async def terminate_all(target: Stack) -> None:
        names = [name for name in target.pids() if not name.startswith(("kafka", "postgres"))]
        old = {name: target.signal(name, signal.SIGTERM) for name in names}
        for name, pid in old.items():
            await asyncio.to_thread(target.wait_restarted, name, pid)

    await run_scenario(stack, "8 SIGTERM to every service process", terminate_all)


def test_a_hang_up_stops_the_whole_stack(stack: Stack) -> None:
    """A closed terminal (SIGHUP to the supervisor) stops every child, servers included,
    instead of leaving them running without a supervisor and holding their ports."""
    children = stack.pids()
    assert stack.process is not None

    stack.process.send_signal(signal.SIGHUP)
    stack.process.wait(timeout=120)

    alive = {name: pid for name, pid in children.items() if _running(pid)}
    for pid in alive.values():
        # Orphans of a failed run are this test's own; they must not outlive it.
        os.kill(pid, signal.SIGKILL)
    assert alive == {}, f"left running after SIGHUP: {alive}"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
