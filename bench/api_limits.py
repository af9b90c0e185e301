"""`POST /pedidos` against the limits of its two halves, measured side by side.

    .venv/bin/python bench/api_limits.py [--seconds 10] [--connections 32]

Needs `wrk` (Debian package `wrk`). Starts its own PostgreSQL on a free loopback port, then
measures in one run:

- `R_asyncpg`: the durable write alone, the same transaction the service runs (insert the
  order, insert its outbox row, commit with `synchronous_commit` on), in a tight asyncpg
  loop at the same concurrency;
- `R_http`: Litestar decoding the real order body and answering 201, with no database,
  served by uvicorn the way the service is;
- `POST /pedidos`: the real pedidos API on that database, at saturation.

The API cannot beat `1 / (1/R_http + 1/R_asyncpg)`: every request pays both. The ratio to
that bound is what the benchmark reports; wrk's closed loop measures saturation, not the
latency at a given rate. Results go to `bench/results/api-limits-<time>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from datasync.local import LocalPostgres

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

# Each wrk thread numbers its own requests, so every order id is new.
WRK_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"id": "b%s-%d-%d", "cliente-id": "C%03d", "valor": %d.%02d}',
    run, thread_id, counter, counter % 89, counter % 5000 + 1, counter % 100)
  return wrk.format("POST", "/pedidos", {["Content-Type"] = "application/json"}, body)
end
"""

HTTP_ONLY_APP = '''
"""The pedidos request path without a database: decode, validate, answer."""
import datetime as dt
from typing import Any

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


def wrk(port: int, *, seconds: int, connections: int, script: Path) -> dict[str, float]:
    """Runs wrk against POST /pedidos; returns requests/s and latency percentiles in ms."""
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    found_rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found_rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    rate = float(found_rate.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures = {"requests_per_s": rate, "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0}
    for label in ("50%", "90%", "99%"):
        found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output)
        if found:
            value, unit = float(found.group(1)), found.group(2)
            figures[f"p{label[:-1]}_ms"] = (
                value / 1000 if unit == "us" else (value * 1000 if unit == "s" else value)
            )
    return figures


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


def serve(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port)
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2

    run: dict[str, Any] = {
        "benchmark": "api_limits",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "seconds": arguments.seconds,
        "connections": arguments.connections,
    }
    with tempfile.TemporaryDirectory(prefix="datasync-bench-") as scratch:
        base = Path(scratch)
        script = base / "pedidos.lua"
        script.write_text(f'run = "{uuid.uuid4().hex[:6]}"\n' + WRK_SCRIPT)
        (base / "http_only.py").write_text(HTTP_ONLY_APP)
        postgres = LocalPostgres(base / "postgres", port=free_port())
        postgres.start()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            url = postgres.ensure_database("pedidos", owner="pedidos", password="pedidos")
            env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "warning"}
            subprocess.run(
                [sys.executable, "-m", "pedidos", "migrate"],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
            run["r_asyncpg"] = asyncio.run(
                asyncpg_rate(url, seconds=arguments.seconds, connections=arguments.connections)
            )

            http_port = free_port()
            processes.append(
                serve(
                    [
                        "-m",
                        "uvicorn",
                        "http_only:app",
                        "--port",
                        str(http_port),
                        "--log-level",
                        "warning",
                        "--app-dir",
                        str(base),
                    ],
                    env,
                    http_port,
                )
            )
            run["r_http"] = wrk(
                http_port,
                seconds=arguments.seconds,
                connections=arguments.connections,
                script=script,
            )

            api_port = free_port()
            processes.append(
                serve(
                    ["-m", "pedidos", "api"],
                    {
                        **env,
                        "HTTP_PORT": str(api_port),
                        "DATABASE_POOL_SIZE": "20",
                        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                    },
                    api_port,
                )
            )
            run["post_pedidos"] = wrk(
                api_port,
                seconds=arguments.seconds,
                connections=arguments.connections,
                script=script,
            )
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            postgres.stop()

    r_http = run["r_http"]["requests_per_s"]
    bound = 1 / (1 / r_http + 1 / run["r_asyncpg"])
    run["bound_requests_per_s"] = round(bound, 1)
    run["post_over_bound"] = round(run["post_pedidos"]["requests_per_s"] / bound, 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"api-limits-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps(run, indent=2))
    print()
    print("| what | requests/s |")
    print("| --- | ---: |")
    print(f"| R_asyncpg (insert order + outbox, commit) | {run['r_asyncpg']:,.0f} |")
    print(f"| R_http (decode, validate, answer) | {r_http:,.0f} |")
    print(f"| bound 1/(1/R_http + 1/R_asyncpg) | {bound:,.0f} |")
    print(f"| POST /pedidos | {run['post_pedidos']['requests_per_s']:,.0f} |")
    print(f"| POST over bound | {run['post_over_bound']:.2f} |")
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
