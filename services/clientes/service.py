"""Use cases of the clientes service."""

from __future__ import annotations

from clientes.domain import (
    Cliente,
    ClienteNotFoundError,
    ConflictingClienteError,
    DadosCliente,
    PedidoAEnriquecer,
    validar_id,
)
from clientes.ports import UnitOfWork
from datasync import events


async def registrar_cliente(
    uow: UnitOfWork, cliente_id: str, dados: DadosCliente
) -> tuple[Cliente, bool]:
    """Creates a customer and releases the orders that were waiting for it.

    Returns:
        The stored customer and whether it was created now (False for a repeated request).

    Raises:
        InvalidClienteError: the data breaks a rule.
        ConflictingClienteError: the id is taken by a customer with other data.
    """
    validar_id(cliente_id)
    dados = dados.validados()
    async with uow:
        await uow.clientes.lock(cliente_id)
        existente = await uow.clientes.get(cliente_id)
        if existente is not None and not existente.removido:
            if existente.dados != dados:
                raise ConflictingClienteError(cliente_id)
            return existente, False

        cliente = (
            existente.com_dados(dados)
            if existente is not None
            else Cliente(id=cliente_id, dados=dados, versao=1)
        )
        await uow.clientes.save(cliente)
        await _publish_snapshot(uow, cliente, events.ClienteRegistrado)
        for pedido in await uow.pendentes.take_all(cliente_id):
            await _publish_enriched(uow, pedido, cliente)
        await uow.commit()
    return cliente, True


async def atualizar_cliente(uow: UnitOfWork, cliente_id: str, dados: DadosCliente) -> Cliente:
    """Replaces a customer's data; publishes an event only when something changed.

    Raises:
        InvalidClienteError: the data breaks a rule.
        ClienteNotFoundError: no such customer.
    """
    dados = dados.validados()
    async with uow:
        await uow.clientes.lock(cliente_id)
        existente = await uow.clientes.get(cliente_id)
        if existente is None or existente.removido:
            raise ClienteNotFoundError(cliente_id)
        if existente.dados == dados:
            return existente

        cliente = existente.com_dados(dados)
        await uow.clientes.save(cliente)
        await _publish_snapshot(uow, cliente, events.ClienteAtualizado)
        await uow.commit()
    return cliente


async def remover_cliente(uow: UnitOfWork, cliente_id: str) -> None:
    """Removes a customer. Its id stays reserved with its version, so a customer created
    again with the same id continues the version sequence readers rely on.

    Raises:
        ClienteNotFoundError: no such customer.
    """
    async with uow:
        await uow.clientes.lock(cliente_id)
        existente = await uow.clientes.get(cliente_id)
        if existente is None or existente.removido:
            raise ClienteNotFoundError(cliente_id)

        cliente = existente.removendo()
        await uow.clientes.save(cliente)
        await _publish_snapshot(uow, cliente, events.ClienteRemovido)
        await uow.commit()


async def enriquecer_pedido(uow: UnitOfWork, pedido: PedidoAEnriquecer) -> bool:
    """Joins an order with its customer, or keeps it until the customer exists.

    Returns:
        True if the enriched order was published, False if it waits for its customer.
    """
    async with uow:
        # The lock closes the race with a concurrent registration of the same customer:
        # either we see the customer, or it sees our waiting order.
        await uow.clientes.lock(pedido.cliente_id)
        cliente = await uow.clientes.get(pedido.cliente_id)
        if cliente is None or cliente.removido:
            await uow.pendentes.keep(pedido)
            await uow.commit()
            return False

        await _publish_enriched(uow, pedido, cliente)
        await uow.commit()
    return True


async def _publish_snapshot(
    uow: UnitOfWork,
    cliente: Cliente,
    event_type: type[events.ClienteRegistrado]
    | type[events.ClienteAtualizado]
    | type[events.ClienteRemovido],
) -> None:
    dados = cliente.dados
    await uow.outbox.append(
        topic=events.TOPIC_CLIENTES,
        key=cliente.id,
        payload=event_type(
            id=cliente.id,
            nome=dados.nome,
            versao=cliente.versao,
            email=dados.email,
            cidade=dados.cidade,
            pais=dados.pais,
            segmento=dados.segmento,
        ),
    )


async def _publish_enriched(uow: UnitOfWork, pedido: PedidoAEnriquecer, cliente: Cliente) -> None:
    dados = cliente.dados
    await uow.outbox.append(
        topic=events.TOPIC_PEDIDOS_ENRIQUECIDOS,
        key=pedido.cliente_id,
        payload=events.PedidoEnriquecido(
            id=pedido.id,
            cliente_id=pedido.cliente_id,
            valor=pedido.valor,
            data=pedido.data,
            cliente=events.ClienteDoPedido(
                nome=dados.nome, cidade=dados.cidade, pais=dados.pais, segmento=dados.segmento
            ),
        ),
    )
