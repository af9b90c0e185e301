"""The operator against a Kubernetes API double that speaks the real HTTP API (kmock).

`operator` runs the whole kopf operator in-process, with the handlers `python -m operador`
registers, against kmock's in-memory API server on 127.0.0.1. kmock keeps objects but runs no
controllers, so `JobController` plays the Job controller and the kubelet: it gives a Job its
pod, lets it print log lines and ends it the way a test says. Every wait is bounded in time.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import kopf
import pytest
from kmock import KubernetesEmulator, Request, ResourceInfo, action, resource, subresource

from operador.crd import GROUP, PLURAL, VERSION
from operador.handlers import OperatorSettings, build_registry, kopf_settings
from operador.jobs import JOB_UID_LABEL
from operador.kube import KubernetesApi

NAMESPACE = "data-sync"
REPROCESSINGS = resource(GROUP, VERSION, PLURAL)
JOBS = resource("batch", "v1", "jobs")
PODS = resource("", "v1", "pods")
DEPLOYMENTS = resource("apps", "v1", "deployments")
WAIT_S = 10.0
"""Upper bound of every wait: generous for a loaded machine, where each step takes
milliseconds."""


def pytest_configure(config: pytest.Config) -> None:
    # The same marker as the chart's kind tests, so `-m "not kind"` leaves out both.
    config.addinivalue_line(
        "markers", "kind: creates a kind cluster and installs the whole system in it"
    )


FAST = OperatorSettings(
    follow_interval_s=0.05,
    retry_backoff_s=0.2,
    retry_backoff_max_s=1.0,
    conflict_retry_s=0.3,
    api_retry_s=0.2,
    job_ttl_s=60,
)
"""The production pacing divided by a hundred or so, so each test takes about a second."""


async def eventually(
    check: Callable[[], Any], *, what: str | Callable[[], str], timeout_s: float = WAIT_S
) -> Any:
    """Waits until `check()` returns (or, if async, resolves to) something true; returns it.

    The API double answers in milliseconds, so this polls every 20 ms; `what` (or what it
    returns, evaluated on failure) says what did not happen in time.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.02)
    described = what() if callable(what) else what
    raise AssertionError(f"waited {timeout_s} s for {described}")


def api_deployment(
    service: str,
    *,
    image: str = "registry.local/data-sync:1.4.2",
    labels: Mapping[str, str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The API Deployment of a service, reduced to what the operator reads.

    Labelled as the operator's defaults expect, unless `labels` says otherwise.
    """
    if labels is None:
        labels = {"app.kubernetes.io/name": service, "app.kubernetes.io/component": "api"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name or f"data-sync-{service}-api",
            "namespace": NAMESPACE,
            "labels": dict(labels),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
                    "containers": [
                        {
                            "name": "api",
                            "image": image,
                            "env": [{"name": "APP_ENV", "value": "prod"}],
                            "envFrom": [{"secretRef": {"name": f"data-sync-{service}"}}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                        }
                    ],
                },
            }
        },
    }


class JobController:
    """Plays the Job controller and the kubelet for the Jobs the operator creates."""

    def __init__(self, emulator: KubernetesEmulator) -> None:
        self._emulator = emulator
        self._logs: dict[str, bytes] = {}
        self._uids = itertools.count(1)
        emulator[PODS, subresource("log")] << self._serve_log

    def _serve_log(self, request: Request) -> bytes:
        return self._logs.get(request.name or "", b"")

    def job(self, name: str) -> Mapping[str, Any] | None:
        key = (JOBS, NAMESPACE, name)
        if key not in self._emulator.objects or self._emulator.objects[key].deleted:
            return None
        found: Mapping[str, Any] = self._emulator.objects[key].raw
        return found

    def jobs(self) -> list[str]:
        return sorted(
            name
            for (kind, _, name), obj in self._emulator.objects.items()
            if kind == JOBS and not obj.deleted
        )

    async def started(self, name: str) -> Mapping[str, Any]:
        """Waits for the operator to create Job `name`, then runs its pod.

        A Job this controller started already has a uid; one without is new, so waiting for
        that also catches a Job deleted and created again under the same name.
        """

        def created() -> bool:
            job = self.job(name)
            return job is not None and "uid" not in job["metadata"]

        await eventually(created, what=f"Job {name}")
        uid = f"uid-{next(self._uids)}"
        self._emulator.objects[JOBS, NAMESPACE, name].patch({"metadata": {"uid": uid}})
        job = self._emulator.objects[JOBS, NAMESPACE, name].raw
        labels = {**job["spec"]["template"]["metadata"]["labels"], JOB_UID_LABEL: uid}
        self._emulator.objects[PODS, NAMESPACE, f"{name}-pod"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-pod",
                "namespace": NAMESPACE,
                "labels": labels,
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "reprocess", "state": {"running": {}}}],
            },
        }
        self._logs[f"{name}-pod"] = b""
        found: Mapping[str, Any] = job
        return found

    def prints(self, name: str, *lines: str) -> None:
        """The pod of Job `name` writes `lines` to its log."""
        self._logs[f"{name}-pod"] += "".join(f"{line}\n" for line in lines).encode()

    def ends(
        self,
        name: str,
        *,
        exit_code: int,
        message: str = "",
        job_reason: str = "BackoffLimitExceeded",
    ) -> None:
        """The container of Job `name` exits; the Job controller records the outcome."""
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message,
        }
        self._emulator.objects[PODS, NAMESPACE, f"{name}-pod"].patch(
            {
                "status": {
                    "phase": "Succeeded" if exit_code == 0 else "Failed",
                    "containerStatuses": [
                        {"name": "reprocess", "state": {"terminated": terminated}}
                    ],
                }
            }
        )
        if exit_code == 0:
            status: dict[str, Any] = {
                "conditions": [{"type": "Complete", "status": "True"}],
                "succeeded": 1,
            }
        else:
            failed = {"type": "Failed", "status": "True", "reason": job_reason}
            status = {"conditions": [failed | {"message": "as the test says"}], "failed": 1}
        self._emulator.objects[JOBS, NAMESPACE, name].patch({"status": status})

    def vanishes(self, name: str) -> None:
        """Someone deletes Job `name` behind the operator's back."""
        self._emulator.objects[JOBS, NAMESPACE, name].delete()


class Cluster:
    """The API double as a test sees it: create, read and delete `Reprocessing`s."""

    def __init__(self, emulator: KubernetesEmulator) -> None:
        self.emulator = emulator
        self.jobs = JobController(emulator)
        self._path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"

    async def create(self, name: str, spec: Mapping[str, Any]) -> None:
        # kmock does not version objects; kopf's optimistic JSON patches compare this one.
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Reprocessing",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"}
            | {"resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": dict(spec),
        }
        response = await self.emulator.post(self._path, json=body)
        assert response.status == 200, await response.text()

    async def delete(self, name: str) -> None:
        response = await self.emulator.delete(f"{self._path}/{name}")
        assert response.status == 200, await response.text()

    def deploy(self, deployment: dict[str, Any]) -> None:
        name = deployment["metadata"]["name"]
        self.emulator.objects[DEPLOYMENTS, NAMESPACE, name] = deployment

    def exists(self, name: str) -> bool:
        key = (REPROCESSINGS, NAMESPACE, name)
        return key in self.emulator.objects and not self.emulator.objects[key].deleted

    def status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.emulator.objects[REPROCESSINGS, NAMESPACE, name].get(
            "status", {}
        )
        return found

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        """The condition of type `kind` of `name`, which must have one."""
        for condition in self.status(name).get("conditions", ()):
            if condition["type"] == kind:
                found: dict[str, Any] = condition
                return found
        raise AssertionError(f"{name} has no {kind} condition: {self.status(name)}")

    async def phase(self, name: str, phase: str) -> dict[str, Any]:
        """Waits until `name` is in `phase`; returns its status."""
        await eventually(
            lambda: self.status(name).get("phase") == phase,
            what=lambda: f"{name} to be {phase}; its status is {self.status(name)}",
        )
        return self.status(name)


@pytest.fixture
def cluster(kmock: KubernetesEmulator) -> Cluster:
    # What a real API server lists in its discovery and the operator relies on: kopf waits
    # for namespaces and CRDs to be known (though it does not scan them), posts events, and
    # the handlers use Jobs, pods and their logs, Deployments, and the CRD itself.
    kmock.resources["v1/namespaces"] = ResourceInfo(kind="Namespace", namespaced=False)
    kmock.resources["v1/events"] = ResourceInfo(kind="Event", namespaced=True)
    kmock.resources["v1/pods"] = ResourceInfo(kind="Pod", namespaced=True, subresources={"log"})
    kmock.resources["batch/v1/jobs"] = ResourceInfo(kind="Job", namespaced=True)
    kmock.resources["apps/v1/deployments"] = ResourceInfo(kind="Deployment", namespaced=True)
    kmock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False
    )
    kmock.resources[REPROCESSINGS] = ResourceInfo(
        kind="Reprocessing",
        singular="reprocessing",
        namespaced=True,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        subresources={"status"},
    )
    return Cluster(kmock)


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> OperatorSettings:
    """`FAST`, or the settings a test passes with `parametrize(..., indirect=True)`."""
    chosen: OperatorSettings = getattr(request, "param", FAST)
    return chosen


@pytest.fixture
async def operator(cluster: Cluster, settings: OperatorSettings) -> AsyncIterator[Cluster]:
    """The operator, running until the test ends.

    It runs in a thread with an event loop of its own, as in a process of its own: on exit
    kopf cancels every task of its loop that it did not find at start, which in the test's
    loop would include the test's teardown. It reaches the API double over TCP either way.
    """
    url = str(cluster.emulator.url).rstrip("/")

    def connect() -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url)

    registry = build_registry(api=KubernetesApi(connect), settings=settings, connect=connect)
    stop = threading.Event()
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=registry,
                    settings=kopf_settings(),
                    namespaces=[NAMESPACE],
                    standalone=True,
                    stop_flag=stop,
                )
            )
        except BaseException as error:  # noqa: BLE001  (reported by the fixture below)
            crashed.append(error)

    thread = threading.Thread(target=run, name="operator", daemon=True)
    thread.start()

    def watching() -> bool:
        return bool(crashed) or any(
            request.action == action.WATCH and request.resource == REPROCESSINGS
            for request in cluster.emulator
        )

    try:
        await eventually(watching, what="the operator to watch Reprocessings")
        yield cluster
    finally:
        stop.set()
        # Joined from a worker thread, so this loop keeps serving the operator's last calls.
        await asyncio.to_thread(thread.join, WAIT_S)
    assert not thread.is_alive(), f"the operator did not stop within {WAIT_S} s"
    assert not crashed, f"the operator crashed: {crashed!r}"
