"""Use cases of the pedidos service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from datasync import events
from pedidos.domain import ConflictingPedidoError, Pedido, PedidoRecebido
from pedidos.ports import PedidoIntake


async def registrar_pedido(
    intake: PedidoIntake,
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

    # Insert first: a new order, the common case, costs no read. Only when the id is taken
    # (a retry, or a concurrent request that got there first) is the stored one compared.
    existente = await intake.add_new(
        pedido,
        topic=events.TOPIC_PEDIDOS,
        key=pedido.cliente_id,
        event=events.PedidoCriado(
            id=pedido.id, cliente_id=pedido.cliente_id, valor=pedido.valor, data=pedido.data
        ),
    )
    if existente is None:
        return pedido, True

    if not recebido.corresponde_a(existente):
        raise ConflictingPedidoError(pedido.id)
    return existente, False
