"""How the benchmark suite reads a stage's rate, the memory of processes, and the latency
from an order to its report."""

from __future__ import annotations

import argparse
import http.server
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import httpx
import pytest

from datasync.stack import ProcessSpec

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def suite() -> Iterator[ModuleType]:
    # The suite imports its sibling modules by name, as it does when run as a script.
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("suite")
    finally:
        sys.path.remove(str(BENCH))


def test_a_stage_rate_leaves_out_a_slow_start_and_a_partial_end(suite: ModuleType) -> None:
    # A backlog of 1,000 rows read every 20 ms: 10 rows a reading while the process warms
    # up, then 100, then two partial batches.
    moves = iter([0] * 3 + [10] * 10 + [100] * 8 + [60, 40] + [0] * 1000)
    count = 1_000

    def read_count() -> int:
        nonlocal count
        count -= next(moves)
        return count

    figures = suite.drain_rate(read_count, target=0)

    assert figures["moved"] == 1_000
    assert figures["reached_target"]
    # 100 rows a reading against 1,000 rows over 19 readings, whatever a reading takes.
    assert figures["per_s"] / figures["first_to_last_per_s"] == pytest.approx(1.9, rel=0.1)


def test_the_ramp_goes_on_past_the_given_rates_up_to_its_ceiling(suite: ModuleType) -> None:
    assert suite.ramp([250, 500], ceiling=900) == [250, 500, 600, 700, 800, 900]
    # Past 1,250/s a step is 8 %, rounded to 100/s.
    assert suite.ramp([2000, 3000], ceiling=4000) == [2000, 3000, 3200, 3500, 3800]
    assert len(suite.ramp([250], ceiling=1e9, most=40)) == 40
    assert suite.ramp([250, 500], ceiling=100) == [250, 500]


def test_the_memory_of_a_process_tree_counts_its_children(suite: ModuleType) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alone = suite.trees_rss_mib({"child": child.pid})["child"]
        together = suite.trees_rss_mib({"this": os.getpid()})["this"]
    finally:
        child.kill()
        child.wait()

    assert alone > 1
    assert together >= alone + 1


class _FakeStack(http.server.BaseHTTPRequestHandler):
    """A pedidos API that accepts every order, and a reports API that shows it from the
    second read of the customer's report on."""

    reads: ClassVar[dict[str, int]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(201, {})

    def do_GET(self) -> None:
        cliente = self.path.rsplit("/", 1)[-1]
        self.reads[cliente] = self.reads.get(cliente, 0) + 1
        self._answer(200, {"pedidos": int(self.reads[cliente] >= 2)})

    def _answer(self, status: int, body: dict[str, int]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


def test_the_prober_times_each_order_until_its_report_shows_it_and_stops_on_request(
    suite: ModuleType,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeStack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with suite.Prober(url, url, [f"E{n}" for n in range(50)]) as prober:
            # A probe every 200 ms: about five before it is told to stop, not fifty.
            time.sleep(1.0)
    finally:
        server.shutdown()
        server.server_close()

    assert prober.lost == 0
    assert 2 <= len(prober.latencies_ms) <= 8
    # Every order was found on the second read, 10 ms after the first.
    assert all(latency >= 10 for latency in prober.latencies_ms)
    assert set(_FakeStack.reads.values()) == {2}


@pytest.mark.parametrize("rates", ["abc", "", "250,,500", "250.5", "0,500", "-250,500", "500,250"])
def test_offered_rates_must_be_whole_and_rising(suite: ModuleType, rates: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        suite.rising_rates(rates)


def test_offered_rates_are_read_in_order(suite: ModuleType) -> None:
    assert suite.rising_rates("250, 500,1000") == [250, 500, 1000]


@pytest.mark.parametrize("seconds", ["0", "-3", "nan", "inf"])
def test_a_run_length_must_be_above_zero(suite: ModuleType, seconds: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        suite.positive(seconds)


def test_a_failing_load_generator_is_reported_with_its_own_words(
    suite: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "oha"
    fake.write_text("#!/bin/sh\necho 'unexpected argument found' >&2\nexit 2\n")
    fake.chmod(0o755)
    monkeypatch.setattr(suite, "oha_binary", lambda: str(fake))

    with pytest.raises(RuntimeError, match="oha exited with 2: unexpected argument found"):
        suite.oha("http://127.0.0.1:9/", bodies=None, requests=1)


def test_a_backlog_is_bounded_by_the_disk_its_bodies_take(suite: ModuleType) -> None:
    assert suite.backlog_size("40000") == 40_000
    with pytest.raises(argparse.ArgumentTypeError):
        suite.backlog_size("99999999999999999999")


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_runs_the_clean_up_of_a_benchmark_to_its_end(signals: int) -> None:
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        "import limits\n"
        "limits.interrupt_on_sigterm()\n"
        "try:\n"
        "    print('running', flush=True)\n"
        "    time.sleep(30)\n"
        "finally:\n"
        "    print('cleaning up', flush=True)\n"
        "    time.sleep(0.5)\n"
        "    print('cleaned up', flush=True)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "running\n"

    process.terminate()
    if signals == 2:
        # A second signal, as an impatient user or a runner sends it, mid clean-up.
        assert process.stdout.readline() == "cleaning up\n"
        process.terminate()
    output, _ = process.communicate(timeout=10)

    assert output.endswith("cleaned up\n")


class _AlwaysReady(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_a_service_is_not_ready_while_another_process_answers_on_its_port(
    suite: ModuleType, tmp_path: Path
) -> None:
    pipeline = sys.modules["pipeline"]  # imported by the suite, from bench/
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysReady)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    spec = ProcessSpec("pedidos-api", "pedidos", "api", other.server_port)
    service = pipeline.ServiceProcess(spec=spec, env={}, log_path=tmp_path / "log")
    # A process of its own that never listens, as a service that failed to bind would.
    service.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    service.started_at = time.monotonic()
    try:
        with httpx.Client() as client, pytest.raises(RuntimeError, match="not ready"):
            service.wait_ready(client, timeout_s=1.0)
    finally:
        service.process.kill()
        service.process.wait()
        other.shutdown()
        other.server_close()
