"""The operator's part of the chart, rendered by helm: gated, confined, and wired to the
Deployments it copies from. Skips where helm is missing (`bash .ci/helm.sh` installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from datasync.settings import AppEnv, read_group
from operador.handlers import OperatorSettings, WatchSettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "data-sync"
NAMESPACE = "data-sync"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TMP = "/tmp"  # noqa: S108  (a path containers mount an emptyDir on)
OPERATOR_VALUES = {
    "operator": {
        "enabled": True,
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
    }
}
"""The block the values files get (see docs/reprocessing.md)."""

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def helm() -> str:
    found = shutil.which("helm") or shutil.which("helm", path=str(REPO / ".tools" / "bin"))
    if found is None:
        pytest.skip("helm is not on PATH nor in .tools/bin; `bash .ci/helm.sh` installs it")
    return found


def render(helm: str, *extra: str) -> list[Manifest]:
    staging = str(CHART / "values-staging.yaml")
    command = [helm, "template", "data-sync", str(CHART), "--namespace", NAMESPACE]
    result = subprocess.run(
        [*command, "--values", staging, "--kube-version", "1.30.0", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def rendered(helm: str, tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    values = tmp_path_factory.mktemp("values") / "operator.yaml"
    values.write_text(yaml.safe_dump(OPERATOR_VALUES))
    # The values schema may not know `operator` yet; it is checked by the chart's own tests.
    return render(helm, "--values", str(values), "--skip-schema-validation")


def is_operator(manifest: Manifest) -> bool:
    labels = manifest["metadata"].get("labels") or {}
    return bool(labels.get("app.kubernetes.io/component") == "operator")


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and is_operator(m)]
    assert len(found) == 1, f"{len(found)} operator objects of kind {kind}"
    return found[0]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def test_the_operator_is_off_unless_enabled(helm: str) -> None:
    manifests = render(helm, "--set", "operator.enabled=false", "--skip-schema-validation")

    assert not [manifest for manifest in manifests if is_operator(manifest)]


def test_every_operator_object_is_valid_kubernetes(rendered: list[Manifest]) -> None:
    objects = [manifest for manifest in rendered if is_operator(manifest)]

    assert sorted(manifest["kind"] for manifest in objects) == [
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    for manifest in objects:
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_the_operator_may_do_only_what_it_does_in_its_namespace(
    rendered: list[Manifest],
) -> None:
    role = one(rendered, "Role")
    binding = one(rendered, "RoleBinding")

    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("datasync.io", "reprocessings", verb) for verb in ("get", "list", "watch", "patch")
    } | {("datasync.io", "reprocessings/status", "patch")} | {
        ("batch", "jobs", verb) for verb in ("create", "get", "list", "delete")
    } | {
        ("", "pods", "list"),
        ("", "pods/log", "get"),
        ("apps", "deployments", "list"),
        ("", "events", "create"),
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "data-sync-operator", "namespace": NAMESPACE}
    ]
    assert not [m for m in rendered if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_the_operator_pod_is_probed_confined_and_gets_a_token_of_its_own(
    rendered: list[Manifest],
) -> None:
    deployment = one(rendered, "Deployment")
    account = one(rendered, "ServiceAccount")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}

    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]) == (
        1,
        {"type": "Recreate"},
    )
    assert container["args"] == ["operador"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert account["automountServiceAccountToken"] is False
    assert "emptyDir" in volumes[mounts[TMP]]
    token = volumes[mounts[SERVICE_ACCOUNT_DIR]]["projected"]["sources"]
    assert token[0]["serviceAccountToken"]["path"] == "token"


def test_a_disruption_budget_covers_the_operator_and_never_blocks_a_drain(
    rendered: list[Manifest],
) -> None:
    labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    budgets = [m for m in rendered if m["kind"] == "PodDisruptionBudget"]

    covering = [budget for budget in budgets if selects(budget["spec"]["selector"], labels)]

    assert [budget["metadata"]["name"] for budget in covering] == ["data-sync-operator"]
    assert covering[0]["spec"]["maxUnavailable"] == 1


def test_the_settings_select_each_service_api_deployment_of_the_release(
    rendered: list[Manifest],
) -> None:
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    settings = read_group(OperatorSettings, env, AppEnv(env["APP_ENV"]))
    watch = read_group(WatchSettings, env, AppEnv(env["APP_ENV"]))
    deployments = [m for m in rendered if m["kind"] == "Deployment" and not is_operator(m)]

    assert watch.watch_namespace == NAMESPACE
    assert settings.health_host == "0.0.0.0"  # noqa: S104  (pods are probed by IP)
    for service in ("pedidos", "clientes", "reports"):
        wanted = settings.api_labels(service)
        found = [
            deployment["metadata"]["name"]
            for deployment in deployments
            if selects({"matchLabels": wanted}, deployment["metadata"]["labels"])
            and selects(
                {"matchLabels": wanted}, deployment["spec"]["template"]["metadata"]["labels"]
            )
        ]

        assert found == [f"data-sync-{service}-api"]
