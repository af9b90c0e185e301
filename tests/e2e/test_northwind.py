"""End to end: the whole local stack, fed the Northwind orders and customers through REST.

Expected figures are computed here from the CSV files, independently of the importer, so the
test checks the pipeline against the data rather than against itself.
"""

from __future__ import annotations

import asyncio
import csv
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest

from datasync.importer import import_northwind
from tests.conftest import KAFKA_LIBS, NORTHWIND, REPO
from tests.faults.harness import free_kafka_ports, free_listen_port, free_offset

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (NORTHWIND / "orders.csv").is_file(),
        reason="the Northwind data is read from ../shared/data/northwind, which is absent",
    ),
]

START_TIMEOUT_S = 240.0
IDLE_TIMEOUT_S = 180.0
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Expected:
    pedidos: int
    clientes: int
    total: Decimal
    por_cliente: dict[str, tuple[int, Decimal]]
    por_pais: dict[str | None, tuple[int, Decimal]]


def expected_from_csv() -> Expected:
    def rows(name: str) -> list[dict[str, str]]:
        with (NORTHWIND / name).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    lines: dict[str, Decimal] = defaultdict(Decimal)
    for line in rows("order_details.csv"):
        lines[line["order_id"]] += (
            Decimal(line["unit_price"])
            * Decimal(line["quantity"])
            * (1 - Decimal(line["discount"]))
        )
    country = {row["customer_id"]: row["country"] for row in rows("customers.csv")}
    por_cliente: dict[str, tuple[int, Decimal]] = {}
    por_pais: dict[str | None, tuple[int, Decimal]] = {}
    for order in rows("orders.csv"):
        valor = lines[order["order_id"]].quantize(CENT, rounding=ROUND_HALF_UP)
        count, total = por_cliente.get(order["customer_id"], (0, Decimal(0)))
        por_cliente[order["customer_id"]] = (count + 1, total + valor)
        pais = country.get(order["customer_id"])
        count, total = por_pais.get(pais, (0, Decimal(0)))
        por_pais[pais] = (count + 1, total + valor)
    return Expected(
        pedidos=sum(count for count, _ in por_cliente.values()),
        clientes=len(por_cliente),
        total=sum((total for _, total in por_cliente.values()), Decimal(0)),
        por_cliente=por_cliente,
        por_pais=por_pais,
    )


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    data_dir: Path
    offset: int
    output: Path
    output_handle: BinaryIO

    def url(self, base_port: int) -> str:
        return f"http://127.0.0.1:{base_port + self.offset}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=120)
        self.output_handle.close()


def start_stack(data_dir: Path, *, offset: int, postgres_port: int, kafka_port: int) -> Stack:
    output = data_dir.parent / f"{data_dir.name}-stack.out"
    handle = output.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datasync.stack",
            "up",
            "--data-dir",
            str(data_dir),
            "--postgres-port",
            str(postgres_port),
            "--kafka-port",
            str(kafka_port),
            "--port-offset",
            str(offset),
            "--kafka-libs",
            str(KAFKA_LIBS),
        ],
        cwd=REPO,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    stack = Stack(process, data_dir, offset, output, handle)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stack.stop()
            raise AssertionError(f"the stack exited:\n{output.read_text()[-3000:]}")
        try:
            if httpx.get(f"{stack.url(3003)}/status", timeout=5).status_code == 200:
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stack.stop()
    raise AssertionError(f"the stack did not become healthy:\n{output.read_text()[-3000:]}")


def wait_until_idle(stack: Stack, *, pedidos: int) -> dict[str, Any]:
    """Waits until every order is counted, no consumer lags and no outbox holds a row."""
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    while True:
        resumo = httpx.get(f"{stack.url(3002)}/reports/resumo", timeout=5).json()
        status = httpx.get(f"{stack.url(3003)}/status", timeout=10).json()
        lag = sum(group["total"] for group in status["consumer-lag"].values())
        backlog = sum(item["pending"] for item in status["outbox-backlog"].values())
        if resumo["pedidos"] == pedidos and lag == 0 and backlog == 0:
            return dict(resumo)
        assert time.monotonic() < deadline, f"not idle: {resumo}, lag {lag}, backlog {backlog}"
        time.sleep(0.5)


def reports_snapshot(stack: Stack) -> dict[str, Any]:
    base = stack.url(3002)
    return {
        "resumo": httpx.get(f"{base}/reports/resumo").json(),
        "top": httpx.get(f"{base}/reports/top-clientes", params={"limit": 1000}).json(),
        "pais": httpx.get(f"{base}/reports/vendas-por-pais").json(),
        "segmento": httpx.get(f"{base}/reports/vendas-por-segmento").json(),
    }


def assert_matches(snapshot: dict[str, Any], expected: Expected) -> None:
    assert snapshot["resumo"] == {
        "pedidos": expected.pedidos,
        "clientes": expected.clientes,
        "total": f"{expected.total:.2f}",
    }
    por_cliente = {
        row["cliente-id"]: (row["pedidos"], Decimal(row["total"])) for row in snapshot["top"]
    }
    assert por_cliente == expected.por_cliente
    por_pais = {row["pais"]: (row["pedidos"], Decimal(row["total"])) for row in snapshot["pais"]}
    assert por_pais == expected.por_pais


def load(stack: Stack, *, orders_first: bool) -> Any:
    return asyncio.run(
        import_northwind(
            NORTHWIND,
            pedidos_url=stack.url(3000),
            clientes_url=stack.url(3001),
            concurrency=16,
            orders_first=orders_first,
            progress=False,
        )
    )


@pytest.fixture
def ports() -> dict[str, int]:
    return {
        "offset": free_offset(),
        "postgres_port": free_listen_port(),
        "kafka_port": free_kafka_ports(1),
    }


def test_customers_then_orders_reach_exact_reports_and_survive_a_restart(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    expected = expected_from_csv()
    stack = start_stack(tmp_path / "data", **ports)
    try:
        report = load(stack, orders_first=False)
        wait_until_idle(stack, pedidos=expected.pedidos)
        first = reports_snapshot(stack)

        again = load(stack, orders_first=False)
        wait_until_idle(stack, pedidos=expected.pedidos)
        second = reports_snapshot(stack)

        stack.stop()
        stack = start_stack(tmp_path / "data", **ports)
        after_restart = reports_snapshot(stack)
        pedido = httpx.get(f"{stack.url(3000)}/pedidos/10248").json()
    finally:
        stack.stop()

    assert report.ok, report.issues()
    assert report.created == 91 + 830
    assert_matches(first, expected)
    assert again.created == 0
    assert again.unchanged == 91 + 830
    assert second == first
    assert after_restart == first
    assert pedido["valor"] == "440.00"


def test_orders_then_customers_reach_the_same_reports(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    expected = expected_from_csv()
    stack = start_stack(tmp_path / "data", **ports)
    try:
        report = load(stack, orders_first=True)
        wait_until_idle(stack, pedidos=expected.pedidos)
        snapshot = reports_snapshot(stack)
    finally:
        stack.stop()

    assert report.ok, report.issues()
    assert_matches(snapshot, expected)
