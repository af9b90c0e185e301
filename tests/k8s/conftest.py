"""Fixtures of the packaging tests: the chart rendered once per environment.

These tests need helm (CI installs it with `bash .ci/helm.sh`) and nothing else: no Docker
engine and no cluster. They skip, saying why, where helm is not on PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "data-sync"
ENVIRONMENTS = ("dev", "staging", "prod")
NAMESPACE = "data-sync"
RELEASE = "data-sync"

# Every service and its long-running processes, as `python -m <service> <process>` knows them.
SERVICES = ("pedidos", "clientes", "reports", "monitoramento")
PROCESSES = {
    "pedidos": {"api", "relay"},
    "clientes": {"api", "relay", "consumer"},
    "reports": {"api", "consumer"},
    "monitoramento": {"api"},
}

# The Kubernetes version the rendered objects are validated against: the kind node image of
# k8s/kind-cluster.yaml runs it, and kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.33.0"

Manifest = dict[str, Any]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "k8s: renders and checks the Helm chart and the container packaging"
    )
    config.addinivalue_line(
        "markers", "kind: creates a kind cluster and installs the whole system in it"
    )


def run_helm(helm: str, *args: str) -> str:
    """Runs helm, failing the test with helm's own message when it exits non-zero."""
    result = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"helm {' '.join(args[:2])} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


@pytest.fixture(scope="session")
def helm() -> str:
    path = shutil.which("helm")
    if path is None:
        pytest.skip("helm is not on PATH; `bash .ci/helm.sh` installs it into .tools/bin")
    return path


@pytest.fixture(scope="session")
def rendered(helm: str) -> dict[str, list[Manifest]]:
    """Every object `helm template` renders, per environment, hooks and CRDs included."""
    manifests: dict[str, list[Manifest]] = {}
    for environment in ENVIRONMENTS:
        output = run_helm(
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBERNETES_VERSION,
            "--values",
            str(CHART / f"values-{environment}.yaml"),
            "--include-crds",
        )
        manifests[environment] = [doc for doc in yaml.safe_load_all(output) if doc]

    return manifests


@pytest.fixture(params=ENVIRONMENTS)
def environment(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def manifests(rendered: dict[str, list[Manifest]], environment: str) -> list[Manifest]:
    return rendered[environment]
