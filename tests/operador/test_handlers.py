"""The operator end to end against the API double: Jobs, progress, retries, conflicts."""

from __future__ import annotations

import json

import msgspec
import pytest
from kmock import KubernetesError, Request, action
from structlog.testing import capture_logs

from tests.operador.conftest import FAST, JOBS, Cluster, api_deployment, eventually

REBUILD = {"service": "reports", "mode": "rebuild", "maxAttempts": 3}


def deletions(cluster: Cluster) -> list[Request]:
    """The operator's requests to delete a Job."""
    return [
        request
        for request in cluster.emulator
        if request.action == action.DELETE and request.resource == JOBS
    ]


def progress_line(done: int, remaining: int, rate: float) -> str:
    return json.dumps(
        {"event": "rebuild.progress", "done": done, "remaining": remaining, "rate_per_s": rate}
    )


async def test_a_rebuild_runs_as_a_job_and_reports_its_progress_until_it_succeeds(
    operator: Cluster,
) -> None:
    operator.deploy(api_deployment("reports"))

    await operator.create("views", REBUILD)
    job = await operator.jobs.started("views-1")
    running = await operator.phase("views", "Running")
    operator.jobs.prints("views-1", "starting", progress_line(1200, 300, 850.5))
    await eventually(
        lambda: operator.status("views").get("progress", {}).get("done") == 1200,
        what="the progress of views-1",
    )
    progress = operator.status("views")["progress"]
    operator.jobs.prints("views-1", json.dumps({"event": "rebuild.switched", "done": 1500}))
    operator.jobs.ends("views-1", exit_code=0)
    final = await operator.phase("views", "Succeeded")

    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/data-sync:1.4.2"
    assert container["args"] == ["reports", "rebuild"]
    assert container["envFrom"] == [{"secretRef": {"name": "data-sync-reports"}}]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-views"
    assert (running["jobName"], running["attempts"]) == ("views-1", 1)
    assert running["conditions"][0]["type"] == "Running"
    assert running["conditions"][0]["status"] == "True"
    assert progress == {"done": 1200, "remaining": 300, "ratePerSecond": 850.5}
    assert final["progress"] == {"done": 1500, "remaining": 0}
    assert final["startTime"] == running["startTime"]
    assert "completionTime" in final
    assert operator.condition("views", "Succeeded") == {
        "type": "Succeeded",
        "status": "True",
        "reason": "JobSucceeded",
        "message": "Job views-1 finished",
        "lastTransitionTime": final["completionTime"],
    }


async def test_a_failed_attempt_is_retried_after_a_backoff_until_none_is_left(
    operator: Cluster,
) -> None:
    operator.deploy(api_deployment("reports"))

    with capture_logs() as logs:
        await operator.create("views", REBUILD | {"maxAttempts": 2})
        await operator.jobs.started("views-1")
        await operator.phase("views", "Running")
        operator.jobs.ends("views-1", exit_code=1, message="ValueError: boom")
        pending = await operator.phase("views", "Pending")
        await operator.jobs.started("views-2")
        second = await operator.phase("views", "Running")
        operator.jobs.ends("views-2", exit_code=1, message="ValueError: boom again")
        final = await operator.phase("views", "Failed")

    assert pending["nextAttemptTime"]
    assert pending["conditions"][0]["reason"] == "AttemptFailed"
    assert pending["conditions"][0]["message"].startswith(
        "attempt 1 failed: container reprocess exited with code 1: ValueError: boom;"
        " attempt 2 starts at"
    )
    assert (second["attempts"], second["jobName"]) == (2, "views-2")
    assert "nextAttemptTime" not in second
    assert operator.condition("views", "Failed") == {
        "type": "Failed",
        "status": "True",
        "reason": "JobFailed",
        "message": "attempt 2 of 2 failed: container reprocess exited with code 1:"
        " ValueError: boom again",
        "lastTransitionTime": final["completionTime"],
    }
    failures = [entry for entry in logs if entry["event"] == "reprocessing.attempt_failed"]
    assert [entry["next_step"] for entry in failures] == ["attempt 2 starts in 0.2 s"]
    assert [entry["event"] for entry in logs if entry["event"] == "reprocessing.failed"] == [
        "reprocessing.failed"
    ]


async def test_a_rebuild_waits_while_another_of_the_same_views_runs(operator: Cluster) -> None:
    operator.deploy(api_deployment("reports"))
    await operator.create("first", REBUILD)
    await operator.jobs.started("first-1")
    await operator.phase("first", "Running")

    await operator.create("second", REBUILD)
    blocked = await operator.phase("second", "Blocked")
    jobs_while_blocked = operator.jobs.jobs()
    operator.jobs.ends("first-1", exit_code=0)
    await operator.jobs.started("second-1")
    running = await operator.phase("second", "Running")

    assert jobs_while_blocked == ["first-1"]
    assert "attempts" not in blocked
    conflict = next(item for item in blocked["conditions"] if item["type"] == "Conflict")
    assert conflict["status"] == "True"
    assert conflict["reason"] == "RebuildInProgress"
    assert conflict["message"] == (
        "rebuild first of the reports views is Running; this one starts when it ends"
    )
    assert running["attempts"] == 1
    assert operator.condition("second", "Conflict")["status"] == "False"


async def test_exit_code_75_is_a_conflict_and_the_same_attempt_runs_again_later(
    operator: Cluster,
) -> None:
    operator.deploy(api_deployment("reports"))
    await operator.create("views", REBUILD)
    await operator.jobs.started("views-1")
    await operator.phase("views", "Running")

    operator.jobs.ends("views-1", exit_code=75, message="another rebuild of these views runs")
    blocked = await operator.phase("views", "Blocked")
    await operator.jobs.started("views-1")
    running = await operator.phase("views", "Running")

    conflict = next(item for item in blocked["conditions"] if item["type"] == "Conflict")
    assert conflict["reason"] == "RebuildInProgress"
    assert conflict["message"].startswith(
        "another rebuild of the reports views is running (exit code 75); will try again at"
    )
    assert blocked["attempts"] == 0
    assert blocked["nextAttemptTime"]
    assert [request.name for request in deletions(operator)] == ["views-1"]
    assert running["attempts"] == 1


async def test_deleting_a_reprocessing_deletes_its_job(operator: Cluster) -> None:
    operator.deploy(api_deployment("reports"))
    await operator.create("views", REBUILD)
    await operator.jobs.started("views-1")
    await operator.phase("views", "Running")

    with capture_logs() as logs:
        await operator.delete("views")
        await eventually(lambda: not operator.exists("views"), what="views to be gone")

    assert operator.jobs.job("views-1") is None
    policies = [request.data["propagationPolicy"] for request in deletions(operator)]
    assert policies == ["Background"]
    cancelled = [entry for entry in logs if entry["event"] == "reprocessing.cancelled"]
    assert [entry["jobs_deleted"] for entry in cancelled] == [["views-1"]]


async def test_a_replay_waits_for_its_service_and_rewinds_each_topic(operator: Cluster) -> None:
    replay = {
        "service": "clientes",
        "mode": "replay",
        "group": "clientes-enriquecimento",
        "topics": ["pedidos", "clientes"],
        "from": {"time": "2026-05-01T00:00:00Z"},
    }

    await operator.create("rewind", replay)
    waiting = await operator.phase("rewind", "Pending")
    operator.deploy(api_deployment("clientes"))
    job = await operator.jobs.started("rewind-1")
    await operator.phase("rewind", "Running")

    assert waiting["conditions"][0]["reason"] == "ServiceNotFound"
    assert waiting["conditions"][0]["message"] == (
        "no Deployment labelled app.kubernetes.io/name=clientes,app.kubernetes.io/component=api"
        " in data-sync to copy the image and settings from"
    )
    pod = job["spec"]["template"]["spec"]
    assert [container["args"][5] for container in pod["initContainers"]] == ["pedidos"]
    assert pod["containers"][0]["args"] == [
        "datasync.reprocess",
        "replay",
        "--group",
        "clientes-enriquecimento",
        "--topic",
        "clientes",
        "--from-time",
        "2026-05-01T00:00:00Z",
    ]


async def test_a_job_that_vanishes_counts_as_a_failed_attempt(operator: Cluster) -> None:
    operator.deploy(api_deployment("reports"))
    await operator.create("views", REBUILD | {"maxAttempts": 1})
    await operator.jobs.started("views-1")
    await operator.phase("views", "Running")

    operator.jobs.vanishes("views-1")
    await operator.phase("views", "Failed")

    assert operator.condition("views", "Failed")["message"] == (
        "attempt 1 of 1 failed: Job views-1 is gone"
    )


async def test_a_job_past_its_deadline_fails_with_that_reason(operator: Cluster) -> None:
    operator.deploy(api_deployment("reports"))
    await operator.create("views", REBUILD | {"maxAttempts": 1, "activeDeadlineSeconds": 60})
    job = await operator.jobs.started("views-1")
    await operator.phase("views", "Running")

    operator.jobs.ends("views-1", exit_code=143, job_reason="DeadlineExceeded")
    await operator.phase("views", "Failed")

    assert job["spec"]["activeDeadlineSeconds"] == 60
    failed = operator.condition("views", "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert failed["message"] == (
        "attempt 1 of 1 failed: DeadlineExceeded: as the test says; container reprocess"
        " exited with code 143: Error"
    )


async def test_a_spec_the_commands_cannot_run_fails_at_once(operator: Cluster) -> None:
    await operator.create("wrong", {"service": "pedidos", "mode": "rebuild"})
    await operator.phase("wrong", "Failed")

    assert operator.jobs.jobs() == []
    assert operator.condition("wrong", "Failed")["reason"] == "InvalidSpec"


async def test_a_job_the_api_refuses_fails_the_reprocessing_with_its_reason(
    operator: Cluster,
) -> None:
    operator.deploy(api_deployment("reports"))
    forbidden = KubernetesError(status=403, reason="Forbidden", message="jobs is forbidden")
    operator.emulator[action.CREATE, JOBS] << forbidden

    await operator.create("views", REBUILD)
    await operator.phase("views", "Failed")

    failed = operator.condition("views", "Failed")
    assert failed["reason"] == "KubernetesApiError"
    assert failed["message"].endswith("answered 403: jobs is forbidden")


CHART_LABELS = msgspec.structs.replace(
    FAST,
    service_label="data-sync/service",
    process_label="data-sync/process",
    selector="app.kubernetes.io/name=data-sync,app.kubernetes.io/instance=prod",
)
"""How the chart tells its API Deployments apart (see charts/data-sync/templates)."""


def chart_labels(service: str, process: str, *, release: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "data-sync",
        "app.kubernetes.io/instance": release,
        "data-sync/service": service,
        "data-sync/process": process,
    }


@pytest.mark.parametrize("settings", [CHART_LABELS], indirect=True)
async def test_the_api_deployment_of_the_same_release_is_copied(operator: Cluster) -> None:
    for name, labels, image in [
        ("staging-reports-api", chart_labels("reports", "api", release="staging"), "other:1"),
        ("prod-reports-consumer", chart_labels("reports", "consumer", release="prod"), "c:1"),
        ("prod-reports-api", chart_labels("reports", "api", release="prod"), "data-sync:2.0.0"),
    ]:
        operator.deploy(api_deployment("reports", image=image, labels=labels, name=name))

    await operator.create("views", REBUILD)
    job = await operator.jobs.started("views-1")

    pod = job["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == "data-sync:2.0.0"
    assert pod["metadata"]["labels"] == {
        **chart_labels("reports", "reprocessing", release="prod"),
        "app.kubernetes.io/managed-by": "data-sync-operator",
        "datasync.io/reprocessing": "views",
        "datasync.io/attempt": "1",
    }
