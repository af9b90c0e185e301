"""The Kafka-side adapter of clientes: turns consumed order events into use-case calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from clientes.domain import PedidoAEnriquecer
from clientes.ports import UnitOfWork
from clientes.service import enriquecer_pedidos
from datasync import events
from datasync.consumer import BatchHandler, ConsumedEvent

log = structlog.get_logger(__name__)

GROUP_ID = "clientes-enriquecimento"
TOPICS = (events.TOPIC_PEDIDOS,)

RequestIdOf = Callable[[events.Event], str | None]


def batch_handler(
    *, unit_of_work: Callable[[AsyncConnection, RequestIdOf], UnitOfWork]
) -> BatchHandler:
    """Enriches a batch of orders inside the consumer's transaction, set-based: one lock
    statement, one read of the customers, one insert of the events. Each enriched event
    carries the request id of the order it came from."""

    async def apply(connection: AsyncConnection, batch: Sequence[ConsumedEvent]) -> None:
        pedidos: list[PedidoAEnriquecer] = []
        request_ids: dict[str, str | None] = {}
        for consumed in batch:
            payload = consumed.payload
            if not isinstance(payload, events.PedidoCriado):
                continue
            pedidos.append(
                PedidoAEnriquecer(
                    id=payload.id,
                    cliente_id=payload.cliente_id,
                    valor=payload.valor,
                    data=payload.data,
                )
            )
            request_ids[payload.id] = consumed.envelope.request_id
        if not pedidos:
            return

        def request_id_of(event: events.Event) -> str | None:
            return request_ids.get(getattr(event, "id", ""))

        waiting = {
            pedido.id
            for pedido in await enriquecer_pedidos(unit_of_work(connection, request_id_of), pedidos)
        }
        for pedido in pedidos:
            # Per order at debug, with its request id, to follow one request across services.
            log.debug(
                "clientes.pedido_waiting_for_cliente"
                if pedido.id in waiting
                else "clientes.pedido_enriched",
                pedido_id=pedido.id,
                request_id=request_ids[pedido.id],
            )
        log.info(
            "clientes.pedidos_enriched",
            enriched=len(pedidos) - len(waiting),
            waiting_for_cliente=len(waiting),
        )

    return apply
