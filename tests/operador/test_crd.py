"""The `Reprocessing` spec as the operator reads it, and each change of its status."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from operador.crd import (
    ConditionType,
    InvalidSpecError,
    Mode,
    ReprocessingSpec,
    StartAt,
    StatusChange,
    running_rebuild,
    with_condition,
)

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)


class TestSpec:
    def test_a_minimal_rebuild_gets_the_defaults(self) -> None:
        spec = ReprocessingSpec.from_resource({"service": "reports", "mode": "rebuild"})

        assert spec == ReprocessingSpec(
            service="reports", mode=Mode.REBUILD, max_attempts=3, active_deadline_s=3600
        )

    def test_a_replay_keeps_its_group_topics_and_start(self) -> None:
        spec = ReprocessingSpec.from_resource(
            {
                "service": "clientes",
                "mode": "replay",
                "group": "clientes-enriquecimento",
                "topics": ["pedidos"],
                "from": {"offset": 10},
                "maxAttempts": 5,
                "activeDeadlineSeconds": 600,
            }
        )

        assert spec.group == "clientes-enriquecimento"
        assert spec.topics == ("pedidos",)
        assert spec.start == StartAt(offset=10)
        assert (spec.max_attempts, spec.active_deadline_s) == (5, 600)

    @pytest.mark.parametrize(
        ("spec", "error"),
        [
            ({"service": "estoque", "mode": "rebuild"}, "spec.service must be one of"),
            ({"service": "reports", "mode": "rewind"}, "spec.mode must be one of"),
            ({"service": "pedidos", "mode": "rebuild"}, "rebuild exists for the reports"),
            (
                {"service": "reports", "mode": "rebuild", "from": {"offset": 3}},
                "spec.from.offset does not apply to a rebuild",
            ),
            ({"service": "reports", "mode": "redrive"}, "spec.topics must name at least one"),
            (
                {"service": "reports", "mode": "replay", "topics": ["pedidos"]},
                "spec.group is required for replay",
            ),
            (
                {"service": "reports", "mode": "replay", "topics": ["p"], "group": "g"},
                "spec.from is required for replay",
            ),
            (
                {"service": "reports", "mode": "replay", "topics": ["p"], "group": "g"}
                | {"from": {"earliest": True, "offset": 4}},
                "exactly one of earliest, offset, time",
            ),
            (
                {"service": "reports", "mode": "replay", "topics": ["p"], "group": "g"}
                | {"from": {"earliest": True}, "offsets": [1]},
                "spec.offsets applies to redrive only",
            ),
            (
                {"service": "reports", "mode": "redrive", "topics": ["p", "q"], "offsets": [1]},
                "spec.offsets needs exactly one topic",
            ),
            (
                {"service": "reports", "mode": "rebuild", "maxAttempts": 0},
                "spec.maxAttempts must be at least 1",
            ),
            (
                {"service": "reports", "mode": "rebuild", "activeDeadlineSeconds": "soon"},
                "spec has a malformed number",
            ),
        ],
    )
    def test_a_spec_the_commands_cannot_run_is_refused(
        self, spec: dict[str, Any], error: str
    ) -> None:
        with pytest.raises(InvalidSpecError, match=error):
            ReprocessingSpec.from_resource(spec)


def resource(name: str, *, service: str, mode: str, phase: str | None) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"service": service, "mode": mode},
        "status": {"phase": phase} if phase else {},
    }


class TestRunningRebuild:
    def test_another_running_rebuild_of_the_same_views_blocks(self) -> None:
        others = [
            resource("mine", service="reports", mode="rebuild", phase=None),
            resource("done", service="reports", mode="rebuild", phase="Succeeded"),
            resource("replay", service="reports", mode="replay", phase="Running"),
            resource("busy", service="reports", mode="rebuild", phase="Running"),
        ]

        assert running_rebuild(others, name="mine", service="reports") == "busy"

    def test_nothing_blocks_when_no_other_rebuild_runs(self) -> None:
        others = [
            resource("mine", service="reports", mode="rebuild", phase="Running"),
            resource("waiting", service="reports", mode="rebuild", phase="Blocked"),
        ]

        assert running_rebuild(others, name="mine", service="reports") is None


class TestConditions:
    def test_a_new_condition_is_added_with_the_time_of_the_change(self) -> None:
        conditions = with_condition(
            [], kind=ConditionType.RUNNING, status=True, reason="JobStarted", message="m", now=NOW
        )

        assert conditions == [
            {
                "type": "Running",
                "status": "True",
                "reason": "JobStarted",
                "message": "m",
                "lastTransitionTime": "2026-05-01T12:00:00Z",
            }
        ]

    def test_the_transition_time_moves_only_when_the_status_changes(self) -> None:
        first = with_condition(
            [], kind=ConditionType.CONFLICT, status=True, reason="A", message="a", now=NOW
        )

        same = with_condition(
            first, kind=ConditionType.CONFLICT, status=True, reason="B", message="b", now=LATER
        )
        flipped = with_condition(
            same, kind=ConditionType.CONFLICT, status=False, reason="C", message="c", now=LATER
        )

        assert same[0]["lastTransitionTime"] == "2026-05-01T12:00:00Z"
        assert same[0]["reason"] == "B"
        assert flipped[0]["lastTransitionTime"] == "2026-05-01T12:05:00Z"

    def test_a_long_message_keeps_its_end_on_one_line(self) -> None:
        message = "Traceback\n" + "x" * 1000 + "\nValueError: the real reason"

        conditions = with_condition(
            [], kind=ConditionType.FAILED, status=True, reason="R", message=message, now=NOW
        )

        assert len(conditions[0]["message"]) == 600
        assert conditions[0]["message"].endswith("x ValueError: the real reason")


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in status["conditions"] if item["type"] == kind)
    return found


class TestStatusChange:
    def test_starting_records_the_job_the_attempt_and_the_first_start(self) -> None:
        change = StatusChange({}, now=NOW).started(job="views-1", attempt=1, max_attempts=3)

        assert change["phase"] == "Running"
        assert change["jobName"] == "views-1"
        assert change["attempts"] == 1
        assert change["startTime"] == "2026-05-01T12:00:00Z"
        assert change["nextAttemptTime"] is None
        assert condition(change, "Running")["message"] == "Job views-1 runs attempt 1 of 3"

    def test_a_later_attempt_keeps_the_first_start_and_ends_the_conflict(self) -> None:
        blocked = StatusChange({"startTime": "2026-05-01T11:00:00Z"}, now=NOW).blocked(
            reason="RebuildInProgress", message="busy", retry_at=None
        )

        status = {"startTime": "2026-05-01T11:00:00Z", **blocked}
        change = StatusChange(status, now=LATER).started(job="views-2", attempt=2, max_attempts=3)

        assert change["startTime"] == "2026-05-01T11:00:00Z"
        assert condition(change, "Conflict")["status"] == "False"
        assert condition(change, "Running")["status"] == "True"

    def test_blocked_says_what_is_in_the_way_and_when_it_tries_again(self) -> None:
        change = StatusChange({}, now=NOW).blocked(
            reason="RebuildInProgress", message="rebuild other is Running", retry_at=LATER
        )

        assert change["phase"] == "Blocked"
        assert change["nextAttemptTime"] == "2026-05-01T12:05:00Z"
        assert condition(change, "Conflict") | {"lastTransitionTime": None} == {
            "type": "Conflict",
            "status": "True",
            "reason": "RebuildInProgress",
            "message": "rebuild other is Running",
            "lastTransitionTime": None,
        }

    def test_a_failed_attempt_with_attempts_left_waits_for_the_next(self) -> None:
        change = StatusChange({}, now=NOW).retrying(attempt=1, message="boom", retry_at=LATER)

        assert change["phase"] == "Pending"
        assert change["nextAttemptTime"] == "2026-05-01T12:05:00Z"
        assert condition(change, "Running")["message"] == (
            "attempt 1 failed: boom; attempt 2 starts at 2026-05-01T12:05:00Z"
        )

    def test_failed_and_succeeded_are_final_and_timed(self) -> None:
        failed = StatusChange({}, now=NOW).failed(reason="JobFailed", message="boom")
        succeeded = StatusChange({}, now=NOW).succeeded(job="views-1")

        assert (failed["phase"], failed["completionTime"]) == ("Failed", "2026-05-01T12:00:00Z")
        assert condition(failed, "Failed")["message"] == "boom"
        assert succeeded["phase"] == "Succeeded"
        assert condition(succeeded, "Succeeded")["status"] == "True"
        assert condition(succeeded, "Running")["status"] == "False"
