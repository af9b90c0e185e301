"""The `Reprocessing` resource: its spec, its phases and every change of its status.

The CRD in the chart (`charts/data-sync/crds/`) is the contract users write against; this
module reads a spec the way that schema defines it, and builds each status the operator
writes. Each change is a function from the current status to the fields to merge into it,
so what a user sees in `kubectl get reprocessings` after each event is tested on plain data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Self

Manifest = dict[str, Any]
"""A Kubernetes object, or part of one, as the API reads and writes it."""

GROUP: Final = "datasync.io"
VERSION: Final = "v1alpha1"
KIND: Final = "Reprocessing"
PLURAL: Final = "reprocessings"

SERVICES: Final = ("pedidos", "clientes", "reports")
MAX_MESSAGE: Final = 600
"""Condition messages keep their last characters: enough for the error at the end of a
traceback, short enough to read in `kubectl describe`."""


class InvalidSpecError(ValueError):
    """The spec asks for something the commands cannot do. The message names the field.

    The CRD schema rejects these on admission already; this check covers API servers that
    do not evaluate the CRD's validation rules, and resources created before a rule existed.
    """


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    BLOCKED = "Blocked"
    CANCELLED = "Cancelled"


ACTIVE_PHASES: Final = frozenset({Phase.PENDING, Phase.RUNNING, Phase.BLOCKED})
"""Phases the operator keeps following; the others are final."""


class Mode(StrEnum):
    REBUILD = "rebuild"
    REPLAY = "replay"
    REDRIVE = "redrive"


class ConditionType(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CONFLICT = "Conflict"


@dataclass(frozen=True, kw_only=True)
class StartAt:
    """Where a replay or a rebuild starts: exactly one of the three is set."""

    earliest: bool = False
    offset: int | None = None
    time: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReprocessingSpec:
    """The spec of a `Reprocessing`, checked."""

    service: str
    mode: Mode
    topics: tuple[str, ...] = ()
    start: StartAt | None = None
    group: str | None = None
    offsets: tuple[int, ...] = ()
    restart: bool = False
    max_attempts: int = 3
    active_deadline_s: int = 3600

    @classmethod
    def from_resource(cls, spec: Mapping[str, Any]) -> Self:
        """Reads and checks `spec` as the CRD defines it.

        Raises:
            InvalidSpecError: a field is missing, malformed, or does not fit the mode.
        """
        service = spec.get("service")
        if service not in SERVICES:
            raise InvalidSpecError(f"spec.service must be one of {', '.join(SERVICES)}")
        try:
            mode = Mode(str(spec.get("mode")))
        except ValueError as error:
            choices = ", ".join(member.value for member in Mode)
            raise InvalidSpecError(f"spec.mode must be one of {choices}") from error

        try:
            topics = tuple(str(topic) for topic in spec.get("topics") or ())
            offsets = tuple(int(offset) for offset in spec.get("offsets") or ())
            max_attempts = int(spec.get("maxAttempts", 3))
            deadline_s = int(spec.get("activeDeadlineSeconds", 3600))
        except (TypeError, ValueError) as error:
            raise InvalidSpecError(f"spec has a malformed number: {error}") from error
        group = spec.get("group") or None
        start = _start_at(spec.get("from"))

        if mode is Mode.REBUILD and service != "reports":
            raise InvalidSpecError("spec.mode rebuild exists for the reports service only")
        if mode is Mode.REBUILD and start is not None and start.offset is not None:
            raise InvalidSpecError("spec.from.offset does not apply to a rebuild; use time")
        if mode is not Mode.REBUILD and not topics:
            raise InvalidSpecError(f"spec.topics must name at least one topic for {mode}")
        if mode is Mode.REPLAY and group is None:
            raise InvalidSpecError("spec.group is required for replay")
        if mode is Mode.REPLAY and start is None:
            raise InvalidSpecError("spec.from is required for replay")
        if offsets and mode is not Mode.REDRIVE:
            raise InvalidSpecError("spec.offsets applies to redrive only")
        if offsets and len(topics) != 1:
            raise InvalidSpecError("spec.offsets needs exactly one topic in spec.topics")
        if max_attempts < 1:
            raise InvalidSpecError("spec.maxAttempts must be at least 1")
        if deadline_s < 1:
            raise InvalidSpecError("spec.activeDeadlineSeconds must be at least 1")

        return cls(
            service=service,
            mode=mode,
            topics=topics,
            start=start,
            group=group,
            offsets=offsets,
            restart=bool(spec.get("restart", False)),
            max_attempts=max_attempts,
            active_deadline_s=deadline_s,
        )


def _start_at(raw: Any) -> StartAt | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidSpecError("spec.from must be an object")
    chosen = [key for key in ("earliest", "offset", "time") if raw.get(key) not in (None, False)]
    if len(chosen) != 1:
        raise InvalidSpecError("spec.from must set exactly one of earliest, offset, time")
    offset = raw.get("offset")
    return StartAt(
        earliest=bool(raw.get("earliest", False)),
        offset=None if offset is None else int(offset),
        time=raw.get("time"),
    )


def running_rebuild(
    reprocessings: Iterable[Mapping[str, Any]], *, name: str, service: str
) -> str | None:
    """The name of another rebuild of `service`'s views that is Running, if any."""
    for item in reprocessings:
        spec = item.get("spec") or {}
        other = item.get("metadata", {}).get("name")
        if (
            other != name
            and spec.get("mode") == Mode.REBUILD
            and spec.get("service") == service
            and (item.get("status") or {}).get("phase") == Phase.RUNNING
        ):
            return str(other)
    return None


def timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC to the second, the way Kubernetes writes times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def clip(message: str) -> str:
    """`message` on one line, cut to its last `MAX_MESSAGE` characters."""
    message = " ".join(message.split())
    return message if len(message) <= MAX_MESSAGE else "..." + message[-MAX_MESSAGE + 3 :]


def with_condition(
    conditions: Iterable[Mapping[str, Any]],
    *,
    kind: ConditionType,
    status: bool,
    reason: str,
    message: str,
    now: dt.datetime,
) -> list[Manifest]:
    """`conditions` with the one of type `kind` set to `status`.

    Its `lastTransitionTime` moves only when its status changes, as in every Kubernetes
    condition; the other conditions are kept as they are.
    """
    value = "True" if status else "False"
    condition: Manifest = {
        "type": str(kind),
        "status": value,
        "reason": reason,
        "message": clip(message),
        "lastTransitionTime": timestamp(now),
    }
    result: list[Manifest] = []
    for existing in conditions:
        if existing.get("type") != kind:
            result.append(dict(existing))
            continue
        if existing.get("status") == value and existing.get("lastTransitionTime"):
            condition["lastTransitionTime"] = existing["lastTransitionTime"]
        result.append(condition)
    if condition not in result:
        result.append(condition)
    return result


class StatusChange:
    """The status fields to merge into a resource's status, built from the current one.

    Each method returns the fields for one event. A field set to None is removed by the
    merge patch, which is how a retry time disappears once the retry started.
    """

    def __init__(self, status: Mapping[str, Any], *, now: dt.datetime) -> None:
        self._status = status
        self._now = now

    def _conditions(self, *changes: tuple[ConditionType, bool, str, str]) -> list[Manifest]:
        conditions: list[Manifest] = [dict(item) for item in self._status.get("conditions") or ()]
        for kind, status, reason, message in changes:
            conditions = with_condition(
                conditions, kind=kind, status=status, reason=reason, message=message, now=self._now
            )
        return conditions

    def _has(self, kind: ConditionType) -> bool:
        return any(item.get("type") == kind for item in self._status.get("conditions") or ())

    def started(self, *, job: str, attempt: int, max_attempts: int) -> Manifest:
        changes = [
            (
                ConditionType.RUNNING,
                True,
                "JobStarted",
                f"Job {job} runs attempt {attempt} of {max_attempts}",
            ),
        ]
        if self._has(ConditionType.CONFLICT):
            resolved = (ConditionType.CONFLICT, False, "Resolved", "nothing stands in the way")
            changes.append(resolved)
        return {
            "phase": str(Phase.RUNNING),
            "jobName": job,
            "attempts": attempt,
            "startTime": self._status.get("startTime") or timestamp(self._now),
            "nextAttemptTime": None,
            "conditions": self._conditions(*changes),
        }

    def blocked(self, *, reason: str, message: str, retry_at: dt.datetime | None) -> Manifest:
        """Another piece of work must end first: a rebuild of the same views, or the
        consumers of the group to rewind."""
        return {
            "phase": str(Phase.BLOCKED),
            "nextAttemptTime": None if retry_at is None else timestamp(retry_at),
            "conditions": self._conditions(
                (ConditionType.CONFLICT, True, reason, message),
                (ConditionType.RUNNING, False, reason, "waiting for the conflict to end"),
            ),
        }

    def waiting(self, *, reason: str, message: str) -> Manifest:
        """Nothing can start yet for a reason that may go away (no API Deployment yet)."""
        return {
            "phase": str(Phase.PENDING),
            "conditions": self._conditions((ConditionType.RUNNING, False, reason, message)),
        }

    def retrying(self, *, attempt: int, message: str, retry_at: dt.datetime) -> Manifest:
        """Attempt `attempt` failed; the next one starts at `retry_at`."""
        return {
            "phase": str(Phase.PENDING),
            "nextAttemptTime": timestamp(retry_at),
            "conditions": self._conditions(
                (
                    ConditionType.RUNNING,
                    False,
                    "AttemptFailed",
                    f"attempt {attempt} failed: {message}; attempt {attempt + 1} starts at"
                    f" {timestamp(retry_at)}",
                ),
            ),
        }

    def failed(self, *, reason: str, message: str) -> Manifest:
        return {
            "phase": str(Phase.FAILED),
            "completionTime": timestamp(self._now),
            "nextAttemptTime": None,
            "conditions": self._conditions(
                (ConditionType.RUNNING, False, reason, "stopped"),
                (ConditionType.FAILED, True, reason, message),
            ),
        }

    def succeeded(self, *, job: str) -> Manifest:
        return {
            "phase": str(Phase.SUCCEEDED),
            "completionTime": timestamp(self._now),
            "conditions": self._conditions(
                (ConditionType.RUNNING, False, "Completed", f"Job {job} finished"),
                (ConditionType.SUCCEEDED, True, "JobSucceeded", f"Job {job} finished"),
            ),
        }

    def cancelled(self) -> Manifest:
        return {
            "phase": str(Phase.CANCELLED),
            "completionTime": timestamp(self._now),
            "conditions": self._conditions(
                (ConditionType.RUNNING, False, "Cancelled", "the resource is being deleted"),
            ),
        }
