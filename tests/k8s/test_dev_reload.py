"""The dev image's reloader (deploy/dev/reload.py) restarts its child when source changes,
and otherwise behaves like the child: same exit code, same graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.k8s.conftest import REPO

pytestmark = pytest.mark.k8s

RELOADER = REPO / "deploy" / "dev" / "reload.py"
WAIT_S = 15.0

# A stand-in service: `python -m toy exit N` exits with N; `python -m toy serve` prints that
# it started and runs until SIGTERM, then prints that it stopped.
TOY_MAIN = """
import signal, sys, time
if sys.argv[1] == "exit":
    sys.exit(int(sys.argv[2]))
print("started", flush=True)
signal.signal(signal.SIGTERM, lambda *_: (print("stopped", flush=True), sys.exit(0)))
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    package = tmp_path / "toy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(TOY_MAIN)
    return tmp_path


def run_reloader(source: Path, output: Path, *arguments: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "RELOAD_WATCH_DIR": str(source),
        "RELOAD_POLL_INTERVAL_S": "0.1",
    }
    with output.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, str(RELOADER), *arguments],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not true after {WAIT_S} s"
        time.sleep(0.05)


def test_the_exit_code_of_the_child_is_the_reloaders(source: Path, tmp_path: Path) -> None:
    reloader = run_reloader(source, tmp_path / "out.log", "toy", "exit", "3")

    assert reloader.wait(WAIT_S) == 3


def test_a_changed_source_file_restarts_the_child(source: Path, tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    reloader = run_reloader(source, log, "toy", "serve")
    try:
        eventually(lambda: log.read_text().count("started") == 1)

        (source / "toy" / "handlers.py").write_text("CHANGED = True\n")
        eventually(lambda: log.read_text().count("started") == 2)
        reloader.send_signal(signal.SIGTERM)

        assert reloader.wait(WAIT_S) == 0
    finally:
        reloader.kill()
    output = log.read_text()

    assert "handlers.py changed, restarting python -m toy serve" in output
    assert output.count("stopped") == 2
