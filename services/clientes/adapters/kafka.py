"""The Kafka-side adapter of clientes: turns consumed order events into use-case calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from clientes.domain import PedidoAEnriquecer
from clientes.ports import UnitOfWork
from clientes.service import enriquecer_pedido
from datasync import events
from datasync.consumer import ConsumedEvent, Handler

log = structlog.get_logger(__name__)

GROUP_ID = "clientes-enriquecimento"
TOPICS = (events.TOPIC_PEDIDOS,)


def handlers(
    *, unit_of_work: Callable[[AsyncConnection, str | None], UnitOfWork]
) -> Mapping[str, Handler]:
    """Handlers by event type, each joining the consumer's transaction through a unit of
    work built on its connection (given the request id that travelled with the event)."""

    async def on_pedido_criado(connection: AsyncConnection, consumed: ConsumedEvent) -> None:
        payload = consumed.payload
        assert isinstance(payload, events.PedidoCriado)
        enriched = await enriquecer_pedido(
            unit_of_work(connection, consumed.envelope.request_id),
            PedidoAEnriquecer(
                id=payload.id,
                cliente_id=payload.cliente_id,
                valor=payload.valor,
                data=payload.data,
            ),
        )
        # The consumer has bound topic, offset, event id and request id to the context.
        if enriched:
            log.info("clientes.pedido_enriched", pedido_id=payload.id)
        else:
            log.info("clientes.pedido_waiting_for_cliente", pedido_id=payload.id)

    return {"datasync.pedidos.PedidoCriado": on_pedido_criado}
