"""The order-to-report probe of the benchmark suite, run by it as a process of its own.

    prober.py <pedidos url> <reports url> <cliente id>...

Every 200 ms it places an order for the next customer of the list (each seeded, with no
other orders) and polls that customer's report every 10 ms until the order shows. It stops
when its standard input closes, and prints `{"latencies_ms": [...], "lost": n}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator

import httpx

PROBE_INTERVAL_S = 0.2
POLL_INTERVAL_S = 0.01
"""Finer polling would load the reports API more than it sharpens the percentiles."""
GIVE_UP_S = 30.0


class Probes:
    def __init__(self, pedidos_url: str, reports_url: str, clientes: Iterator[str]) -> None:
        self._pedidos_url = pedidos_url
        self._reports_url = reports_url
        self._clientes = clientes
        self.latencies_ms: list[float] = []
        self.lost = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            probes: set[asyncio.Task[None]] = set()
            while not stop.is_set():
                cliente = next(self._clientes, None)
                if cliente is None:
                    break
                task = asyncio.create_task(self._probe(client, cliente))
                probes.add(task)
                task.add_done_callback(probes.discard)
                await asyncio.sleep(PROBE_INTERVAL_S)
            await asyncio.gather(*probes, return_exceptions=True)

    async def _probe(self, client: httpx.AsyncClient, cliente: str) -> None:
        body = {"id": f"probe-{cliente}", "cliente-id": cliente, "valor": 1.0}
        sent = time.perf_counter()
        response = await client.post(f"{self._pedidos_url}/pedidos", json=body)
        if response.status_code != 201:
            self.lost += 1
            return
        while time.perf_counter() < sent + GIVE_UP_S:
            found = await client.get(f"{self._reports_url}/reports/clientes/{cliente}")
            if found.status_code == 200 and found.json()["pedidos"] >= 1:
                self.latencies_ms.append((time.perf_counter() - sent) * 1000)
                return
            await asyncio.sleep(POLL_INTERVAL_S)
        self.lost += 1


async def main(pedidos_url: str, reports_url: str, clientes: list[str]) -> dict[str, object]:
    # Standard input is read on the event loop: a thread blocked reading it would still
    # hold its lock when the interpreter shuts down, which aborts the process.
    stdin = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin
    )
    stop = asyncio.Event()

    async def stop_at_end_of_input() -> None:
        await stdin.read()
        stop.set()

    watching = asyncio.create_task(stop_at_end_of_input())
    probes = Probes(pedidos_url, reports_url, iter(clientes))
    await probes.run(stop)
    await watching
    return {"latencies_ms": probes.latencies_ms, "lost": probes.lost}


if __name__ == "__main__":
    pedidos, reports, *ids = sys.argv[1:]
    print(json.dumps(asyncio.run(main(pedidos, reports, ids))))
