"""REST adapter of the clientes service (Litestar)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from clientes.domain import (
    Cliente,
    ClienteNotFoundError,
    ConflictingClienteError,
    DadosCliente,
    InvalidClienteError,
)
from clientes.ports import UnitOfWork
from clientes.service import atualizar_cliente, registrar_cliente, remover_cliente
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
)

Text = Annotated[str, msgspec.Meta(max_length=200)]


class DadosBody(msgspec.Struct, kw_only=True, rename="kebab", forbid_unknown_fields=True):
    """The body of `PUT /clientes/{id}`."""

    nome: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Alfreds"])]
    email: Text | None = None
    cidade: Text | None = None
    pais: Text | None = None
    segmento: Text | None = None

    def dados(self) -> DadosCliente:
        return DadosCliente(
            nome=self.nome,
            email=self.email,
            cidade=self.cidade,
            pais=self.pais,
            segmento=self.segmento,
        )


class ClienteBody(DadosBody, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /clientes`."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["ALFKI"])]


class ClienteOut(msgspec.Struct, kw_only=True, rename="kebab", omit_defaults=False):
    id: str
    nome: str
    email: str | None
    cidade: str | None
    pais: str | None
    segmento: str | None
    versao: int


_CREATE = msgspec.json.Decoder(ClienteBody)
_REPLACE = msgspec.json.Decoder(DadosBody)


def _out(cliente: Cliente) -> ClienteOut:
    dados = cliente.dados
    return ClienteOut(
        id=cliente.id,
        nome=dados.nome,
        email=dados.email,
        cidade=dados.cidade,
        pais=dados.pais,
        segmento=dados.segmento,
        versao=cliente.versao,
    )


def _not_found(error: ClienteNotFoundError) -> ProblemError:
    return ProblemError(404, "Not found", detail=str(error))


def cliente_handlers(*, unit_of_work: Callable[[str | None], UnitOfWork]) -> list[Any]:
    """The route handlers, bound to a unit-of-work factory (given the request id)."""

    @post(
        "/clientes",
        tags=["clientes"],
        summary="Create a customer",
        description="201 when created; 200 when the same customer was sent before; 409 when "
        "the id is taken by a customer with other data.",
        operation_class=json_body_operation(ClienteBody, description="The customer"),
        status_code=201,
    )
    async def criar(request: Request[Any, Any, Any]) -> Response[ClienteOut]:
        body = await decode_json_body(request, _CREATE)
        try:
            cliente, criado = await registrar_cliente(
                unit_of_work(request_id_of(request)), body.id, body.dados()
            )
        except InvalidClienteError as error:
            raise invalid(error.field, error.reason) from error
        except ConflictingClienteError as error:
            raise conflict("id", str(error)) from error
        return Response(_out(cliente), status_code=201 if criado else 200)

    @get("/clientes/{cliente_id:str}", tags=["clientes"], summary="Read one customer")
    async def ler(cliente_id: FromPath[str]) -> ClienteOut:
        require_key(cliente_id, what="cliente")
        async with unit_of_work(None) as uow:
            cliente = await uow.clientes.get(cliente_id)
        if cliente is None or cliente.removido:
            raise _not_found(ClienteNotFoundError(cliente_id))
        return _out(cliente)

    @get("/clientes", tags=["clientes"], summary="List customers")
    async def listar(
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> Page:
        after_id = decode_cursor(cursor)
        async with unit_of_work(None) as uow:
            found = await uow.clientes.list_active(after_id=after_id, limit=limit)
        next_cursor = encode_cursor(found[-1].id) if len(found) == limit else None
        return Page(items=[_out(cliente) for cliente in found], next_cursor=next_cursor)

    @put(
        "/clientes/{cliente_id:str}",
        tags=["clientes"],
        summary="Replace a customer's data",
        operation_class=json_body_operation(DadosBody, description="The customer's data"),
    )
    async def substituir(request: Request[Any, Any, Any], cliente_id: FromPath[str]) -> ClienteOut:
        require_key(cliente_id, what="cliente")
        body = await decode_json_body(request, _REPLACE)
        try:
            cliente = await atualizar_cliente(
                unit_of_work(request_id_of(request)), cliente_id, body.dados()
            )
        except InvalidClienteError as error:
            raise invalid(error.field, error.reason) from error
        except ClienteNotFoundError as error:
            raise _not_found(error) from error
        return _out(cliente)

    @delete("/clientes/{cliente_id:str}", tags=["clientes"], summary="Remove a customer")
    async def remover(request: Request[Any, Any, Any], cliente_id: FromPath[str]) -> None:
        require_key(cliente_id, what="cliente")
        try:
            await remover_cliente(unit_of_work(request_id_of(request)), cliente_id)
        except ClienteNotFoundError as error:
            raise _not_found(error) from error

    return [criar, ler, listar, substituir, remover]
