"""Job manifests, what a Job and its pod report, and the pacing of retries: plain data."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from operador.crd import ReprocessingSpec
from operador.jobs import (
    TMP,
    JobState,
    Progress,
    commands,
    conflict,
    failure_message,
    job_manifest,
    job_name,
    job_state,
    newest,
    parse_progress,
    pod_template,
    retry_delay_s,
    running_container,
    short_name,
    termination,
)

RESOURCE = {"metadata": {"name": "views", "namespace": "data-sync", "uid": "uid-views"}}
KUBERNETES = "1.30"
"""The oldest release the chart supports (its `kubeVersion`)."""


def deployment(**pod: Any) -> dict[str, Any]:
    """An API Deployment shaped like the chart's."""
    return {
        "metadata": {"name": "data-sync-reports-api"},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {
                        "app.kubernetes.io/name": "data-sync",
                        "app.kubernetes.io/instance": "prod",
                        "data-sync/service": "reports",
                        "data-sync/process": "api",
                    }
                },
                "spec": {
                    "serviceAccountName": "data-sync-reports",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
                    "imagePullSecrets": [{"name": "registry"}],
                    "affinity": {"podAntiAffinity": {}},
                    "containers": [
                        {
                            "name": "api",
                            "image": "registry.local/data-sync:1.4.2",
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["reports", "api"],
                            "env": [
                                {"name": "APP_ENV", "value": "prod"},
                                {
                                    "name": "DATABASE_URL",
                                    "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}},
                                },
                            ],
                            "envFrom": [{"configMapRef": {"name": "extra"}}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "192Mi"},
                                "limits": {"cpu": "1", "memory": "384Mi"},
                            },
                            "securityContext": {"readOnlyRootFilesystem": False},
                            "volumeMounts": [
                                {"name": "tmp", "mountPath": TMP},
                                {"name": "kafka-ca", "mountPath": "/etc/ca", "readOnly": True},
                                {"name": "data", "mountPath": "/data"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "kafka-ca", "secret": {"secretName": "cluster-ca-cert"}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "unused", "configMap": {"name": "unused"}},
                    ],
                    **pod,
                },
            }
        },
    }


RELABEL = {"data-sync/process": "reprocessing", "app.kubernetes.io/instance": "prod"}


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = job["spec"]["template"]["spec"]
    return found


def manifest(spec: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
    return job_manifest(
        RESOURCE,
        spec=ReprocessingSpec.from_resource(spec),
        attempt=attempt,
        template=pod_template(deployment(), relabel=RELABEL),
        ttl_after_finished_s=86_400,
    )


class TestCommands:
    def test_a_rebuild_runs_the_reports_rebuild_command(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {"service": "reports", "mode": "rebuild", "from": {"time": "2026-05-01T00:00:00Z"}}
        )

        assert commands(spec) == [["reports", "rebuild", "--from-time", "2026-05-01T00:00:00Z"]]

    def test_a_rebuild_that_restarts_discards_the_stopped_one(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {"service": "reports", "mode": "rebuild", "restart": True}
        )

        assert commands(spec) == [["reports", "rebuild", "--restart"]]

    def test_a_replay_rewinds_the_group_on_each_topic_in_turn(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {
                "service": "reports",
                "mode": "replay",
                "group": "reports-views",
                "topics": ["pedidos", "clientes"],
                "from": {"offset": 42},
            }
        )

        replay = ["datasync.reprocess", "replay", "--group", "reports-views", "--topic"]
        assert commands(spec) == [
            [*replay, "pedidos", "--from-offset", "42"],
            [*replay, "clientes", "--from-offset", "42"],
        ]

    def test_a_replay_from_the_earliest_record_asks_for_offset_zero(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {
                "service": "clientes",
                "mode": "replay",
                "group": "clientes-enriquecimento",
                "topics": ["pedidos"],
                "from": {"earliest": True},
            }
        )

        assert commands(spec)[0][-2:] == ["--from-offset", "0"]

    def test_a_replay_from_a_time_passes_it_on(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {
                "service": "reports",
                "mode": "replay",
                "group": "reports-views",
                "topics": ["pedidos"],
                "from": {"time": "2026-05-01T12:00:00Z"},
            }
        )

        assert commands(spec)[0][-2:] == ["--from-time", "2026-05-01T12:00:00Z"]

    def test_a_redrive_without_offsets_sends_back_every_dead_letter(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {"service": "clientes", "mode": "redrive", "topics": ["pedidos"]}
        )

        assert commands(spec) == [["datasync.reprocess", "redrive", "--topic", "pedidos", "--all"]]

    def test_a_redrive_with_offsets_sends_back_those_records(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {"service": "clientes", "mode": "redrive", "topics": ["pedidos"], "offsets": [3, 7]}
        )

        redrive = ["datasync.reprocess", "redrive", "--topic", "pedidos"]
        assert commands(spec) == [[*redrive, "--offset", "3", "--offset", "7"]]


class TestManifest:
    def test_the_job_is_a_valid_kubernetes_job(self) -> None:
        job = manifest({"service": "reports", "mode": "rebuild"})

        kubernetes_validate.validate(job, KUBERNETES, strict=True)

    def test_the_job_runs_the_api_image_with_its_settings_and_secrets(self) -> None:
        container = pod_of(manifest({"service": "reports", "mode": "rebuild"}))["containers"][0]

        assert container["image"] == "registry.local/data-sync:1.4.2"
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert container["args"] == ["reports", "rebuild"]
        assert "command" not in container
        assert [item["name"] for item in container["env"]] == ["APP_ENV", "DATABASE_URL"]
        assert container["envFrom"] == [{"configMapRef": {"name": "extra"}}]
        assert container["resources"]["limits"] == {"cpu": "1", "memory": "384Mi"}

    def test_the_job_never_retries_by_itself_and_ends_on_its_deadline(self) -> None:
        job = manifest({"service": "reports", "mode": "rebuild", "activeDeadlineSeconds": 900})

        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] == 900
        assert job["spec"]["ttlSecondsAfterFinished"] == 86_400
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    def test_the_job_belongs_to_its_reprocessing(self) -> None:
        job = manifest({"service": "reports", "mode": "rebuild"}, attempt=2)

        assert job["metadata"]["name"] == "views-2"
        assert job["metadata"]["namespace"] == "data-sync"
        assert job["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "datasync.io/v1alpha1",
                "kind": "Reprocessing",
                "name": "views",
                "uid": "uid-views",
                "controller": True,
            }
        ]

    def test_the_pod_carries_the_api_labels_but_not_the_ones_that_select_api_pods(
        self,
    ) -> None:
        labels = manifest({"service": "reports", "mode": "rebuild"})["spec"]["template"][
            "metadata"
        ]["labels"]

        assert labels == {
            "app.kubernetes.io/name": "data-sync",
            "app.kubernetes.io/instance": "prod",
            "app.kubernetes.io/managed-by": "data-sync-operator",
            "data-sync/service": "reports",
            "data-sync/process": "reprocessing",
            "datasync.io/reprocessing": "views",
            "datasync.io/attempt": "1",
        }

    def test_the_job_is_at_least_as_confined_as_the_chart_requires(self) -> None:
        pod = pod_of(manifest({"service": "reports", "mode": "rebuild"}))
        context = pod["containers"][0]["securityContext"]

        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["runAsNonRoot"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["fsGroup"] == 10001

    def test_the_pod_keeps_the_api_identity_and_pull_secrets_but_not_its_affinity(
        self,
    ) -> None:
        pod = pod_of(manifest({"service": "reports", "mode": "rebuild"}))

        assert pod["serviceAccountName"] == "data-sync-reports"
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        assert pod["imagePullSecrets"] == [{"name": "registry"}]
        assert "affinity" not in pod

    def test_only_secret_config_and_scratch_volumes_the_api_mounts_are_shared(self) -> None:
        pod = pod_of(manifest({"service": "reports", "mode": "rebuild"}))

        assert [volume["name"] for volume in pod["volumes"]] == ["tmp", "kafka-ca"]
        mounts = pod["containers"][0]["volumeMounts"]
        assert [mount["mountPath"] for mount in mounts] == [TMP, "/etc/ca"]

    def test_a_pod_without_a_writable_tmp_gets_one(self) -> None:
        template = pod_template(
            {"spec": {"template": {"spec": {"containers": [{"image": "data-sync:1"}]}}}},
            relabel={},
        )

        job = job_manifest(
            RESOURCE,
            spec=ReprocessingSpec.from_resource({"service": "reports", "mode": "rebuild"}),
            attempt=1,
            template=template,
            ttl_after_finished_s=60,
        )

        pod = pod_of(job)
        mounts = pod["containers"][0]["volumeMounts"]
        assert mounts == [{"name": "reprocess-tmp", "mountPath": TMP}]
        assert pod["volumes"] == [{"name": "reprocess-tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
        assert pod["automountServiceAccountToken"] is False
        kubernetes_validate.validate(job, KUBERNETES, strict=True)

    def test_several_topics_run_in_order_as_init_containers_then_the_last(self) -> None:
        job = manifest(
            {
                "service": "reports",
                "mode": "redrive",
                "topics": ["pedidos", "clientes", "pedidos-enriquecidos"],
            }
        )

        pod = pod_of(job)
        assert [c["name"] for c in pod["initContainers"]] == ["reprocess-1", "reprocess-2"]
        assert [c["args"][3] for c in pod["initContainers"]] == ["pedidos", "clientes"]
        assert pod["containers"][0]["name"] == "reprocess"
        assert pod["containers"][0]["args"][3] == "pedidos-enriquecidos"
        kubernetes_validate.validate(job, KUBERNETES, strict=True)

    def test_a_deployment_without_an_image_cannot_be_copied(self) -> None:
        with pytest.raises(ValueError, match="Deployment api has no container with an image"):
            pod_template({"metadata": {"name": "api"}, "spec": {}}, relabel={})


class TestNames:
    def test_a_short_name_is_kept(self) -> None:
        assert job_name("views", 3) == "views-3"

    def test_dots_become_dashes(self) -> None:
        assert short_name("views.2026") == "views-2026"

    def test_a_long_name_is_cut_to_63_characters_and_stays_unique(self) -> None:
        first = job_name("a" * 80 + "x", 10)
        second = job_name("a" * 80 + "y", 10)

        assert len(first) == 63
        assert first.endswith("-10")
        assert first != second


class TestProgress:
    def test_the_last_progress_line_wins(self) -> None:
        log = "\n".join(
            [
                json.dumps({"event": "rebuild.progress", "done": 10, "remaining": 90}),
                json.dumps({"event": "rebuild.progress", "done": 50, "remaining": 50}),
                '{"event": "rebuild.progress", "done": 70, "remaining": 30, "rate_per_s": 12.5}',
            ]
        )

        assert parse_progress(log) == Progress(done=70, remaining=30, rate_per_s=12.5)

    def test_other_lines_and_events_are_skipped(self) -> None:
        log = "\n".join(
            [
                json.dumps({"event": "rebuild.progress", "done": 5, "remaining": 1}),
                "Traceback (most recent call last):",
                '{"event": "rebuild.progress", "done": ',
                json.dumps({"event": "kafka.connected", "done": 99}),
                '["not", "an", "object"]',
            ]
        )

        assert parse_progress(log) == Progress(done=5, remaining=1)

    def test_a_switched_rebuild_has_nothing_remaining(self) -> None:
        log = json.dumps({"event": "rebuild.switched", "done": 1500, "skipped": 3})

        assert parse_progress(log) == Progress(done=1500, remaining=0)

    def test_no_progress_yet(self) -> None:
        assert parse_progress("starting\n") is None

    def test_progress_is_written_in_the_status_field_names(self) -> None:
        progress = Progress(done=1200, remaining=300, rate_per_s=850.5)

        assert progress.as_status() == {"done": 1200, "remaining": 300, "ratePerSecond": 850.5}

    def test_a_field_no_longer_reported_is_removed_from_the_status(self) -> None:
        progress = Progress(done=1500, remaining=0)

        assert progress.as_status() == {"done": 1500, "remaining": 0, "ratePerSecond": None}
        assert progress.reported() == {"done": 1500, "remaining": 0}


class TestJobState:
    def test_a_job_without_conditions_is_active(self) -> None:
        assert job_state({"status": {"active": 1}}) == (JobState.ACTIVE, "")

    def test_a_complete_job_succeeded(self) -> None:
        job = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}

        assert job_state(job) == (JobState.SUCCEEDED, "")

    def test_a_failed_job_says_why(self) -> None:
        job = {
            "status": {
                "conditions": [
                    {"type": "FailureTarget", "status": "True"},
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "DeadlineExceeded",
                        "message": "Job was active longer than specified deadline",
                    },
                ]
            }
        }

        assert job_state(job) == (
            JobState.FAILED,
            "DeadlineExceeded: Job was active longer than specified deadline",
        )

    def test_the_counts_tell_when_conditions_are_missing(self) -> None:
        assert job_state({"status": {"succeeded": 1}})[0] is JobState.SUCCEEDED
        assert job_state({"status": {"failed": 1}})[0] is JobState.FAILED


def pod(*, init: list[dict[str, Any]] | None = None, main: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": {
            "initContainerStatuses": init or [],
            "containerStatuses": [{"name": "reprocess", "state": main}],
        }
    }


class TestPods:
    def test_the_first_failed_container_is_what_ended_the_pod(self) -> None:
        found = pod(
            init=[
                {"name": "reprocess-1", "state": {"terminated": {"exitCode": 0}}},
                {
                    "name": "reprocess-2",
                    "state": {"terminated": {"exitCode": 75, "message": "group active\n"}},
                },
            ],
            main={"waiting": {"reason": "PodInitializing"}},
        )

        end = termination(found)

        assert end is not None
        assert (end.container, end.exit_code, end.message) == ("reprocess-2", 75, "group active")

    def test_a_pod_that_succeeded_ends_with_its_last_container(self) -> None:
        end = termination(pod(main={"terminated": {"exitCode": 0, "reason": "Completed"}}))

        assert end is not None
        assert (end.container, end.exit_code) == ("reprocess", 0)

    def test_a_running_pod_has_not_ended(self) -> None:
        assert termination(pod(main={"running": {}})) is None

    def test_the_container_that_runs_is_found_among_init_containers(self) -> None:
        found = pod(
            init=[{"name": "reprocess-1", "state": {"running": {}}}],
            main={"waiting": {}},
        )

        assert running_container(found) == "reprocess-1"
        assert running_container(pod(main={"waiting": {}})) is None

    def test_the_newest_object_is_the_last_created(self) -> None:
        old = {"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}}
        new = {"metadata": {"name": "b", "creationTimestamp": "2026-01-02T00:00:00Z"}}

        assert newest([new, old]) is new
        assert newest([]) is None


class TestFailures:
    def test_the_container_message_says_why_an_attempt_failed(self) -> None:
        end = termination(pod(main={"terminated": {"exitCode": 1, "message": "boom"}}))

        assert failure_message(end, "BackoffLimitExceeded: limit") == (
            "container reprocess exited with code 1: boom"
        )

    def test_a_deadline_is_named_with_what_the_container_said(self) -> None:
        end = termination(pod(main={"terminated": {"exitCode": 143, "reason": "Error"}}))

        assert failure_message(end, "DeadlineExceeded: too long") == (
            "DeadlineExceeded: too long; container reprocess exited with code 143: Error"
        )

    def test_without_a_pod_the_job_says_why(self) -> None:
        assert failure_message(None, "") == "the Job failed and left no pod to say why"

    @pytest.mark.parametrize(
        ("spec", "reason"),
        [
            ({"service": "reports", "mode": "rebuild"}, "RebuildInProgress"),
            (
                {
                    "service": "reports",
                    "mode": "replay",
                    "group": "reports-views",
                    "topics": ["pedidos"],
                    "from": {"earliest": True},
                },
                "ConsumerGroupActive",
            ),
            ({"service": "reports", "mode": "redrive", "topics": ["pedidos"]}, "RetryLater"),
        ],
    )
    def test_a_conflict_is_explained_per_mode(self, spec: dict[str, Any], reason: str) -> None:
        assert conflict(ReprocessingSpec.from_resource(spec))[0] == reason


class TestBackoff:
    def test_the_wait_doubles_with_every_failed_attempt(self) -> None:
        waits = [retry_delay_s(attempt, base_s=10, max_s=600) for attempt in (1, 2, 3, 4)]

        assert waits == [10.0, 20.0, 40.0, 80.0]

    def test_the_wait_is_capped(self) -> None:
        assert retry_delay_s(20, base_s=10, max_s=600) == 600.0
