"""REST adapter of the pedidos service (Litestar)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from datasync.http import (
    Page,
    ProblemError,
    conflict,
    decode_cursor,
    decode_json_body,
    encode_cursor,
    invalid,
    json_body_operation,
    request_id_of,
    require_key,
    valid_filter,
)
from datasync.money import NotANumberError, decimal_from_json_number, format_money
from pedidos.domain import ConflictingPedidoError, InvalidPedidoError, Pedido, PedidoRecebido
from pedidos.ports import PedidoIntake, UnitOfWork
from pedidos.service import registrar_pedido

IdText = Annotated[str, msgspec.Meta(examples=["10248"])]


class PedidoBody(msgspec.Struct, kw_only=True, rename="kebab", forbid_unknown_fields=True):
    """The body of `POST /pedidos` as read from the wire; `valor` is kept raw so the exact
    digits of the JSON number reach `Decimal`."""

    id: str
    cliente_id: str
    valor: msgspec.Raw
    data: dt.datetime | None = None


class PedidoSchema(msgspec.Struct, kw_only=True, rename="kebab"):
    """The documented shape of `POST /pedidos`."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["123"])]
    cliente_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["456"])]
    valor: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            lt=10**12,
            description="A JSON number with at most two decimals; read exactly, never as float.",
            examples=[100.0],
        ),
    ]
    data: Annotated[
        dt.datetime | None,
        msgspec.Meta(description="ISO 8601 date-time with offset; defaults to now."),
    ] = None


class PedidoOut(msgspec.Struct, kw_only=True, rename="kebab"):
    id: str
    cliente_id: str
    valor: str
    data: dt.datetime


_DECODER = msgspec.json.Decoder(PedidoBody)


def _out(pedido: Pedido) -> PedidoOut:
    return PedidoOut(
        id=pedido.id,
        cliente_id=pedido.cliente_id,
        valor=format_money(pedido.valor),
        data=pedido.data,
    )


def pedido_handlers(
    *,
    unit_of_work: Callable[[], UnitOfWork],
    intake: Callable[[str | None], PedidoIntake],
    clock: Callable[[], dt.datetime],
) -> list[Any]:
    """The route handlers, bound to a reading unit-of-work factory and to the intake of new
    orders (given the request id, which their events carry)."""

    @post(
        "/pedidos",
        tags=["pedidos"],
        summary="Accept an order",
        description="201 with the stored order; 200 when the same order was sent before; "
        "409 when the id is taken by another order.",
        operation_class=json_body_operation(PedidoSchema, description="The order"),
        status_code=201,
    )
    async def criar(request: Request[Any, Any, Any]) -> Response[PedidoOut]:
        body = await decode_json_body(request, _DECODER)
        try:
            valor = decimal_from_json_number(body.valor)
        except NotANumberError as error:
            raise invalid("valor", str(error)) from error
        recebido = PedidoRecebido(
            id=body.id, cliente_id=body.cliente_id, valor=valor, data=body.data
        )

        try:
            pedido, criado = await registrar_pedido(
                intake(request_id_of(request)), recebido, clock=clock
            )
        except InvalidPedidoError as error:
            raise invalid(error.field, error.reason) from error
        except ConflictingPedidoError as error:
            raise conflict("id", str(error)) from error

        return Response(_out(pedido), status_code=201 if criado else 200)

    @get("/pedidos/{pedido_id:str}", tags=["pedidos"], summary="Read one order")
    async def ler(pedido_id: FromPath[str]) -> PedidoOut:
        require_key(pedido_id, what="pedido")
        async with unit_of_work() as uow:
            pedido = await uow.pedidos.get(pedido_id)
        if pedido is None:
            raise ProblemError(404, "Not found", detail=f"pedido {pedido_id} does not exist")
        return _out(pedido)

    @get("/pedidos", tags=["pedidos"], summary="List orders, optionally of one customer")
    async def listar(
        cliente_id: Annotated[str | None, QueryParameter(name="cliente-id")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> Page:
        after_id = decode_cursor(cursor)
        cliente_id = valid_filter(cliente_id, name="cliente-id")
        async with unit_of_work() as uow:
            found = await uow.pedidos.list_by_cliente(cliente_id, after_id=after_id, limit=limit)
        next_cursor = encode_cursor(found[-1].id) if len(found) == limit else None
        return Page(items=[_out(pedido) for pedido in found], next_cursor=next_cursor)

    return [criar, ler, listar]
