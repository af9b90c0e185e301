"""Reading rendered manifests the way Kubernetes would: selectors, pods, secrets, policies.

The operators create objects the chart only names (CloudNativePG's instance pods and
`<cluster>-app` Secret, Strimzi's KafkaUser and CA Secrets); `operator_pods` and
`operator_secrets` stand in for them, with the labels and keys the operators document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "Job")


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def name_of(manifest: Manifest) -> str:
    name: str = manifest["metadata"]["name"]
    return name


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: Manifest) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] in WORKLOAD_KINDS]


def service_workloads(manifests: list[Manifest], kind: str | None = None) -> list[Manifest]:
    """Workloads running a process of one of the services (labelled data-sync/service), as
    opposed to helpers of the release such as the reprocessing operator."""
    return [
        workload
        for workload in workloads(manifests)
        if "data-sync/service" in pod_labels(workload) and kind in (None, workload["kind"])
    ]


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True)
class Pod:
    """A pod as a NetworkPolicy sees it: where it runs, its labels and its named ports."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)


def chart_pods(manifests: list[Manifest], namespace: str) -> list[Pod]:
    pods = []
    for workload in workloads(manifests):
        ports = {
            port["name"]: port["containerPort"]
            for container in containers(workload)
            for port in container.get("ports", [])
            if "name" in port
        }
        pods.append(Pod(name_of(workload), namespace, pod_labels(workload), ports))
    return pods


def operator_pods(manifests: list[Manifest], namespace: str) -> list[Pod]:
    """The instance pods CloudNativePG creates for each Cluster, labelled by cluster name."""
    return [
        Pod(
            f"{name_of(cluster)}-1",
            namespace,
            {"cnpg.io/cluster": name_of(cluster), "cnpg.io/podRole": "instance"},
            {"postgresql": 5432, "metrics": 9187, "status": 8000},
        )
        for cluster in of_kind(manifests, "Cluster")
    ]


def operator_secrets(manifests: list[Manifest]) -> dict[str, set[str]]:
    """Secret name to keys, for every Secret the chart renders or an operator creates."""
    secrets = {
        name_of(secret): {*secret.get("data", {}), *secret.get("stringData", {})}
        for secret in of_kind(manifests, "Secret")
    }
    for cluster in of_kind(manifests, "Cluster"):
        secrets[f"{name_of(cluster)}-app"] = {
            "uri", "jdbc-uri", "host", "port", "dbname", "user", "username", "password",
            "pgpass",
        }  # fmt: skip
    for user in of_kind(manifests, "KafkaUser"):
        secrets[name_of(user)] = {"password", "sasl.jaas.config"}
    for kafka in of_kind(manifests, "Kafka"):
        secrets[f"{name_of(kafka)}-cluster-ca-cert"] = {"ca.crt", "ca.p12", "ca.password"}
    return secrets


@dataclass(frozen=True)
class SecretReference:
    workload: str
    secret: str
    key: str | None
    """None when the whole Secret is used (envFrom)."""


def secret_references(workload: Manifest) -> Iterator[SecretReference]:
    """Every Secret a pod reads: env valueFrom, envFrom and secret volumes."""
    name = name_of(workload)
    for container in containers(workload):
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                yield SecretReference(name, reference["name"], reference["key"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                yield SecretReference(name, source["secretRef"]["name"], None)
    for volume in pod_spec(workload).get("volumes", []):
        secret = volume.get("secret")
        if secret:
            keys = [item["key"] for item in secret.get("items", [])] or [None]
            for key in keys:
                yield SecretReference(name, secret["secretName"], key)


def _peer_admits(peer: Mapping[str, Any], source: Pod, policy_namespace: str) -> bool:
    namespace_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    if namespace_selector is None and pod_selector is None:
        return False
    if namespace_selector is None:
        in_namespace = source.namespace == policy_namespace
    else:
        namespace_labels = {"kubernetes.io/metadata.name": source.namespace}
        in_namespace = matches(namespace_selector, namespace_labels)
    return in_namespace and (pod_selector is None or matches(pod_selector, source.labels))


def _port_admits(rule: Mapping[str, Any], target: Pod, port: int) -> bool:
    if not rule.get("ports"):
        return True
    for allowed in rule["ports"]:
        number = allowed.get("port")
        if number is None or target.ports.get(number, number) == port:
            return True
    return False


def admits(policies: list[Manifest], *, source: Pod, target: Pod, port: int) -> bool:
    """Whether ingress from `source` to `target` on `port` is allowed by these policies.

    A pod no policy selects accepts everything; a selected pod accepts what any rule of
    any selecting policy allows (the NetworkPolicy semantics, for ingress).
    """
    selecting = [
        policy
        for policy in policies
        if policy["metadata"].get("namespace") == target.namespace
        and matches(policy["spec"]["podSelector"], target.labels)
        and "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            from_admits = not peers or any(
                _peer_admits(peer, source, target.namespace) for peer in peers
            )
            if from_admits and _port_admits(rule, target, port):
                return True
    return False
