"""The Kafka-side adapter of reports: consumed events become view changes, a batch at a
time."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from datasync import events
from datasync.consumer import BatchHandler, ConsumedEvent
from reports.ports import ReportViews
from reports.service import registrar_eventos

GROUP_ID = "reports-views"
TOPICS = (events.TOPIC_PEDIDOS, events.TOPIC_CLIENTES, events.TOPIC_PEDIDOS_ENRIQUECIDOS)


def batch_handler(*, views: Callable[[AsyncConnection], ReportViews]) -> BatchHandler:
    """Applies a batch of any event type reports reads through `views` built on the
    consumer's transaction, so the views can write it with a few set-based statements."""

    async def apply(connection: AsyncConnection, batch: Sequence[ConsumedEvent]) -> None:
        await registrar_eventos(views(connection), [consumed.payload for consumed in batch])

    return apply
