"""A kind cluster for the tests that need a real Kubernetes: what they need, and the cluster.

Shared by the chart's end-to-end test and the operator's; both skip, naming what is missing,
on machines without Docker or kind.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_kind import KindCluster

from tests.conftest import REPO


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run a kind cluster, in words; empty when nothing."""
    tools = ("kind", "kubectl", "helm", "docker")
    missing = [f"{tool} is not on PATH" for tool in tools if shutil.which(tool) is None]
    if shutil.which("docker"):
        engine = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if engine.returncode != 0:
            answer = (engine.stderr.strip().splitlines() or ["no answer"])[0]
            missing.append(f"docker cannot reach an engine ({answer})")
    return missing


def kind_cluster(
    name: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    also_missing: list[str] | None = None,
) -> Iterator[KindCluster]:
    """Creates a kind cluster from k8s/kind-cluster.yaml, yields it, and deletes it unless
    pytest-kind's --keep-cluster was given. Skips when anything is missing."""
    missing = missing_prerequisites() + (also_missing or [])
    if missing:
        pytest.skip("; ".join(missing))
    workdir = tmp_path_factory.mktemp("kind")
    # pytest-kind keeps its files in the working directory; a temporary one keeps them out
    # of the repository. The binaries on PATH are used, never downloaded.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        cluster = KindCluster(
            name,
            kubeconfig=workdir / "kubeconfig",
            kind_path=Path(str(shutil.which("kind"))),
            kubectl_path=Path(str(shutil.which("kubectl"))),
        )
        cluster.create(config_file=REPO / "k8s" / "kind-cluster.yaml")
    yield cluster
    if not request.config.getoption("keep_cluster"):
        cluster.delete()
