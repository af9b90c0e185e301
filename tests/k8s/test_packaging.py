"""The image, docker-compose.yml, the dev loop files and the operator install script hold
together: every process is present, every reference resolves, every image is pinned, and
the settings they pass are ones the code parses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from datasync import events
from datasync.bootstrap import ServiceSettings
from datasync.settings import AppEnv, read_group
from monitoramento.wiring import MonitorSettings
from tests.k8s.conftest import CHART, PROCESSES, REPO

pytestmark = pytest.mark.k8s

DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE_FILE = REPO / "docker-compose.yml"
CHART_VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
APP_IMAGE = "data-sync"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services running one of our processes, by (service, command)."""
    return {
        tuple(spec["command"]): spec
        for spec in compose["services"].values()
        if spec.get("image", "").startswith(f"{APP_IMAGE}:")
    }


def test_compose_runs_every_process_and_every_migration(compose: dict[str, Any]) -> None:
    expected = {(s, p) for s, processes in PROCESSES.items() for p in processes}
    expected |= {(service, "migrate") for service in PROCESSES}

    assert set(app_services(compose)) == expected


def test_compose_dependencies_all_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]

    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} -> {dependency}"
            assert condition["condition"] in {
                "service_started", "service_healthy", "service_completed_successfully",
            }  # fmt: skip
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency


def test_compose_processes_wait_for_their_migrations_and_topics(
    compose: dict[str, Any],
) -> None:
    for (service, command), spec in app_services(compose).items():
        waits_for = set(spec["depends_on"])

        if command == "migrate":
            assert waits_for == {f"{service}-db"}
        else:
            assert {f"{service}-migrate", "kafka-topics"} <= waits_for


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        image = spec["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""

        assert tag, name
        assert tag != "latest", name


def test_compose_creates_every_topic_and_its_dead_letter_topic(
    compose: dict[str, Any],
) -> None:
    script = compose["services"]["kafka-topics"]["command"][0]
    loop = re.search(r"for topic in ([\w -]+);", script)

    assert loop is not None
    assert loop.group(1).split() == list(events.ALL_TOPICS)
    assert '"$$topic.dlq 1"' in script


def test_compose_processes_parse_their_settings(compose: dict[str, Any]) -> None:
    for (service, command), spec in app_services(compose).items():
        env = {key: str(value) for key, value in spec["environment"].items()}

        settings = ServiceSettings.from_environment(default_port=1, env=env)

        assert settings.database.url.endswith(f"@{service}-db:5432/{service}")
        if command != "migrate":
            assert settings.http.port == int(env["HTTP_PORT"])


def test_compose_monitoramento_and_prometheus_watch_every_process(
    compose: dict[str, Any],
) -> None:
    processes = {
        key: int(spec["environment"]["HTTP_PORT"])
        for key, spec in app_services(compose).items()
        if key[1] != "migrate"
    }
    env = compose["services"]["monitoramento-api"]["environment"]
    monitor = read_group(MonitorSettings, env, AppEnv(env["APP_ENV"]))
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]

    watched = {
        (service, process): url
        for service, by_process in monitor.parsed_targets().items()
        for process, url in by_process.items()
    }
    scraped = {
        (group["labels"]["datasync_service"], group["labels"]["datasync_process"]): target
        for group in job["static_configs"]
        for target in group["targets"]
    }

    assert watched == {
        (s, p): f"http://{s}-{p}:{port}"
        for (s, p), port in processes.items()
        if s != "monitoramento"
    }
    assert scraped == {(s, p): f"{s}-{p}:{port}" for (s, p), port in processes.items()}


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    mounts = [
        volume.split(":")[0]
        for spec in compose["services"].values()
        for volume in spec.get("volumes", [])
        if volume.startswith("./")
    ]

    assert "./charts/data-sync/files/grafana-dashboard.json" in mounts
    assert "./charts/data-sync/files/alerts.yaml" in mounts
    assert all((REPO / mount).exists() for mount in mounts)


def test_compose_file_is_valid_for_docker_compose() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no output"])[0]
        pytest.skip(f"the docker compose plugin is not installed ({reason})")

    result = subprocess.run(
        [docker, "compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )

    assert result.returncode == 0, result.stderr


def test_the_image_runs_any_process_as_an_unprivileged_user() -> None:
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", DOCKERFILE, flags=re.MULTILINE)
    runtime = DOCKERFILE.split(" AS runtime\n", 1)[1].split("\nFROM ", 1)[0]

    # The last stage, which a plain `docker build` produces, is the runtime image.
    assert stages[-1] == ("runtime", "release")
    assert 'ENTRYPOINT ["python", "-m"]' in runtime
    assert 'CMD ["pedidos", "api"]' in runtime
    assert "USER 10001:10001" in runtime
    # Only the virtual environment and the source come from the build stage.
    assert re.findall(r"^COPY --from=build (\S+)", runtime, flags=re.MULTILINE) == [
        "/opt/venv",
        "/app/services",
    ]


def test_the_chart_runs_the_image_as_the_user_it_declares(rendered: dict[str, Any]) -> None:
    user = re.search(r"USER (\d+):(\d+)", DOCKERFILE)

    assert user is not None
    for manifest in rendered["prod"]:
        if manifest["kind"] == "Deployment":
            context = manifest["spec"]["template"]["spec"]["securityContext"]

            assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user.groups()


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    copied = re.findall(r"^COPY (?:--chown=\S+ )?([^-\s]\S*) ", DOCKERFILE, flags=re.MULTILINE)

    for source in copied:
        assert source in allowed, source
        assert (REPO / source).exists(), source


def test_the_dev_loops_sync_source_into_the_dev_image() -> None:
    tiltfile = (REPO / "Tiltfile").read_text()
    skaffold = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    (artifact,) = skaffold["build"]["artifacts"]
    (release,) = skaffold["manifests"]["helm"]["releases"]

    assert "target='dev'" in tiltfile
    assert "sync('services', '/app/services')" in tiltfile
    assert "values=['charts/data-sync/values-dev.yaml']" in tiltfile
    assert artifact["docker"]["target"] == "dev"
    assert artifact["sync"]["manual"] == [{"src": "services/**/*.py", "dest": "/app"}]
    assert release["chartPath"] == "charts/data-sync"
    assert release["valuesFiles"] == ["charts/data-sync/values-dev.yaml"]
    assert release["setValues"] == {"readOnlyRootFilesystem": False}
    assert {f["localPort"] for f in skaffold["portForward"]} == {3000, 3001, 3002, 3003}
    assert re.search(r"FROM runtime AS dev\n", DOCKERFILE)


@pytest.fixture
def stub_tools(tmp_path: Path) -> Path:
    """kubectl and helm that only record how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kubectl", "helm"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/calls.log"\n')
        stub.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize("kind", [False, True])
def test_the_operator_script_installs_pinned_versions_into_the_admitted_namespaces(
    stub_tools: Path, kind: bool
) -> None:
    env = {**os.environ, "PATH": f"{stub_tools / 'bin'}:/usr/bin:/bin"}
    arguments = ["--kind"] if kind else []

    subprocess.run(
        ["bash", str(REPO / "k8s" / "install-operators.sh"), *arguments],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    calls = (stub_tools / "calls.log").read_text()

    policy = CHART_VALUES["networkPolicy"]
    for namespace in (
        policy["ingressControllerNamespace"],
        policy["monitoringNamespace"],
        policy["cnpgOperatorNamespace"],
    ):
        assert f"--namespace {namespace}" in calls
    assert re.search(r"strimzi-kafka-operator --version 0\.4\d\.\d+ ", calls)
    assert re.search(r"releases/cnpg-1\.2\d\.\d+\.yaml", calls)
    assert re.search(r"kube-prometheus-stack .* --version \d+\.\d+\.\d+ ", calls)
    assert re.search(r"ingress-nginx .* --version \d+\.\d+\.\d+ ", calls)
    assert ("controller.hostPort.enabled=true" in calls) == kind
