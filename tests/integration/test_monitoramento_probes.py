"""monitoramento's Kafka inspector against a broker that never answers."""

from __future__ import annotations

import gc
import socket
import warnings
from collections.abc import Iterator

import pytest

from datasync.settings import KafkaSettings
from monitoramento.adapters.probes import AioKafkaInspector

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A loopback port that accepts connections and never says a word, like a frozen broker."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_timed_out_checks_leave_no_kafka_client_behind(silent_broker: str) -> None:
    inspector = AioKafkaInspector(KafkaSettings(bootstrap_servers=silent_broker), timeout_s=0.3)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert not await inspector.reachable()
            assert (await inspector.lag("reports-views")).error
        await inspector.close()
        gc.collect()

    unclosed = [str(warning.message) for warning in caught if "Unclosed" in str(warning.message)]
    assert unclosed == []
