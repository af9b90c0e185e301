"""Use cases of the pedidos service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from datasync import events
from pedidos.domain import ConflictingPedidoError, Pedido, PedidoRecebido
from pedidos.ports import UnitOfWork


async def registrar_pedido(
    uow: UnitOfWork,
    recebido: PedidoRecebido,
    *,
    clock: Callable[[], dt.datetime],
) -> tuple[Pedido, bool]:
    """Accepts an order and queues its `PedidoCriado` event in the same transaction.

    Returns:
        The stored order and whether it was created now (False for a repeated request).

    Raises:
        InvalidPedidoError: the order breaks a rule.
        ConflictingPedidoError: the id is taken by an order with other content.
    """
    pedido = recebido.validar(agora=clock())
    async with uow:
        # Insert first: a new order, the common case, costs no read. Only when the id is
        # taken (a retry, or a concurrent request that got there first) is the stored one read.
        if await uow.pedidos.add(pedido):
            await uow.outbox.append(
                topic=events.TOPIC_PEDIDOS,
                key=pedido.cliente_id,
                payload=events.PedidoCriado(
                    id=pedido.id,
                    cliente_id=pedido.cliente_id,
                    valor=pedido.valor,
                    data=pedido.data,
                ),
            )
            await uow.commit()
            return pedido, True

        existente = await uow.pedidos.get(pedido.id)

    assert existente is not None
    if not recebido.corresponde_a(existente):
        raise ConflictingPedidoError(pedido.id)
    return existente, False
