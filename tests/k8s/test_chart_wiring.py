"""The chart configures the code as the code expects: topics and groups the services use,
settings they can parse, every process watched, routed and migrated, and each environment
sized as its values file says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import clientes.adapters.kafka
import reports.adapters.kafka
import reports.wiring
from datasync import events
from datasync.bootstrap import ServiceSettings
from datasync.settings import AppEnv, SettingsGroup, read_group
from monitoramento.wiring import MonitorSettings
from tests.k8s.conftest import (
    CHART,
    NAMESPACE,
    PROCESSES,
    RELEASE,
    SERVICES,
    Manifest,
    run_helm,
)
from tests.k8s.manifests import (
    containers,
    name_of,
    of_kind,
    pod_labels,
    pod_spec,
    secret_references,
    service_workloads,
)

pytestmark = pytest.mark.k8s

ROUTES = {
    "/pedidos": "pedidos",
    "/clientes": "clientes",
    "/reports": "reports",
    "/status": "monitoramento",
}

# What each service's code does with Kafka: the topics it publishes (through its relay) and
# those it consumes with its group. Consumers also write the dead letters of what they read.
KAFKA_ACCESS = {
    "pedidos": {"writes": {events.TOPIC_PEDIDOS}, "reads": set(), "group": None},
    "clientes": {
        "writes": {events.TOPIC_CLIENTES, events.TOPIC_PEDIDOS_ENRIQUECIDOS},
        "reads": set(clientes.adapters.kafka.TOPICS),
        "group": clientes.adapters.kafka.GROUP_ID,
    },
    "reports": {
        "writes": set(),
        "reads": set(reports.adapters.kafka.TOPICS),
        "group": reports.adapters.kafka.GROUP_ID,
    },
}

# Stand-ins for what the operators' Secrets hold, so the settings can be parsed.
SECRET_VALUES = {
    "uri": "postgresql://app:secret@database-rw:5432/app",
    "password": "secret",
}


def process_deployments(manifests: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {
        (pod_labels(d)["data-sync/service"], pod_labels(d)["data-sync/process"]): d
        for d in service_workloads(manifests, "Deployment")
    }


def environment_of(container: dict[str, Any], *, secrets: bool = True) -> dict[str, str]:
    """The container's environment as the process sees it, with stand-in secret values
    (or, with secrets false, without the variables that come from Secrets)."""
    env = {}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        elif secrets:
            env[variable["name"]] = SECRET_VALUES[variable["valueFrom"]["secretKeyRef"]["key"]]
    return env


def known_variables() -> set[str]:
    """Every variable some settings group of the code reads, plus the few read elsewhere."""
    groups: list[type[SettingsGroup]] = []
    pending = list(SettingsGroup.__subclasses__())
    while pending:
        group = pending.pop()
        groups.append(group)
        pending.extend(group.__subclasses__())
    names = {
        f"{group.prefix}{name.upper()}" for group in groups for name in group.__struct_fields__
    }
    # APP_ENV picks the defaults; OpenSSL reads SSL_CERT_FILE for the Kafka TLS context.
    return names | {"APP_ENV", "SSL_CERT_FILE"}


def test_every_process_of_every_service_has_a_deployment(manifests: list[Manifest]) -> None:
    deployed = set(process_deployments(manifests))

    assert deployed == {(s, p) for s, processes in PROCESSES.items() for p in processes}
    for (service, process), deployment in process_deployments(manifests).items():
        assert containers(deployment)[0]["args"] == [service, process]


def test_every_topic_the_code_uses_has_a_kafka_topic_and_a_dead_letter_topic(
    manifests: list[Manifest],
) -> None:
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(manifests, "KafkaTopic")}
    expected = set(events.ALL_TOPICS) | {events.dead_letter_topic(t) for t in events.ALL_TOPICS}

    assert set(topics) == expected
    for topic in events.ALL_TOPICS:
        assert topics[topic]["partitions"] >= 1
        assert topics[events.dead_letter_topic(topic)]["config"]["retention.ms"] > 0


def test_each_kafka_user_may_use_only_its_own_topics_and_group(
    manifests: list[Manifest],
) -> None:
    users = {
        name_of(u).removeprefix("data-sync-"): u["spec"] for u in of_kind(manifests, "KafkaUser")
    }

    assert set(users) == set(SERVICES)
    for service, spec in users.items():
        acls = spec["authorization"]["acls"]
        allowed: dict[str, set[str]] = {}
        for acl in acls:
            resource = acl["resource"]

            assert resource["patternType"] == "literal", service
            assert acl.get("type", "allow") == "allow", service
            allowed.setdefault(f"{resource['type']}:{resource['name']}", set()).update(
                acl["operations"]
            )
        assert spec["authentication"]["type"] == "scram-sha-512"
        if service == "monitoramento":
            assert {op for ops in allowed.values() for op in ops} == {"Describe"}
            continue
        access = KAFKA_ACCESS[service]
        writes = access["writes"] | {events.dead_letter_topic(t) for t in access["reads"]}

        assert {r for r, ops in allowed.items() if "Write" in ops} == {f"topic:{t}" for t in writes}
        assert {r for r, ops in allowed.items() if "Read" in ops} == (
            {f"topic:{t}" for t in access["reads"]}
            | ({f"group:{access['group']}"} if access["group"] else set())
        )
        assert all(ops <= {"Read", "Write", "Describe"} for ops in allowed.values())


def test_consumers_never_scale_past_the_partitions_they_share(
    manifests: list[Manifest],
) -> None:
    partitions = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(manifests, "KafkaTopic")
    }
    deployments = process_deployments(manifests)

    for autoscaler in of_kind(manifests, "HorizontalPodAutoscaler"):
        target = autoscaler["spec"]["scaleTargetRef"]["name"]
        service, process = next(key for key, d in deployments.items() if name_of(d) == target)

        assert process != "relay"
        if process == "consumer":
            fewest = min(partitions[t] for t in KAFKA_ACCESS[service]["reads"])

            assert autoscaler["spec"]["maxReplicas"] <= fewest


def test_every_variable_the_chart_sets_is_one_the_code_reads(
    manifests: list[Manifest],
) -> None:
    known = known_variables()

    for workload in service_workloads(manifests):
        for container in containers(workload):
            unknown = set(environment_of(container)) - known

            assert not unknown, name_of(workload)


def test_every_process_can_parse_its_settings(manifests: list[Manifest], environment: str) -> None:
    for workload in service_workloads(manifests):
        container = containers(workload)[0]
        env = environment_of(container)

        settings = ServiceSettings.from_environment(default_port=1, env=env)

        assert settings.app_env == AppEnv(environment)
        assert settings.log.format == "json"
        if workload["kind"] == "Deployment":
            assert settings.http.host == "0.0.0.0"  # noqa: S104 - pods are reached by IP
            assert settings.http.port == container["ports"][0]["containerPort"]
        if settings.kafka.security_protocol.startswith("SASL"):
            assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
            assert settings.kafka.sasl_username
            assert settings.kafka.sasl_password


def test_reports_gets_a_known_time_zone(manifests: list[Manifest]) -> None:
    container = containers(process_deployments(manifests)["reports", "api"])[0]
    env = environment_of(container)

    found = read_group(reports.wiring.ReportSettings, env, AppEnv(env["APP_ENV"]))

    assert found.timezone == "UTC"


def test_monitoramento_watches_every_other_process_through_its_service(
    manifests: list[Manifest],
) -> None:
    deployments = process_deployments(manifests)
    services = {name_of(s): s for s in of_kind(manifests, "Service")}
    env = environment_of(containers(deployments["monitoramento", "api"])[0])

    monitor = read_group(MonitorSettings, env, AppEnv(env["APP_ENV"]))
    watched = {
        (service, process): url
        for service, processes in monitor.parsed_targets().items()
        for process, url in processes.items()
    }

    assert set(watched) == {key for key in deployments if key[0] != "monitoramento"}
    for (service, process), url in watched.items():
        address = urlsplit(url)
        target = services[str(address.hostname)]

        assert target["spec"]["selector"]["data-sync/service"] == service
        assert target["spec"]["selector"]["data-sync/process"] == process
        assert address.port in {port["port"] for port in target["spec"]["ports"]}
    assert set(monitor.consumer_groups.split(",")) == {
        clientes.adapters.kafka.GROUP_ID,
        reports.adapters.kafka.GROUP_ID,
    }


def test_the_ingress_routes_each_path_to_its_api(manifests: list[Manifest]) -> None:
    (ingress,) = of_kind(manifests, "Ingress")
    services = {name_of(s): s for s in of_kind(manifests, "Service")}

    paths = {
        path["path"]: services[path["backend"]["service"]["name"]]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }

    assert {path: s["spec"]["selector"]["data-sync/service"] for path, s in paths.items()} == ROUTES
    assert all(s["spec"]["selector"]["data-sync/process"] == "api" for s in paths.values())


def test_each_service_is_migrated_by_a_hook_job_before_every_upgrade(
    manifests: list[Manifest],
) -> None:
    jobs = {pod_labels(j)["data-sync/service"]: j for j in service_workloads(manifests, "Job")}

    assert set(jobs) == set(SERVICES)
    for service, job in jobs.items():
        hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))

        assert containers(job)[0]["args"] == [service, "migrate"]
        assert pod_spec(job)["restartPolicy"] == "Never"
        assert "pre-upgrade" in hooks
        # Before the install too, unless the chart's own database clusters must exist first.
        assert hooks & {"pre-install", "post-install"}
        if not of_kind(manifests, "Cluster"):
            assert "pre-install" in hooks


@pytest.mark.parametrize("environment", ["dev"])
def test_dev_runs_one_of_everything(manifests: list[Manifest]) -> None:
    (pool,) = of_kind(manifests, "KafkaNodePool")

    assert all(d["spec"]["replicas"] == 1 for d in of_kind(manifests, "Deployment"))
    assert pool["spec"]["replicas"] == 1
    assert all(c["spec"]["instances"] == 1 for c in of_kind(manifests, "Cluster"))
    assert not of_kind(manifests, "HorizontalPodAutoscaler")
    assert not of_kind(manifests, "ScheduledBackup")


@pytest.mark.parametrize("environment", ["prod"])
def test_prod_replicates_kafka_and_postgresql_autoscales_and_backs_up(
    manifests: list[Manifest],
) -> None:
    (kafka,) = of_kind(manifests, "Kafka")
    (pool,) = of_kind(manifests, "KafkaNodePool")
    clusters = of_kind(manifests, "Cluster")
    config = kafka["spec"]["kafka"]["config"]
    scaled = {
        a["spec"]["scaleTargetRef"]["name"] for a in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    backed_up = {b["spec"]["cluster"]["name"] for b in of_kind(manifests, "ScheduledBackup")}

    assert pool["spec"]["replicas"] == 3
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert all(t["spec"]["replicas"] == 3 for t in of_kind(manifests, "KafkaTopic"))
    assert all(c["spec"]["instances"] == 3 for c in clusters)
    assert all("barmanObjectStore" in c["spec"]["backup"] for c in clusters)
    assert backed_up == {name_of(c) for c in clusters}
    assert scaled == {
        name_of(d)
        for d in service_workloads(manifests, "Deployment")
        if pod_labels(d)["data-sync/kind"] in {"api", "consumer"}
    }


def test_alerts_cover_lag_outbox_dead_letters_errors_and_readiness(
    manifests: list[Manifest],
) -> None:
    (rule,) = of_kind(manifests, "PrometheusRule")
    expressions = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])

    for metric in (
        "datasync_consumer_group_lag_records",
        "datasync_consumer_lag_records",
        "datasync_service_outbox_oldest_age_seconds",
        "datasync_outbox_oldest_age_seconds",
        'datasync_consumer_records_total{outcome="dead_lettered"}[10m]',
        'datasync_http_requests_total{status=~"5..", route!~"/health/.*"}',
        "datasync_process_ready",
        "kube_deployment_status_replicas_unavailable",
    ):
        assert metric in expressions


def test_the_dashboard_config_map_ships_the_compose_dashboard(
    manifests: list[Manifest],
) -> None:
    shipped = (CHART / "files" / "grafana-dashboard.json").read_text()

    (config_map,) = [
        c
        for c in of_kind(manifests, "ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]

    assert json.loads(config_map["data"]["data-sync.json"]) == json.loads(shipped)


EXTERNAL_VALUES = """
appEnv: prod
postgresql: {enabled: false}
kafka:
  strimzi: {enabled: false}
  external:
    bootstrapServers: kafka-1.example.com:9093,kafka-2.example.com:9093
    caSecretName: kafka-ca
    users:
      pedidos: {username: pedidos, passwordSecret: {name: kafka-users, key: pedidos}}
      clientes: {username: clientes, passwordSecret: {name: kafka-users, key: clientes}}
      reports: {username: reports, passwordSecret: {name: kafka-users, key: reports}}
      monitoramento: {username: mon, passwordSecret: {name: kafka-users, key: mon}}
services:
  pedidos: {database: {existingSecret: pedidos-db}}
  clientes: {database: {existingSecret: clientes-db}}
  reports: {database: {existingSecret: reports-db}}
  monitoramento: {database: {existingSecret: monitoramento-db, existingSecretKey: url}}
"""


# The Secrets (name, key) each service's processes must read with EXTERNAL_VALUES: its
# database URL and its Kafka password.
EXTERNAL_SECRETS = {
    "pedidos": {("pedidos-db", "uri"), ("kafka-users", "pedidos")},
    "clientes": {("clientes-db", "uri"), ("kafka-users", "clientes")},
    "reports": {("reports-db", "uri"), ("kafka-users", "reports")},
    "monitoramento": {("monitoramento-db", "url"), ("kafka-users", "mon")},
}


def test_external_kafka_and_databases_replace_the_operators_objects(
    helm: str, tmp_path: Path
) -> None:
    values = tmp_path / "external.yaml"
    values.write_text(EXTERNAL_VALUES)

    output = run_helm(
        helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--values", str(values),
    )  # fmt: skip
    manifests = [doc for doc in yaml.safe_load_all(output) if doc]

    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster"}
    for job in of_kind(manifests, "Job"):
        assert "pre-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    for deployment in service_workloads(manifests, "Deployment"):
        service = pod_labels(deployment)["data-sync/service"]
        env = environment_of(containers(deployment)[0], secrets=False)
        read = {(ref.secret, ref.key) for ref in secret_references(deployment)}

        assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka-1.example.com:9093,")
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert read == EXTERNAL_SECRETS[service] | {("kafka-ca", "ca.crt")}
