"""The whole system on a real cluster: kind, the pinned operators, the chart with the dev
values, the Northwind import through the ingress, and the report it adds up to.

Needs Docker with a running engine, kind, kubectl and helm on PATH, and the Northwind data
in ../shared/data/northwind; it skips, naming what is missing, otherwise. It builds the
image, pulls the operators' images and takes a quarter of an hour or more. pytest-kind's
--keep-cluster keeps the cluster afterwards; k8s/README.md has the steps by hand.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_kind import KindCluster

from tests.conftest import NORTHWIND
from tests.k8s.conftest import CHART, NAMESPACE, RELEASE, REPO
from tests.kind import kind_cluster

pytestmark = [pytest.mark.k8s, pytest.mark.kind]

CLUSTER_NAME = "data-sync-test"
IMAGE_TAG = "kind-test"
# k8s/kind-cluster.yaml maps the ingress controller's port 80 to this address.
INGRESS = "http://127.0.0.1:8080"
INSTALL_TIMEOUT_S = 1800
SETTLE_TIMEOUT_S = 600.0


def run(*command: str, kubeconfig: Path, timeout: float = INSTALL_TIMEOUT_S) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    subprocess.run(command, env=env, cwd=REPO, check=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindCluster]:
    absent = [] if (NORTHWIND / "orders.csv").is_file() else [f"no Northwind data at {NORTHWIND}"]
    yield from kind_cluster(CLUSTER_NAME, request, tmp_path_factory, also_missing=absent)


def customers_with_orders() -> int:
    with (NORTHWIND / "orders.csv").open(newline="", encoding="utf-8") as handle:
        return len({row["customer_id"] for row in csv.DictReader(handle)})


def settled_summary() -> dict[str, Any]:
    """GET /reports/resumo through the ingress, once every order has arrived."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        summary: dict[str, Any] = httpx.get(f"{INGRESS}/reports/resumo", timeout=10).json()
        if summary["pedidos"] == 830:
            return summary
        assert time.monotonic() < deadline, f"still {summary} after {SETTLE_TIMEOUT_S} s"
        time.sleep(2)


def test_northwind_flows_through_the_ingress_into_the_reports(cluster: KindCluster) -> None:
    kubeconfig = cluster.kubeconfig_path
    run("docker", "build", "--tag", f"data-sync:{IMAGE_TAG}", ".", kubeconfig=kubeconfig)
    cluster.load_docker_image(f"data-sync:{IMAGE_TAG}")
    run("bash", "k8s/install-operators.sh", "--kind", kubeconfig=kubeconfig)
    run(
        "helm", "upgrade", "--install", RELEASE, str(CHART),
        "--namespace", NAMESPACE, "--create-namespace",
        "--values", str(CHART / "values-dev.yaml"),
        "--set", f"image.tag={IMAGE_TAG}",
        "--timeout", "15m",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    run(
        "kubectl", "wait", "deployment", "--all", "--for=condition=Available",
        "--namespace", NAMESPACE, "--timeout=15m",
        kubeconfig=kubeconfig,
    )  # fmt: skip

    run(
        sys.executable, "-m", "datasync.importer", "--data-dir", str(NORTHWIND),
        "--pedidos-url", INGRESS, "--clientes-url", INGRESS, "--no-progress",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    summary = settled_summary()
    status = httpx.get(f"{INGRESS}/status", timeout=10)

    assert summary["pedidos"] == 830
    assert summary["clientes"] == customers_with_orders()
    assert status.status_code == 200, status.text
