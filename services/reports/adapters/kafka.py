"""The Kafka-side adapter of reports: every consumed event becomes a view change."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from datasync import events
from datasync.consumer import ConsumedEvent, Handler
from reports.ports import ReportViews
from reports.service import registrar_evento

GROUP_ID = "reports-views"
TOPICS = (events.TOPIC_PEDIDOS, events.TOPIC_CLIENTES, events.TOPIC_PEDIDOS_ENRIQUECIDOS)


def handlers(*, views: Callable[[AsyncConnection], ReportViews]) -> Mapping[str, Handler]:
    """One handler for every event type reports reads, applying it through `views` built
    on the consumer's transaction."""

    async def apply(connection: AsyncConnection, consumed: ConsumedEvent) -> None:
        await registrar_evento(views(connection), consumed.payload)

    return dict.fromkeys(events.EVENT_TYPES, apply)
