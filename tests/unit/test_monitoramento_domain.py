"""Unit tests of consumer lag arithmetic and of how parts' health adds up to a status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from monitoramento.domain import GroupLag, PartitionLag, ProcessHealth, degraded_parts

MAX_OUTBOX_AGE_S = 60.0


def healthy_services() -> dict[str, list[ProcessHealth]]:
    return {
        "pedidos": [
            ProcessHealth(name="api", live=True, ready=True),
            ProcessHealth(name="relay", live=True, ready=True),
        ],
        "clientes": [ProcessHealth(name="api", live=True, ready=True)],
    }


def degraded(
    *,
    services: Mapping[str, Sequence[ProcessHealth]] | None = None,
    kafka_ok: bool = True,
    databases: Mapping[str, bool] | None = None,
    lags: Sequence[GroupLag] = (),
    outbox_oldest_age_s: Mapping[str, float] | None = None,
) -> list[str]:
    """`degraded_parts` of a healthy system, but for what the test changes."""
    return degraded_parts(
        services=healthy_services() if services is None else services,
        kafka_ok=kafka_ok,
        databases={"pedidos": True, "clientes": True} if databases is None else databases,
        lags=lags,
        outbox_oldest_age_s={"pedidos": 0.5}
        if outbox_oldest_age_s is None
        else outbox_oldest_age_s,
        max_outbox_age_s=MAX_OUTBOX_AGE_S,
    )


# --------------------------------------------------------------------------------------
# Lag
# --------------------------------------------------------------------------------------


def test_the_lag_of_a_partition_is_its_end_minus_the_committed_offset() -> None:
    partition = PartitionLag(topic="pedidos", partition=0, committed=120, end=150)

    assert partition.lag == 30


def test_a_partition_the_group_never_committed_lags_by_its_whole_end() -> None:
    partition = PartitionLag(topic="pedidos", partition=1, committed=None, end=42)

    assert partition.lag == 42


def test_a_partition_read_to_its_end_has_no_lag() -> None:
    partition = PartitionLag(topic="pedidos", partition=2, committed=7, end=7)

    assert partition.lag == 0


def test_the_lag_of_a_group_is_the_sum_over_its_partitions() -> None:
    group = GroupLag(
        group="reports",
        partitions=[
            PartitionLag(topic="pedidos", partition=0, committed=10, end=15),
            PartitionLag(topic="pedidos", partition=1, committed=None, end=3),
            PartitionLag(topic="clientes", partition=0, committed=9, end=9),
        ],
    )

    assert group.total == 8


def test_a_group_without_partitions_has_no_lag() -> None:
    group = GroupLag(group="reports", partitions=[], error="timed out")

    assert group.total == 0


# --------------------------------------------------------------------------------------
# degraded_parts
# --------------------------------------------------------------------------------------


def test_a_healthy_system_has_no_degraded_part() -> None:
    lags = [GroupLag(group="reports", partitions=[PartitionLag("pedidos", 0, 0, 10_000)])]

    assert degraded(lags=lags) == []


def test_a_process_that_is_not_live_is_named_with_its_service() -> None:
    services = healthy_services()
    services["pedidos"][1] = ProcessHealth(name="relay", live=False, ready=False)

    assert degraded(services=services) == ["pedidos/relay: not live"]


def test_a_live_process_that_is_not_ready_is_named_with_its_service() -> None:
    services = healthy_services()
    services["clientes"][0] = ProcessHealth(name="api", live=True, ready=False)

    assert degraded(services=services) == ["clientes/api: not ready"]


def test_an_unreachable_kafka_is_named() -> None:
    assert degraded(kafka_ok=False) == ["kafka: unreachable"]


def test_each_unreachable_database_is_named() -> None:
    databases = {"pedidos": False, "clientes": True, "reports": False}

    assert degraded(databases=databases) == [
        "database pedidos: unreachable",
        "database reports: unreachable",
    ]


def test_a_consumer_group_whose_lag_could_not_be_read_is_named_with_the_error() -> None:
    lags = [
        GroupLag(group="clientes", partitions=[]),
        GroupLag(group="reports", partitions=[], error="coordinator not available"),
    ]

    assert degraded(lags=lags) == ["consumer group reports: coordinator not available"]


@pytest.mark.parametrize("age_s", [0.0, 59.9, MAX_OUTBOX_AGE_S])
def test_an_outbox_row_waiting_up_to_the_limit_is_healthy(age_s: float) -> None:
    assert degraded(outbox_oldest_age_s={"pedidos": age_s}) == []


def test_an_outbox_row_waiting_past_the_limit_is_named_with_its_age() -> None:
    ages = {"pedidos": 61.2, "clientes": 3.0}

    assert degraded(outbox_oldest_age_s=ages) == ["pedidos outbox: oldest row waiting 61 s"]


def test_every_degraded_part_is_named_at_once() -> None:
    services = {
        "pedidos": [ProcessHealth(name="api", live=False, ready=False)],
        "reports": [ProcessHealth(name="consumer", live=True, ready=False)],
    }

    parts = degraded(
        services=services,
        kafka_ok=False,
        databases={"reports": False},
        lags=[GroupLag(group="reports", partitions=[], error="timed out")],
        outbox_oldest_age_s={"clientes": 600.0},
    )

    assert parts == [
        "pedidos/api: not live",
        "reports/consumer: not ready",
        "kafka: unreachable",
        "database reports: unreachable",
        "consumer group reports: timed out",
        "clientes outbox: oldest row waiting 600 s",
    ]
