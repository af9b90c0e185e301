"""Runs `python -m <args>` and restarts it whenever a Python source file changes.

The dev image's entrypoint (Dockerfile, stage `dev`). Tilt and skaffold sync edited files
into the running container; the service processes do not reload code themselves, so this
parent notices the change and restarts its child, which keeps the container, and with it
the synced files, alive.

- A child that exits on its own ends the reloader with the same code, so a migration Job
  still completes and a crash is still seen (and restarted) by Kubernetes.
- SIGTERM and SIGINT are passed on to the child, which shuts down as it would in
  production; the reloader then exits with its code.

Standard library only: the dev image has nothing the runtime image lacks but this file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

WATCHED = Path(os.environ.get("RELOAD_WATCH_DIR", "/app/services"))
POLL_INTERVAL_S = float(os.environ.get("RELOAD_POLL_INTERVAL_S", "1"))
STOP_TIMEOUT_S = 30.0
"""How long a child may take to shut down before it is killed; above the processes' own
20 s graceful shutdown."""


def snapshot(root: Path) -> dict[str, float]:
    """Modification time of every .py file under root. A few hundred stat calls a second
    cost nothing next to the services, and need no inotify support from the container."""
    return {str(path): path.stat().st_mtime for path in root.rglob("*.py")}


def say(message: str) -> None:
    print(f"reload: {message}", file=sys.stderr, flush=True)  # noqa: T201 - to the dev log


def start(arguments: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *arguments])  # noqa: S603 - our own command


def stop(child: subprocess.Popen[bytes]) -> int:
    child.send_signal(signal.SIGTERM)
    try:
        return child.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        say(f"child did not stop within {STOP_TIMEOUT_S:.0f} s, killing it")
        child.kill()
        return child.wait()


def main(arguments: list[str]) -> int:
    if not arguments:
        say("usage: reload.py <service> <command>")
        return 2
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    seen = snapshot(WATCHED)
    child = start(arguments)
    while True:
        try:
            code = child.wait(POLL_INTERVAL_S)
        except subprocess.TimeoutExpired:
            pass
        else:
            return code
        if stopping:
            return stop(child)

        current = snapshot(WATCHED)
        if current != seen:
            changed = sorted(set(current.items()) ^ set(seen.items()))
            say(f"{changed[0][0]} changed, restarting python -m {' '.join(arguments)}")
            seen = current
            stop(child)
            # Coalesce the rest of a sync that is still writing files.
            time.sleep(POLL_INTERVAL_S)
            seen = snapshot(WATCHED)
            child = start(arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
