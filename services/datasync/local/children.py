"""Server processes that must not outlive the Python process that started them."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess


class ChildRegistry:
    """The server processes one module started, stopped when the interpreter exits.

    They run in sessions of their own (so a Ctrl-C reaches only their supervisor), which
    also means nothing else stops them if the caller ends without its cleanup: a script that
    raised, a test session interrupted twice. SIGKILL of the caller cannot be caught; such
    leftovers are reported by the next start (port or lock in use).
    """

    def __init__(self, *, stop_signal: signal.Signals, timeout_s: float = 15.0) -> None:
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stop_signal = stop_signal
        self._timeout_s = timeout_s
        atexit.register(self.stop_all)

    def add(self, process: subprocess.Popen[bytes]) -> None:
        self._running.add(process)

    def discard(self, process: subprocess.Popen[bytes]) -> None:
        self._running.discard(process)

    def stop_all(self) -> None:
        """The polite signal to every child, then SIGKILL to the group of any that lingers."""
        for process in list(self._running):
            if process.poll() is None:
                process.send_signal(self._stop_signal)
        for process in list(self._running):
            try:
                process.wait(timeout=self._timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=self._timeout_s)
        self._running.clear()
