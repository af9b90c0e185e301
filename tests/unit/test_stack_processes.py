"""The local stack's processes: which run at a lower CPU priority, and that they do."""

from __future__ import annotations

import os
import subprocess

from datasync.stack import WORKER_NICENESS, ProcessSpec, launch, process_specs


def test_relays_and_consumers_yield_the_cpu_to_the_apis() -> None:
    niceness = {spec.name: spec.niceness for spec in process_specs()}

    assert niceness["pedidos-api"] == niceness["reports-api"] == 0
    assert niceness["pedidos-relay"] == niceness["reports-consumer"] == WORKER_NICENESS > 0


def test_a_process_is_launched_at_the_priority_of_its_spec() -> None:
    # Without a database URL the process refuses its configuration and exits on its own.
    spec = ProcessSpec("pedidos-relay", "pedidos", "relay", port=1, niceness=WORKER_NICENESS)
    env = {"PATH": os.environ.get("PATH", ""), "LOG_LEVEL": "warning"}

    process = launch(spec, env, output=subprocess.DEVNULL)
    try:
        priority = os.getpriority(os.PRIO_PROCESS, process.pid)
    finally:
        process.wait(timeout=60)

    assert priority == os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS
