"""kopf handlers of the reprocessing operator: one Job per attempt, followed to the end.

A `Reprocessing` goes through these steps:

- On creation the operator starts attempt 1: it finds the service's API Deployment, copies
  its image and settings into a Job and creates it (phase Running). A rebuild waits
  (phase Blocked, condition Conflict) while another rebuild of the same views is Running.
- A timer follows every resource that is not finished. While its Job runs, the timer copies
  the last progress line of the pod's log into `status.progress`. When the Job succeeds the
  resource is Succeeded. When it fails, the next attempt starts after a doubling backoff
  (phase Pending meanwhile) until `maxAttempts` failed; then the resource is Failed. Exit
  code 75 is a conflict, not a failure: the resource is Blocked and tries again later with
  the same attempt number.
- Deleting the resource deletes its Jobs, which stops a running pod.

The Jobs never retry by themselves, and their names are fixed per attempt, so a step that
runs twice (after an operator restart, say) finds the Job it created the first time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import kopf
import structlog

from datasync.settings import SettingsGroup
from operador.crd import (
    ACTIVE_PHASES,
    GROUP,
    PLURAL,
    VERSION,
    InvalidSpecError,
    Manifest,
    Mode,
    Phase,
    ReprocessingSpec,
    StatusChange,
    parse_timestamp,
    running_rebuild,
    timestamp,
)
from operador.jobs import (
    CONFLICT_EXIT_CODE,
    CONTAINER,
    JOB_UID_LABEL,
    REPROCESSING_LABEL,
    JobState,
    Progress,
    conflict,
    failure_message,
    job_manifest,
    job_state,
    newest,
    parse_progress,
    pod_template,
    retry_delay_s,
    running_container,
    short_name,
    termination,
)
from operador.kube import (
    AlreadyExistsError,
    Connect,
    KubernetesApi,
    KubernetesApiError,
    NotFoundError,
    namespaced,
)

log = structlog.get_logger(__name__)

CRD: Mapping[str, str] = {"group": GROUP, "version": VERSION}
Clock = Callable[[], dt.datetime]
BoundLog = Any
"""A structlog logger with the resource's fields bound (structlog types it as Any)."""


class OperatorSettings(SettingsGroup, frozen=True):
    """How the operator paces its work. Read from `OPERATOR_*` variables."""

    prefix: ClassVar[str] = "OPERATOR_"

    health_host: str = "127.0.0.1"
    """Interface of the health endpoint. Loopback by default; containers set 0.0.0.0."""

    health_port: int = 8080
    """Port of kopf's liveness endpoint, which serves `/health/live` and `/health/ready`."""

    follow_interval_s: float = 5.0
    """How often a running Job is looked at. Progress lines come every few seconds, and
    each look costs three small API calls per active resource."""

    retry_backoff_s: float = 10.0
    """Wait after the first failed attempt; it doubles with every further one."""

    retry_backoff_max_s: float = 600.0
    """Longest wait between attempts, so a large `maxAttempts` does not wait for hours."""

    conflict_retry_s: float = 30.0
    """Wait before trying again after a command reported a conflict (exit 75). The other
    rebuild, or the consumers of the group, usually need minutes, not seconds."""

    api_retry_s: float = 5.0
    """Wait before repeating a step after the Kubernetes API failed in a passing way."""

    job_ttl_s: int = 86_400
    """How long a finished Job and its pod (with its log) stay for inspection: one day."""

    log_tail_lines: int = 20
    """Lines read from the end of the pod's log to find the latest progress line."""

    service_label: str = "app.kubernetes.io/name"
    """Label whose value names the service, on its API Deployment and pods."""

    process_label: str = "app.kubernetes.io/component"
    """Label whose value is `api` on the service's API Deployment and pods. A Job's pod gets
    `reprocessing` instead, so the API's Service and disruption budget never count it."""

    selector: str = ""
    """More labels (`key=value,...`) the API Deployment must have. A chart sets its release
    here, so two releases in one namespace never borrow each other's settings."""

    def __post_init__(self) -> None:
        self.api_labels("service")

    def api_labels(self, service: str) -> dict[str, str]:
        """The labels of `service`'s API Deployment.

        Raises:
            ValueError: `selector` is not a list of `key=value`.
        """
        labels: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in self.selector.split(","))):
            key, equals, value = item.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise ValueError(f"selector item {item!r} is not key=value")
            labels[key.strip()] = value.strip()
        return labels | {self.service_label: service, self.process_label: "api"}

    def job_relabel(self) -> dict[str, str]:
        """Labels of a Job's pod that differ from the API pods'."""
        return {self.process_label: "reprocessing"}


class WatchSettings(SettingsGroup, frozen=True):
    """Where the operator works. Read from `WATCH_NAMESPACE`."""

    watch_namespace: str
    """The one namespace whose `Reprocessing` resources the operator handles; its Role
    grants nothing elsewhere."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Reprocessor:
    """The steps of a `Reprocessing`, each returning the status fields to merge.

    Args:
        api: the Kubernetes API, for Jobs, pods, logs and Deployments.
        settings: pacing of retries and follow-ups.
        clock: the current time; tests may pass their own.
    """

    def __init__(
        self, api: KubernetesApi, settings: OperatorSettings, *, clock: Clock = utc_now
    ) -> None:
        self._api = api
        self._settings = settings
        self._clock = clock

    async def start(self, body: Mapping[str, Any], *, attempt: int) -> Manifest:
        """Creates the Job of attempt `attempt`, unless something must end first."""
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        change = StatusChange(body.get("status") or {}, now=self._clock())
        bound = log.bind(reprocessing=name, namespace=namespace, attempt=attempt)
        try:
            spec = ReprocessingSpec.from_resource(body.get("spec") or {})
        except InvalidSpecError as error:
            bound.error("reprocessing.invalid_spec", error=str(error), next_step="none")
            return change.failed(reason="InvalidSpec", message=str(error))

        try:
            return await self._start(body, spec=spec, attempt=attempt, change=change, bound=bound)
        except KubernetesApiError as error:
            return self._refused(error, change=change, step="start", bound=bound)

    async def _start(
        self,
        body: Mapping[str, Any],
        *,
        spec: ReprocessingSpec,
        attempt: int,
        change: StatusChange,
        bound: BoundLog,
    ) -> Manifest:
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        if spec.mode is Mode.REBUILD:
            others = await self._api.list(namespaced(namespace, PLURAL, **CRD))
            blocker = running_rebuild(others, name=name, service=spec.service)
            if blocker is not None:
                # Said once when it starts waiting; every later look is a debug line.
                first = (body.get("status") or {}).get("phase") != Phase.BLOCKED
                (bound.info if first else bound.debug)(
                    "reprocessing.blocked",
                    by=blocker,
                    next_step="starts when that rebuild is no longer Running",
                )
                return change.blocked(
                    reason="RebuildInProgress",
                    message=f"rebuild {blocker} of the {spec.service} views is Running;"
                    " this one starts when it ends",
                    retry_at=None,
                )

        selector = self._settings.api_labels(spec.service)
        deployments = await self._api.list(
            namespaced(namespace, "deployments", group="apps"), labels=selector
        )
        deployment = newest(deployments)
        if deployment is None:
            first = (body.get("status") or {}).get("phase") != Phase.PENDING
            (bound.warning if first else bound.debug)(
                "reprocessing.service_not_found",
                service=spec.service,
                next_step=f"looks again in {self._settings.follow_interval_s:g} s",
            )
            return change.waiting(
                reason="ServiceNotFound",
                message=f"no Deployment labelled {_selector(selector)} in {namespace} to copy"
                " the image and settings from",
            )

        try:
            template = pod_template(deployment, relabel=self._settings.job_relabel())
        except ValueError as error:
            bound.warning(
                "reprocessing.service_unusable",
                error=str(error),
                next_step=f"looks again in {self._settings.follow_interval_s:g} s",
            )
            return change.waiting(reason="ServiceUnusable", message=str(error))
        job = job_manifest(
            body,
            spec=spec,
            attempt=attempt,
            template=template,
            ttl_after_finished_s=self._settings.job_ttl_s,
        )
        await self._create(job, bound=bound)
        bound.info(
            "reprocessing.job_created",
            job=job["metadata"]["name"],
            max_attempts=spec.max_attempts,
            next_step=f"follows the Job every {self._settings.follow_interval_s:g} s",
        )
        return change.started(
            job=job["metadata"]["name"], attempt=attempt, max_attempts=spec.max_attempts
        )

    async def _create(self, job: Manifest, *, bound: BoundLog) -> None:
        """Creates `job`; a Job of that name left by an earlier run of this step is taken
        over if it runs or succeeded, and replaced if it failed."""
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        path = namespaced(namespace, "jobs", group="batch")
        try:
            await self._api.create(path, job)
        except AlreadyExistsError:
            existing = await self._api.get(namespaced(namespace, "jobs", name, group="batch"))
            if job_state(existing)[0] is not JobState.FAILED:
                bound.info("reprocessing.job_adopted", job=name, next_step="follows it")
                return
            await self._api.delete(namespaced(namespace, "jobs", name, group="batch"))
            bound.info(
                "reprocessing.stale_job_deleted",
                job=name,
                next_step=f"creates it again in {self._settings.api_retry_s:g} s",
            )
            raise kopf.TemporaryError(
                f"a failed Job {name} of an earlier try was in the way; deleted it",
                delay=self._settings.api_retry_s,
            ) from None

    async def resume(self, body: Mapping[str, Any]) -> Manifest:
        """Starts the next attempt of a Pending or Blocked resource once it is due."""
        status = body.get("status") or {}
        retry_at = status.get("nextAttemptTime")
        if retry_at and parse_timestamp(retry_at) > self._clock():
            return {}
        return await self.start(body, attempt=int(status.get("attempts") or 0) + 1)

    async def follow(self, body: Mapping[str, Any]) -> Manifest:
        """Copies the progress of the running Job, and acts once it ended."""
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        status = body.get("status") or {}
        change = StatusChange(status, now=self._clock())
        job = str(status.get("jobName"))
        attempt = int(status.get("attempts") or 1)
        bound = log.bind(reprocessing=name, namespace=namespace, job=job, attempt=attempt)
        try:
            spec = ReprocessingSpec.from_resource(body.get("spec") or {})
        except InvalidSpecError as error:
            return change.failed(reason="InvalidSpec", message=str(error))

        try:
            return await self._follow(
                body, spec=spec, job=job, attempt=attempt, change=change, bound=bound
            )
        except KubernetesApiError as error:
            return self._refused(error, change=change, step="follow", bound=bound)

    async def _follow(
        self,
        body: Mapping[str, Any],
        *,
        spec: ReprocessingSpec,
        job: str,
        attempt: int,
        change: StatusChange,
        bound: BoundLog,
    ) -> Manifest:
        namespace = body["metadata"]["namespace"]
        status = body.get("status") or {}
        try:
            found = await self._api.get(namespaced(namespace, "jobs", job, group="batch"))
        except NotFoundError:
            state, job_message, pod = JobState.FAILED, f"Job {job} is gone", None
        else:
            state, job_message = job_state(found)
            pod = await self._pod(namespace, found)

        fields: Manifest = {}
        progress = await self._progress(namespace, pod) if pod is not None else None
        # A field the command stopped reporting is sent as None, which the merge removes,
        # so it is compared without its None fields.
        if progress is not None and progress.reported() != dict(status.get("progress") or {}):
            fields["progress"] = progress.as_status()
            bound.debug("reprocessing.progress", **progress.as_status())

        if state is JobState.ACTIVE:
            return fields
        if state is JobState.SUCCEEDED:
            bound.info("reprocessing.succeeded", next_step="none; the Job stays for a day")
            return fields | change.succeeded(job=job)

        end = termination(pod) if pod is not None else None
        if end is not None and end.exit_code == CONFLICT_EXIT_CODE:
            return fields | await self._conflicted(
                namespace, job, spec=spec, change=change, attempt=attempt, bound=bound
            )
        message = failure_message(end, job_message)
        if attempt < spec.max_attempts:
            delay_s = retry_delay_s(
                attempt,
                base_s=self._settings.retry_backoff_s,
                max_s=self._settings.retry_backoff_max_s,
            )
            bound.warning(
                "reprocessing.attempt_failed",
                max_attempts=spec.max_attempts,
                error=message,
                next_step=f"attempt {attempt + 1} starts in {delay_s:g} s",
            )
            retry_at = self._clock() + dt.timedelta(seconds=delay_s)
            return fields | change.retrying(attempt=attempt, message=message, retry_at=retry_at)

        reason = "DeadlineExceeded" if "DeadlineExceeded" in job_message else "JobFailed"
        bound.error(
            "reprocessing.failed",
            reason=reason,
            error=message,
            next_step="none; create a new Reprocessing to try again",
        )
        return fields | change.failed(
            reason=reason,
            message=f"attempt {attempt} of {spec.max_attempts} failed: {message}",
        )

    def _refused(
        self, error: KubernetesApiError, *, change: StatusChange, step: str, bound: BoundLog
    ) -> Manifest:
        """A passing API failure (no answer, 5xx, 429) repeats the step soon. Any other
        answer (403 for a missing permission, 422 for an invalid Job) will not change by
        itself: the resource becomes Failed with the API's message."""
        if error.retriable:
            bound.warning(
                "reprocessing.api_unavailable",
                step=step,
                error=str(error),
                next_step=f"repeats the step in {self._settings.api_retry_s:g} s",
            )
            raise kopf.TemporaryError(str(error), delay=self._settings.api_retry_s) from error
        bound.error("reprocessing.api_refused", step=step, error=str(error), next_step="none")
        return change.failed(reason="KubernetesApiError", message=str(error))

    async def _conflicted(
        self,
        namespace: str,
        job: str,
        *,
        spec: ReprocessingSpec,
        change: StatusChange,
        attempt: int,
        bound: BoundLog,
    ) -> Manifest:
        # The attempt gives way rather than fails: its Job goes, so the same attempt
        # number (and Job name) is free for the next try.
        reason, message = conflict(spec)
        retry_at = self._clock() + dt.timedelta(seconds=self._settings.conflict_retry_s)
        with contextlib.suppress(NotFoundError):
            await self._api.delete(namespaced(namespace, "jobs", job, group="batch"))
        bound.warning(
            "reprocessing.conflict",
            reason=reason,
            next_step=f"tries attempt {attempt} again in {self._settings.conflict_retry_s:g} s",
        )
        return change.blocked(
            reason=reason,
            message=f"{message} (exit code {CONFLICT_EXIT_CODE}); will try again at"
            f" {timestamp(retry_at)}",
            retry_at=retry_at,
        ) | {"attempts": attempt - 1}

    async def _pod(self, namespace: str, job: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The newest pod of `job`."""
        uid = job.get("metadata", {}).get("uid")
        labels = (
            {JOB_UID_LABEL: uid} if uid else dict(job["spec"]["template"]["metadata"]["labels"])
        )
        return newest(await self._api.list(namespaced(namespace, "pods"), labels=labels))

    async def _progress(self, namespace: str, pod: Mapping[str, Any]) -> Progress | None:
        """The latest progress line in the log of the container that runs (or ran last)."""
        container = running_container(pod)
        if container is None and (pod.get("status") or {}).get("phase") == "Pending":
            return None
        path = namespaced(namespace, "pods", pod["metadata"]["name"]) + "/log"
        params = {
            "container": container or CONTAINER,
            "tailLines": str(self._settings.log_tail_lines),
        }
        try:
            return parse_progress(await self._api.text(path, params=params))
        except KubernetesApiError as error:
            # Progress is a courtesy: without the log the Job is still followed to its end.
            log.debug("reprocessing.log_unreadable", error=str(error), next_step="tries next time")
            return None

    async def cancel(self, body: Mapping[str, Any]) -> Manifest:
        """Deletes the Jobs of a resource being deleted, which stops a running pod."""
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        jobs_path = namespaced(namespace, "jobs", group="batch")
        try:
            jobs = await self._api.list(jobs_path, labels={REPROCESSING_LABEL: short_name(name)})
            for job in jobs:
                try:
                    await self._api.delete(f"{jobs_path}/{job['metadata']['name']}")
                except NotFoundError:
                    continue
        except KubernetesApiError as error:
            if not error.retriable:
                log.error(
                    "reprocessing.cancel_failed",
                    reprocessing=name,
                    error=str(error),
                    next_step="lets Kubernetes delete the Jobs with their owner",
                )
                raise kopf.PermanentError(str(error)) from error
            raise kopf.TemporaryError(str(error), delay=self._settings.api_retry_s) from error

        was_active = (body.get("status") or {}).get("phase") in ACTIVE_PHASES
        log.info(
            "reprocessing.cancelled" if was_active else "reprocessing.deleted",
            reprocessing=name,
            namespace=namespace,
            jobs_deleted=[job["metadata"]["name"] for job in jobs],
            next_step="none",
        )
        return (
            StatusChange(body.get("status") or {}, now=self._clock()).cancelled()
            if was_active
            else {}
        )


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


def is_active(status: Mapping[str, Any], **_: Any) -> bool:
    return status.get("phase") in ACTIVE_PHASES


def build_registry(
    *, api: KubernetesApi, settings: OperatorSettings, connect: Connect, clock: Clock = utc_now
) -> kopf.OperatorRegistry:
    """The operator's handlers, wired to `api`, in a registry of their own.

    Args:
        api: the client the handlers use beyond kopf's own watching and patching.
        settings: pacing of follow-ups and retries.
        connect: the credentials kopf logs in with (the same `api` uses).
        clock: the current time.
    """
    registry = kopf.OperatorRegistry()
    steps = Reprocessor(api, settings, clock=clock)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connect()

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await api.close()

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, backoff=settings.api_retry_s)
    async def created(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        # A resource with a phase was started before (kopf lost track of it, say): the
        # timer follows it from where it is.
        if not status.get("phase"):
            patch.status.update(await steps.start(body, attempt=1))

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        interval=settings.follow_interval_s,
        backoff=settings.api_retry_s,
        when=is_active,
    )
    async def followed(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        if status.get("phase") == Phase.RUNNING:
            patch.status.update(await steps.follow(body))
        else:
            patch.status.update(await steps.resume(body))

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, backoff=settings.api_retry_s)
    async def deleted(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        patch.status.update(await steps.cancel(body))

    return registry


def kopf_settings() -> kopf.OperatorSettings:
    """kopf configured for one namespace, with its bookkeeping under `datasync.io`.

    kopf keeps which handlers ran in annotations (the CRD's status schema would prune
    kopf's own status fields), and does not scan the cluster for CRDs or namespaces, so the
    operator needs no cluster-wide permission.
    """
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = f"{GROUP}/reprocessing-operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.scanning.disabled = True
    settings.peering.standalone = True

    # kopf turns its log lines about a resource into events of it. At INFO that is one
    # event per timer tick; warnings and errors (a handler that failed and will retry) are
    # the ones worth an event, and the conditions tell the rest.
    settings.posting.level = logging.WARNING

    # A tick of the timer is a few API calls: on exit or deletion it may finish the one it
    # is in rather than be abandoned halfway through.
    settings.background.instant_exit_timeout = 1.0
    return settings
