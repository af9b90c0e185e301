"""The Locust profile, run headless for a few seconds against a whole local stack.

This checks that the profile still speaks the APIs' language: every kind of request is made
and none fails (an answer the profile does not expect counts as a failure). It measures
nothing; `bench/` does that. Locust runs in a subprocess because importing it here would let
gevent monkey-patch the test process.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Stack

pytestmark = pytest.mark.e2e

LOCUSTFILE = Path(__file__).with_name("pedidos_locust.py")
USERS = 4
RUN_TIME_S = 8
STOP_TIMEOUT_S = 5
# Start-up, the run and the stop take about 15 s; the rest is room for a busy 2-core machine.
LOCUST_TIMEOUT_S = 90
EXPECTED_KINDS = {
    ("POST", "/pedidos"),
    ("PUT", "/clientes/[id]"),
    ("POST", "/clientes"),
    ("GET", "/reports/resumo"),
    ("GET", "/reports/clientes/[id]"),
    ("GET", "/reports/top-clientes"),
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Outside pytest's base temporary directory: any pytest session starting meanwhile sets
    # that directory back to 0700, locking the stack's unprivileged PostgreSQL user (under
    # root) out of its data.
    scratch = Path(tempfile.mkdtemp(prefix="datasync-load-"))
    started = Stack(scratch / "stack")
    try:
        started.start()
        yield started
    finally:
        started.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def run_locust(stack: Stack, workdir: Path) -> tuple[int, str]:
    """Runs the profile headless; returns its exit code and output. Killed by PID if it
    overruns, so a hung generator cannot hold the suite."""
    # LOCUST_* variables of the caller's shell would silently change the run.
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
    env |= {
        "PEDIDOS_URL": stack.url(3000),
        "CLIENTES_URL": stack.url(3001),
        "REPORTS_URL": stack.url(3002),
    }
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "-t",
        f"{RUN_TIME_S}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--only-summary",
        "--exit-code-on-error",
        "1",
        # The JSON file holds the final counts, written at shutdown; the CSV files are
        # rewritten every second while running, so they may miss the last second, but they
        # alone carry the error texts.
        "--json-file",
        str(workdir / "locust"),
        "--csv",
        str(workdir / "locust"),
        "--loglevel",
        "WARNING",
    ]
    # The working directory is the test's own, so no locust.conf lying around is read.
    with subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        try:
            output, _ = process.communicate(timeout=LOCUST_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(
                f"locust ran past {LOCUST_TIMEOUT_S} s and was killed:\n"
                f"{output.decode(errors='replace')[-3000:]}"
            )
    return process.returncode, output.decode(errors="replace")


def csv_rows(path: Path) -> list[dict[str, str]]:
    # Absent when locust stopped before running, e.g. not installed; its output says why.
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_locust_profile_makes_every_kind_of_request_and_none_fails(
    stack: Stack, tmp_path: Path
) -> None:
    exit_code, output = run_locust(stack, tmp_path)

    errors = [
        *csv_rows(tmp_path / "locust_failures.csv"),
        *csv_rows(tmp_path / "locust_exceptions.csv"),
    ]
    assert exit_code == 0, f"{errors}\n{output[-3000:]}"
    stats = {
        (entry["method"], entry["name"]): entry
        for entry in json.loads((tmp_path / "locust.json").read_text(encoding="utf-8"))
    }
    # A request without name= would show here under its full URL.
    assert set(stats) == EXPECTED_KINDS
    for kind, entry in stats.items():
        assert entry["num_requests"] > 0, kind
        assert entry["num_failures"] == 0, (kind, errors)
    assert errors == []
