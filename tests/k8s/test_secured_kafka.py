"""What the chart needs from the code: the chart's Kafka authenticates every client
(SCRAM-SHA-512, over TLS in staging and prod), so every Kafka client a process opens must
use the KAFKA_SASL_* settings and an SSL context, readiness probe included."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import datasync.kafka
from datasync import runtime
from datasync.settings import KafkaSettings
from monitoramento.adapters.probes import AioKafkaInspector

pytestmark = pytest.mark.k8s


class _ClientBuiltError(Exception):
    """Stops the client's owner right after it built its client."""


@pytest.fixture
def admin_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The options the next admin client is built with; building it then fails."""
    options: dict[str, Any] = {}

    def record(**given: Any) -> None:
        options.update(given)
        raise _ClientBuiltError

    monkeypatch.setattr(datasync.kafka, "AIOKafkaAdminClient", record)
    return options


def secured(username: str) -> KafkaSettings:
    """The settings a pod gets from the chart: SCRAM over TLS."""
    return KafkaSettings(
        bootstrap_servers="data-sync-kafka-bootstrap:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=username,
        sasl_password="secret",
    )


def test_the_readiness_probe_authenticates_like_the_other_kafka_clients(
    admin_options: dict[str, Any],
) -> None:
    probe = runtime.KafkaProbe(secured("data-sync-pedidos"), client_id="pedidos-api-probe")

    with pytest.raises(_ClientBuiltError):
        asyncio.run(probe.admin())

    assert admin_options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert admin_options["sasl_plain_username"] == "data-sync-pedidos"
    assert admin_options["ssl_context"] is not None


def test_the_lag_inspector_of_monitoramento_authenticates_too(
    admin_options: dict[str, Any],
) -> None:
    inspector = AioKafkaInspector(secured("data-sync-monitoramento"))

    reachable = asyncio.run(inspector.reachable())

    assert reachable is False
    assert admin_options["sasl_plain_username"] == "data-sync-monitoramento"
    assert admin_options["ssl_context"] is not None
