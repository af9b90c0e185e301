"""Use cases of reports: turning events into view changes."""

from __future__ import annotations

from datasync import events
from reports.domain import ClienteAtual, FatoPedido
from reports.ports import ReportViews


async def registrar_evento(views: ReportViews, payload: events.Event) -> None:
    """Applies one event to the views."""
    match payload:
        case events.PedidoCriado():
            await views.add_pedido(
                FatoPedido(
                    id=payload.id,
                    cliente_id=payload.cliente_id,
                    valor=payload.valor,
                    data=payload.data,
                )
            )
        case events.PedidoEnriquecido():
            await views.add_pedido(
                FatoPedido(
                    id=payload.id,
                    cliente_id=payload.cliente_id,
                    valor=payload.valor,
                    data=payload.data,
                    segmento=payload.cliente.segmento,
                    enriquecido=True,
                )
            )
        case events.ClienteRegistrado() | events.ClienteAtualizado() | events.ClienteRemovido():
            await views.upsert_cliente(
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
