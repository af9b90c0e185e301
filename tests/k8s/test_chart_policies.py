"""Rules every rendered environment keeps: pinned images, probes, limits, hardened
containers, disruption budgets, scraping, resolvable secrets and tight network policies."""

from __future__ import annotations

import pytest

from tests.k8s.conftest import NAMESPACE, SERVICES
from tests.k8s.manifests import (
    Manifest,
    Pod,
    admits,
    chart_pods,
    containers,
    matches,
    name_of,
    of_kind,
    operator_pods,
    operator_secrets,
    pod_labels,
    pod_spec,
    secret_references,
    service_workloads,
    workloads,
)

pytestmark = pytest.mark.k8s

LIVENESS_PATH = "/health/live"
TMP = "/tmp"  # noqa: S108 - the path containers mount an emptyDir on, not a file we open
READINESS_PATH = "/health/ready"


def test_every_image_has_a_pinned_tag(manifests: list[Manifest]) -> None:
    images = {c["image"] for w in workloads(manifests) for c in containers(w)}

    unpinned = {
        image
        for image in images
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
    }
    assert images
    assert not unpinned


def test_every_long_running_container_has_liveness_and_readiness_probes(
    manifests: list[Manifest],
) -> None:
    for deployment in of_kind(manifests, "Deployment"):
        for container in containers(deployment):
            where = f"{name_of(deployment)}/{container['name']}"

            assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH, where
            assert container["readinessProbe"]["httpGet"]["path"] == READINESS_PATH, where


def test_liveness_only_asks_whether_the_process_is_up_and_is_patient(
    manifests: list[Manifest],
) -> None:
    # /health/live never looks at Kafka or the database, so a rebalance or a fail-over
    # cannot get a pod restarted; a minute of failures is needed before a restart.
    for deployment in of_kind(manifests, "Deployment"):
        for container in containers(deployment):
            for probe in ("startupProbe", "livenessProbe"):
                settings = container[probe]
                patience_s = settings["periodSeconds"] * settings["failureThreshold"]

                assert settings["httpGet"]["path"] == LIVENESS_PATH
                assert patience_s >= 60, f"{name_of(deployment)} {probe}: {patience_s} s"


def test_every_container_has_resource_requests_and_limits(manifests: list[Manifest]) -> None:
    for workload in workloads(manifests):
        for container in containers(workload):
            resources = container["resources"]

            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), name_of(workload)


def test_every_container_runs_as_non_root_on_a_read_only_root(
    manifests: list[Manifest],
) -> None:
    for workload in workloads(manifests):
        spec = pod_spec(workload)
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}

        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for container in containers(workload):
            context = container["securityContext"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}

            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] != 0
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["seccompProfile"]["type"] == "RuntimeDefault"
            assert mounts.get(TMP) in tmp_volumes, name_of(workload)


def test_service_accounts_mount_no_token(manifests: list[Manifest]) -> None:
    accounts = {name_of(a): a for a in of_kind(manifests, "ServiceAccount")}

    for deployment in of_kind(manifests, "Deployment"):
        account = accounts[pod_spec(deployment)["serviceAccountName"]]

        assert account["automountServiceAccountToken"] is False


def test_every_deployment_has_a_disruption_budget_that_never_blocks_a_drain(
    manifests: list[Manifest],
) -> None:
    budgets = of_kind(manifests, "PodDisruptionBudget")

    for deployment in of_kind(manifests, "Deployment"):
        labels = pod_labels(deployment)
        covering = [b for b in budgets if matches(b["spec"]["selector"], labels)]

        assert len(covering) == 1, name_of(deployment)
        assert covering[0]["spec"]["maxUnavailable"] >= 1, name_of(deployment)


def test_every_service_process_is_scraped_by_its_service_monitor(
    manifests: list[Manifest],
) -> None:
    monitors = of_kind(manifests, "ServiceMonitor")
    services = of_kind(manifests, "Service")

    assert {s["metadata"]["labels"]["data-sync/service"] for s in services} == set(SERVICES)
    for service in services:
        labels = service["metadata"]["labels"]
        ports = {port["name"] for port in service["spec"]["ports"]}
        scraped = [
            endpoint
            for monitor in monitors
            if matches(monitor["spec"]["selector"], labels)
            for endpoint in monitor["spec"]["endpoints"]
            if endpoint["port"] in ports and endpoint["path"] == "/metrics"
        ]

        assert len(scraped) == 1, name_of(service)


def test_every_service_selects_pods_with_its_target_port(manifests: list[Manifest]) -> None:
    pods = chart_pods(manifests, NAMESPACE)

    for service in of_kind(manifests, "Service"):
        selector = {"matchLabels": service["spec"]["selector"]}
        selected = [pod for pod in pods if matches(selector, pod.labels)]

        assert selected, name_of(service)
        for port in service["spec"]["ports"]:
            assert all(port["targetPort"] in pod.ports for pod in selected), name_of(service)


def test_every_secret_reference_resolves(manifests: list[Manifest]) -> None:
    secrets = operator_secrets(manifests)
    references = [ref for w in workloads(manifests) for ref in secret_references(w)]

    unresolved = [
        ref
        for ref in references
        if ref.secret not in secrets or (ref.key is not None and ref.key not in secrets[ref.secret])
    ]
    assert references
    assert not unresolved


def test_each_service_reads_only_its_own_database_and_kafka_credentials(
    manifests: list[Manifest],
) -> None:
    for workload in service_workloads(manifests):
        service = pod_labels(workload)["data-sync/service"]
        read = {ref.secret for ref in secret_references(workload)}
        others = set(SERVICES) - {service}

        assert not {secret for secret in read for other in others if f"-{other}" in secret}


def test_every_network_policy_selects_existing_pods(manifests: list[Manifest]) -> None:
    pods = chart_pods(manifests, NAMESPACE) + operator_pods(manifests, NAMESPACE)
    policies = of_kind(manifests, "NetworkPolicy")

    assert policies
    for policy in policies:
        assert any(matches(policy["spec"]["podSelector"], p.labels) for p in pods), name_of(policy)
        for rule in policy["spec"]["ingress"]:
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    selector = peer["podSelector"]

                    assert any(matches(selector, p.labels) for p in pods), name_of(policy)


def _outsider(namespace: str) -> Pod:
    return Pod(f"someone-in-{namespace}", namespace, {"app": "anything"})


def test_a_database_is_reachable_only_from_its_own_service(manifests: list[Manifest]) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    pods = chart_pods(manifests, NAMESPACE)

    for database in operator_pods(manifests, NAMESPACE):
        owner = database.labels["cnpg.io/cluster"].removeprefix("data-sync-").removesuffix("-db")
        for pod in pods:
            allowed = admits(policies, source=pod, target=database, port=5432)

            assert allowed == (pod.labels.get("data-sync/service") == owner), (pod.name, owner)
        for namespace in (NAMESPACE, "ingress-nginx", "monitoring"):
            assert not admits(policies, source=_outsider(namespace), target=database, port=5432)


def test_apis_are_reachable_only_through_the_ingress_controller(
    manifests: list[Manifest],
) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    pods = chart_pods(manifests, NAMESPACE)
    ingress_controller = _outsider("ingress-nginx")
    prometheus = _outsider("monitoring")
    monitor = next(p for p in pods if p.labels.get("data-sync/service") == "monitoramento")

    for pod in (p for p in pods if "http" in p.ports and "data-sync/service" in p.labels):
        port = pod.ports["http"]
        is_api = pod.labels["data-sync/kind"] == "api"

        assert admits(policies, source=ingress_controller, target=pod, port=port) == is_api
        assert admits(policies, source=prometheus, target=pod, port=port), pod.name
        assert admits(policies, source=monitor, target=pod, port=port), pod.name
        assert not admits(policies, source=_outsider(NAMESPACE), target=pod, port=port)
        assert not admits(policies, source=_outsider("elsewhere"), target=pod, port=port)
