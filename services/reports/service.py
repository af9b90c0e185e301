"""Use cases of reports: turning events into view changes."""

from __future__ import annotations

from collections.abc import Sequence

from datasync import events
from reports.domain import ClienteAtual, FatoPedido
from reports.ports import ReportViews


async def registrar_eventos(views: ReportViews, payloads: Sequence[events.Event]) -> None:
    """Applies events to the views: order facts first, then customer states. The two never
    depend on each other within a batch, so the order between them does not matter."""
    fatos: list[FatoPedido] = []
    clientes: list[ClienteAtual] = []
    for payload in payloads:
        match payload:
            case events.PedidoCriado():
                fatos.append(_fato(payload))
            case events.PedidoEnriquecido():
                fatos.append(_fato(payload, segmento=payload.cliente.segmento, enriquecido=True))
            case events.ClienteRegistrado() | events.ClienteAtualizado() | events.ClienteRemovido():
                clientes.append(
                    ClienteAtual(
                        id=payload.id,
                        nome=payload.nome,
                        cidade=payload.cidade,
                        pais=payload.pais,
                        segmento=payload.segmento,
                        versao=payload.versao,
                        removido=isinstance(payload, events.ClienteRemovido),
                    )
                )
    if fatos:
        await views.add_pedidos(fatos)
    if clientes:
        await views.upsert_clientes(clientes)


def _fato(
    payload: events.PedidoCriado | events.PedidoEnriquecido,
    *,
    segmento: str | None = None,
    enriquecido: bool = False,
) -> FatoPedido:
    return FatoPedido(
        id=payload.id,
        cliente_id=payload.cliente_id,
        valor=payload.valor,
        data=payload.data,
        segmento=segmento,
        enriquecido=enriquecido,
    )


async def registrar_evento(views: ReportViews, payload: events.Event) -> None:
    """Applies one event to the views."""
    await registrar_eventos(views, [payload])
