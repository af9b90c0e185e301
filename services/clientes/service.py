"""Use cases of the clientes service."""

from __future__ import annotations

from collections.abc import Sequence

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


async def enriquecer_pedidos(
    uow: UnitOfWork, pedidos: Sequence[PedidoAEnriquecer]
) -> list[PedidoAEnriquecer]:
    """Joins orders with their customers in one transaction; an order whose customer does not
    exist (or was removed) waits for it.

    Returns:
        The orders that wait for their customer; every other one was published enriched.
    """
    cliente_ids = sorted({pedido.cliente_id for pedido in pedidos})
    async with uow:
        # The locks close the race with a concurrent registration of the same customer:
        # either we see the customer, or it sees our waiting order. Taken in sorted order,
        # so two transactions locking several customers cannot deadlock.
        await uow.clientes.lock_many(cliente_ids)
        found = await uow.clientes.get_many(cliente_ids)

        prontos: list[tuple[PedidoAEnriquecer, Cliente]] = []
        esperando: list[PedidoAEnriquecer] = []
        for pedido in pedidos:
            cliente = found.get(pedido.cliente_id)
            if cliente is None or cliente.removido:
                esperando.append(pedido)
            else:
                prontos.append((pedido, cliente))
        if esperando:
            await uow.pendentes.keep_many(esperando)
        if prontos:
            await uow.outbox.append_many(
                topic=events.TOPIC_PEDIDOS_ENRIQUECIDOS,
                keyed=[
                    (pedido.cliente_id, _enriched(pedido, cliente)) for pedido, cliente in prontos
                ],
            )
        await uow.commit()
    return esperando


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
    await uow.outbox.append(
        topic=events.TOPIC_PEDIDOS_ENRIQUECIDOS,
        key=pedido.cliente_id,
        payload=_enriched(pedido, cliente),
    )


def _enriched(pedido: PedidoAEnriquecer, cliente: Cliente) -> events.PedidoEnriquecido:
    dados = cliente.dados
    return events.PedidoEnriquecido(
        id=pedido.id,
        cliente_id=pedido.cliente_id,
        valor=pedido.valor,
        data=pedido.data,
        cliente=events.ClienteDoPedido(
            nome=dados.nome, cidade=dados.cidade, pais=dados.pais, segmento=dados.segmento
        ),
    )
