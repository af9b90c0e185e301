"""`python -m operador` as a process: settings, login, both probes and a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port
from tests.operador.conftest import NAMESPACE, WAIT_S, Cluster, api_deployment, eventually


def kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig whose current context is the API double."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kmock",
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "not-checked"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def status_of(url: str) -> int | None:
    """The HTTP status `url` answers with, or None while nothing listens."""
    async with httpx.AsyncClient(timeout=1.0) as client:
        try:
            return (await client.get(url)).status_code
        except httpx.TransportError:
            return None


async def test_the_operator_process_serves_its_probes_and_runs_reprocessings(
    cluster: Cluster, tmp_path: Path
) -> None:
    port = free_port()
    health = f"http://127.0.0.1:{port}/health"
    server = str(cluster.emulator.url).rstrip("/")
    environment = {
        **os.environ,
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", server)),
        "WATCH_NAMESPACE": NAMESPACE,
        "OPERATOR_HEALTH_PORT": str(port),
        "OPERATOR_FOLLOW_INTERVAL_S": "0.1",
        "LOG_FORMAT": "json",
    }
    cluster.deploy(api_deployment("reports"))
    log = tmp_path / "operator.log"

    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "operador", cwd=tmp_path, env=environment,
            stdout=output, stderr=output,
        )  # fmt: skip
    try:
        await eventually(
            lambda: status_of(f"{health}/live"),
            what=lambda: f"the operator's liveness endpoint; its log:\n{log.read_text()}",
        )
        answers = [await status_of(f"{health}/{path}") for path in ("live", "ready", "other")]
        await cluster.create("views", {"service": "reports", "mode": "rebuild"})
        await cluster.jobs.started("views-1")
        await cluster.phase("views", "Running")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=WAIT_S)

    assert answers == [200, 200, 404]
    assert code == 0, log.read_text()


def test_a_missing_namespace_stops_the_process_with_a_message(tmp_path: Path) -> None:
    environment = {**os.environ, "WATCH_NAMESPACE": ""}

    result = subprocess.run(
        [sys.executable, "-m", "operador"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )

    assert result.returncode == 78
    assert result.stderr == "configuration error: WATCH_NAMESPACE is required\n"
