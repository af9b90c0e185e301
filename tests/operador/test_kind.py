"""A Reprocessing on a real cluster: kind, the chart with the operator enabled, and a rebuild
of the report views that ends Succeeded.

Needs Docker with a running engine, kind, kubectl and helm on PATH; it skips, naming what is
missing, otherwise. It builds the image and installs the database and Kafka operators the
chart relies on, so it takes many minutes. pytest-kind's --keep-cluster keeps the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_kind import KindCluster

from tests.kind import kind_cluster
from tests.operador.test_chart import CHART, NAMESPACE, OPERATOR_VALUES, REPO

pytestmark = pytest.mark.kind

CLUSTER_NAME = "data-sync-operador"
RELEASE = "data-sync"
IMAGE = "data-sync:operador-test"
INSTALL_TIMEOUT_S = 1800
REBUILD_TIMEOUT_S = 600.0
REPROCESSING = {
    "apiVersion": "datasync.io/v1alpha1",
    "kind": "Reprocessing",
    "metadata": {"name": "views", "namespace": NAMESPACE},
    "spec": {"service": "reports", "mode": "rebuild", "maxAttempts": 2},
}


def run(*command: str, kubeconfig: Path, timeout: float = INSTALL_TIMEOUT_S) -> str:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run(
        command, env=env, cwd=REPO, check=True, timeout=timeout, capture_output=True, text=True
    )
    return result.stdout


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindCluster]:
    yield from kind_cluster(CLUSTER_NAME, request, tmp_path_factory)


def get(kind: str, name: str, *, kubeconfig: Path) -> dict[str, Any]:
    """One object of the test's namespace, as kubectl reads it."""
    command = ["kubectl", "get", kind, name, "--namespace", NAMESPACE, "--output", "json"]
    found: dict[str, Any] = json.loads(run(*command, kubeconfig=kubeconfig, timeout=60))
    return found


def test_a_rebuild_declared_as_a_resource_runs_to_success(
    cluster: KindCluster, tmp_path: Path
) -> None:
    kubeconfig = cluster.kubeconfig_path
    values = tmp_path / "operator.yaml"
    values.write_text(yaml.safe_dump(OPERATOR_VALUES))
    manifest = tmp_path / "reprocessing.yaml"
    manifest.write_text(yaml.safe_dump(REPROCESSING))

    run("docker", "build", "--tag", IMAGE, ".", kubeconfig=kubeconfig)
    cluster.load_docker_image(IMAGE)
    run("bash", "k8s/install-operators.sh", "--kind", kubeconfig=kubeconfig)
    run(
        "helm", "upgrade", "--install", RELEASE, str(CHART),
        "--namespace", NAMESPACE, "--create-namespace",
        "--values", str(CHART / "values-dev.yaml"), "--values", str(values),
        "--set", f"image.tag={IMAGE.split(':')[1]}", "--timeout", "15m",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    run(
        "kubectl", "wait", "deployment", "--all", "--for=condition=Available",
        "--namespace", NAMESPACE, "--timeout=15m", kubeconfig=kubeconfig,
    )  # fmt: skip
    run("kubectl", "apply", "--filename", str(manifest), kubeconfig=kubeconfig)

    deadline = time.monotonic() + REBUILD_TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = get("reprocessing", "views", kubeconfig=kubeconfig).get("status", {})
        if status.get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(3)
    job = get("job", str(status.get("jobName")), kubeconfig=kubeconfig)

    assert status.get("phase") == "Succeeded", status
    assert job["status"]["succeeded"] == 1
    assert job["metadata"]["ownerReferences"][0]["name"] == "views"
