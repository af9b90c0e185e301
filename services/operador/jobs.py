"""Kubernetes Jobs of the reprocessing operator: the manifest, and what the Job reports.

A `Reprocessing` says which command to run for which service. This module builds the Job
that runs it with the settings of the service's own API Deployment, and reads back what the
cluster reports: the Job's state, how its container ended and the progress lines the command
prints. Nothing here talks to Kubernetes or imports kopf, so every decision the operator
takes is tested on plain data; the handlers fetch, call these functions and write the result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from operador.crd import GROUP, KIND, VERSION, Manifest, Mode, ReprocessingSpec

REPROCESSING_LABEL: Final = "datasync.io/reprocessing"
"""On every Job and pod of a reprocessing; the value is the resource's name, shortened."""
ATTEMPT_LABEL: Final = "datasync.io/attempt"
JOB_UID_LABEL: Final = "batch.kubernetes.io/controller-uid"
"""Set by the Job controller on the pods of one Job (Kubernetes 1.27 and newer)."""

CONTAINER: Final = "reprocess"
CONFLICT_EXIT_CODE: Final = 75
"""EX_TEMPFAIL of sysexits.h: another rebuild of the view runs, or the consumer group to
rewind has running members. Nothing is wrong with the request; it can run once that ends."""

MAX_NAME: Final = 63
"""Job names and label values are at most 63 characters: the Job controller copies the
Job's name into a label of each of its pods."""

EARLIEST_OFFSET: Final = 0
"""Replay from `earliest` asks for offset 0. Where retention already deleted it, Kafka
answers out of range and the group, which resets to the earliest offset, starts at the
first record still kept."""


class JobState(StrEnum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def commands(spec: ReprocessingSpec) -> list[list[str]]:
    """What the Job runs, in order: one command per topic for replay and redrive.

    Each is the argument list of `python -m`, the image's entrypoint, as in the chart's own
    Deployments and migration Jobs.
    """
    if spec.mode is Mode.REBUILD:
        command = ["reports", "rebuild"]
        if spec.start is not None and spec.start.time is not None:
            command += ["--from-time", spec.start.time]
        if spec.restart:
            command.append("--restart")
        return [command]

    result: list[list[str]] = []
    for topic in spec.topics:
        command = ["datasync.reprocess", str(spec.mode)]
        if spec.mode is Mode.REPLAY:
            assert spec.group is not None
            assert spec.start is not None
            command += ["--group", spec.group, "--topic", topic]
            if spec.start.time is not None:
                command += ["--from-time", spec.start.time]
            else:
                offset = EARLIEST_OFFSET if spec.start.offset is None else spec.start.offset
                command += ["--from-offset", str(offset)]
        else:
            command += ["--topic", topic]
            if spec.offsets:
                for offset in spec.offsets:
                    command += ["--offset", str(offset)]
            else:
                command.append("--all")
        result.append(command)
    return result


def short_name(name: str, *, suffix: str = "", limit: int = MAX_NAME) -> str:
    """`name` + `suffix` within `limit` characters, as a DNS label.

    A name that does not fit keeps its start and gets a hash of the whole, so two long names
    that share their first characters still map to different results.
    """
    name = name.replace(".", "-")
    if len(name) + len(suffix) <= limit:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 1
    return f"{name[:keep].rstrip('-')}-{digest}{suffix}"


def job_name(name: str, attempt: int) -> str:
    """The Job of one attempt. Fixed per attempt, so creating it twice finds the first."""
    return short_name(name, suffix=f"-{attempt}")


@dataclass(frozen=True, kw_only=True)
class PodTemplate:
    """What a Job takes over from the service's API Deployment.

    The Job runs the same image with the same settings, secrets, identity and security
    context, on the nodes the API may run on, and its pod carries the API pod's labels, so
    network policies that let the service reach its database and Kafka apply to it too.
    """

    image: str
    labels: Mapping[str, str]
    image_pull_policy: str | None = None
    env: tuple[Manifest, ...] = ()
    env_from: tuple[Manifest, ...] = ()
    resources: Manifest | None = None
    volume_mounts: tuple[Manifest, ...] = ()
    volumes: tuple[Manifest, ...] = ()
    container_security_context: Manifest | None = None
    pod: Manifest = field(default_factory=dict)
    """Fields of the pod spec copied as they are (see `COPIED_POD_FIELDS`)."""


COPIED_VOLUME_KINDS: Final = frozenset(
    {"secret", "configMap", "projected", "emptyDir", "downwardAPI"}
)
"""Volumes the Job may share with the API pods. Claims are left out: a ReadWriteOnce claim
mounted by the API would keep the Job's pod from ever starting."""

COPIED_POD_FIELDS: Final = (
    "securityContext",
    "serviceAccountName",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "imagePullSecrets",
    "nodeSelector",
    "tolerations",
    "terminationGracePeriodSeconds",
)
"""Affinity and spread constraints are left out: they name the API's own pods."""


def pod_template(deployment: Mapping[str, Any], *, relabel: Mapping[str, str]) -> PodTemplate:
    """The part of `deployment`'s pod and first container that a Job of it reuses.

    `relabel` overrides pod labels: the labels that single out the API pods get another
    value, so the API's Service and PodDisruptionBudget never count a Job's pod as theirs.

    Raises:
        ValueError: the Deployment has no container with an image.
    """
    template = deployment.get("spec", {}).get("template", {})
    pod = template.get("spec", {})
    containers = pod.get("containers") or []
    if not containers or not containers[0].get("image"):
        name = deployment.get("metadata", {}).get("name")
        raise ValueError(f"Deployment {name} has no container with an image")
    container = containers[0]

    volumes = {volume.get("name"): volume for volume in pod.get("volumes") or ()}
    shared = {
        name: volume
        for name, volume in volumes.items()
        if COPIED_VOLUME_KINDS & set(volume)
        and any(mount.get("name") == name for mount in container.get("volumeMounts") or ())
    }
    mounts = tuple(
        mount for mount in container.get("volumeMounts") or () if mount.get("name") in shared
    )

    return PodTemplate(
        image=container["image"],
        labels={**(template.get("metadata", {}).get("labels") or {}), **relabel},
        image_pull_policy=container.get("imagePullPolicy"),
        env=tuple(container.get("env") or ()),
        env_from=tuple(container.get("envFrom") or ()),
        resources=container.get("resources"),
        volume_mounts=mounts,
        volumes=tuple(shared.values()),
        container_security_context=container.get("securityContext"),
        pod={key: pod[key] for key in COPIED_POD_FIELDS if key in pod},
    )


HARDENED_CONTAINER: Final[Manifest] = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Applied over whatever the Deployment says, so a Job is never less confined than this."""
HARDENED_POD: Final[Manifest] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
TMP: Final = "/tmp"  # noqa: S108  (a private emptyDir, not the node's shared /tmp)


def job_manifest(
    reprocessing: Mapping[str, Any],
    *,
    spec: ReprocessingSpec,
    attempt: int,
    template: PodTemplate,
    ttl_after_finished_s: int,
) -> Manifest:
    """The Job that runs attempt `attempt` of `reprocessing`.

    The Job never retries by itself (the operator decides), stops after the spec's deadline,
    belongs to the resource (deleting it deletes the Job) and cleans itself up
    `ttl_after_finished_s` after it ends. Replay and redrive of several topics run one
    container per topic, in order: all but the last as init containers.
    """
    metadata = reprocessing["metadata"]
    name = metadata["name"]
    labels = {
        **template.labels,
        REPROCESSING_LABEL: short_name(name),
        ATTEMPT_LABEL: str(attempt),
        "app.kubernetes.io/managed-by": "data-sync-operator",
    }

    # The command needs a writable /tmp under a read-only root; the API pods may mount one.
    mounts = list(template.volume_mounts)
    volumes = list(template.volumes)
    if not any(mount.get("mountPath") == TMP for mount in mounts):
        mounts.append({"name": "reprocess-tmp", "mountPath": TMP})
        volumes.append({"name": "reprocess-tmp", "emptyDir": {"sizeLimit": "64Mi"}})

    containers = [
        _container(f"{CONTAINER}-{index}", arguments, template, mounts)
        for index, arguments in enumerate(commands(spec), start=1)
    ]
    containers[-1]["name"] = CONTAINER

    pod_spec: Manifest = {
        "automountServiceAccountToken": False,
        **template.pod,
        "restartPolicy": "Never",
        "securityContext": {**template.pod.get("securityContext", {}), **HARDENED_POD},
        "containers": containers[-1:],
        "volumes": volumes,
    }
    if len(containers) > 1:
        pod_spec["initContainers"] = containers[:-1]

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, attempt),
            "namespace": metadata.get("namespace"),
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": name,
                    "uid": metadata.get("uid"),
                    "controller": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.active_deadline_s,
            "ttlSecondsAfterFinished": ttl_after_finished_s,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _container(
    name: str, arguments: Sequence[str], template: PodTemplate, mounts: Sequence[Manifest]
) -> Manifest:
    container: Manifest = {
        "name": name,
        "image": template.image,
        "args": list(arguments),
        "env": list(template.env),
        "envFrom": list(template.env_from),
        "securityContext": {**(template.container_security_context or {}), **HARDENED_CONTAINER},
        # When the command dies without a message, its last log lines say why.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": list(mounts),
    }
    if template.image_pull_policy:
        container["imagePullPolicy"] = template.image_pull_policy
    if template.resources:
        container["resources"] = template.resources
    return container


@dataclass(frozen=True, kw_only=True)
class Progress:
    """How far a rebuild got, as it last printed it."""

    done: int
    remaining: int | None = None
    rate_per_s: float | None = None

    def as_status(self) -> Manifest:
        """The fields of `status.progress`; None removes one the command stopped reporting."""
        return {"done": self.done, "remaining": self.remaining, "ratePerSecond": self.rate_per_s}

    def reported(self) -> Manifest:
        """`status.progress` as it reads once `as_status()` is merged into it."""
        return {key: value for key, value in self.as_status().items() if value is not None}


PROGRESS_EVENTS: Final = frozenset({"rebuild.progress"})
FINAL_EVENTS: Final = frozenset({"rebuild.switched"})


def parse_progress(log: str) -> Progress | None:
    """The last progress a command printed in `log`, or None if it printed none yet.

    Lines that are not JSON objects (console logs, tracebacks) and events of other names
    are skipped; a final event means nothing remains.
    """
    for line in reversed(log.splitlines()):
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or not isinstance(event.get("done"), int):
            continue
        if event.get("event") in FINAL_EVENTS:
            return Progress(done=event["done"], remaining=0)
        if event.get("event") in PROGRESS_EVENTS:
            remaining = event.get("remaining")
            rate = event.get("rate_per_s")
            return Progress(
                done=event["done"],
                remaining=remaining if isinstance(remaining, int) else None,
                rate_per_s=float(rate) if isinstance(rate, int | float) else None,
            )
    return None


def job_state(job: Mapping[str, Any]) -> tuple[JobState, str]:
    """Whether `job` still runs, succeeded or failed, with the Job controller's reason."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobState.SUCCEEDED, ""
        if condition.get("type") == "Failed":
            reason = condition.get("reason") or "Failed"
            message = condition.get("message") or ""
            return JobState.FAILED, f"{reason}: {message}" if message else reason
    if status.get("succeeded"):
        return JobState.SUCCEEDED, ""
    if status.get("failed"):
        return JobState.FAILED, "the pod failed"
    return JobState.ACTIVE, ""


@dataclass(frozen=True, kw_only=True)
class Termination:
    """How a container of the Job's pod ended."""

    container: str
    exit_code: int
    reason: str
    message: str


def termination(pod: Mapping[str, Any]) -> Termination | None:
    """The first container of `pod` that failed, else its last one that ended."""
    status = pod.get("status") or {}
    ended: list[Termination] = []
    for container in [
        *status.get("initContainerStatuses", ()),
        *status.get("containerStatuses", ()),
    ]:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated is None:
            continue
        ended.append(
            Termination(
                container=container.get("name", ""),
                exit_code=int(terminated.get("exitCode", 0)),
                reason=terminated.get("reason") or "",
                message=(terminated.get("message") or "").strip(),
            )
        )
    failed = [end for end in ended if end.exit_code != 0]
    if failed:
        return failed[0]

    return ended[-1] if ended else None


def running_container(pod: Mapping[str, Any]) -> str | None:
    """The container of `pod` that runs now: the one whose log has the latest progress."""
    status = pod.get("status") or {}
    for container in [
        *status.get("initContainerStatuses", ()),
        *status.get("containerStatuses", ()),
    ]:
        if "running" in (container.get("state") or {}):
            name: str = container.get("name", "")
            return name
    return None


def newest(objects: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recently created of `objects` (RFC 3339 UTC timestamps sort as text)."""
    ordered = sorted(
        objects, key=lambda item: item.get("metadata", {}).get("creationTimestamp", "")
    )
    return ordered[-1] if ordered else None


def retry_delay_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """Wait after failed attempt `attempt` (from 1): `base_s` doubled per attempt, capped."""
    return float(min(base_s * 2 ** (attempt - 1), max_s))


def conflict(spec: ReprocessingSpec) -> tuple[str, str]:
    """The reason and message of a conflict a command reported with exit code 75."""
    if spec.mode is Mode.REBUILD:
        return "RebuildInProgress", f"another rebuild of the {spec.service} views is running"
    if spec.mode is Mode.REPLAY:
        return (
            "ConsumerGroupActive",
            f"consumer group {spec.group} has running members, and Kafka moves a group's"
            " offsets only while none runs; stop its consumers",
        )
    return "RetryLater", "the command asked to be run again later"


def failure_message(end: Termination | None, job_message: str) -> str:
    """Why an attempt failed: the container's own last words, else the Job's reason."""
    if end is None:
        return job_message or "the Job failed and left no pod to say why"
    detail = end.message or end.reason or "no message"
    message = f"container {end.container} exited with code {end.exit_code}: {detail}"
    return f"{job_message}; {message}" if job_message.startswith("DeadlineExceeded") else message
