"""Unit tests of the clientes domain and use cases, over an in-memory unit of work."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Self

import pytest

from clientes.domain import (
    Cliente,
    ClienteNotFoundError,
    ConflictingClienteError,
    DadosCliente,
    InvalidClienteError,
    PedidoAEnriquecer,
    validar_id,
)
from clientes.service import (
    atualizar_cliente,
    enriquecer_pedidos,
    registrar_cliente,
    remover_cliente,
)
from datasync import events

DADOS = DadosCliente(
    nome="Alfreds Futterkiste", email="maria@alfreds.de", cidade="Berlin", pais="Germany"
)
DATA = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------
# In-memory doubles of clientes.ports
# --------------------------------------------------------------------------------------


class InMemoryClienteRepository:
    def __init__(self) -> None:
        self.clientes: dict[str, Cliente] = {}
        self.locked: list[str] = []

    async def lock(self, cliente_id: str) -> None:
        self.locked.append(cliente_id)

    async def lock_many(self, cliente_ids: Sequence[str]) -> None:
        self.locked.extend(cliente_ids)

    async def get(self, cliente_id: str) -> Cliente | None:
        return self.clientes.get(cliente_id)

    async def get_many(self, cliente_ids: Sequence[str]) -> dict[str, Cliente]:
        return {id_: self.clientes[id_] for id_ in cliente_ids if id_ in self.clientes}

    async def save(self, cliente: Cliente) -> None:
        self.clientes[cliente.id] = cliente

    async def list_active(self, *, after_id: str | None, limit: int) -> list[Cliente]:
        active = sorted(
            (cliente for cliente in self.clientes.values() if not cliente.removido),
            key=lambda cliente: cliente.id,
        )
        after = [cliente for cliente in active if after_id is None or cliente.id > after_id]
        return after[:limit]


class InMemoryPendingPedidos:
    def __init__(self) -> None:
        self.by_cliente: dict[str, dict[str, PedidoAEnriquecer]] = {}

    async def keep(self, pedido: PedidoAEnriquecer) -> None:
        self.by_cliente.setdefault(pedido.cliente_id, {}).setdefault(pedido.id, pedido)

    async def keep_many(self, pedidos: Sequence[PedidoAEnriquecer]) -> None:
        for pedido in pedidos:
            await self.keep(pedido)

    async def take_all(self, cliente_id: str) -> list[PedidoAEnriquecer]:
        return list(self.by_cliente.pop(cliente_id, {}).values())


@dataclass(frozen=True)
class OutboxRow:
    topic: str
    key: str
    payload: events.Event


@dataclass
class FakeOutbox:
    """Rows appended in the open transaction are `pending` until it commits."""

    pending: list[OutboxRow] = field(default_factory=list)
    committed: list[OutboxRow] = field(default_factory=list)

    async def append(self, *, topic: str, key: str, payload: events.Event) -> None:
        self.pending.append(OutboxRow(topic=topic, key=key, payload=payload))

    async def append_many(self, *, topic: str, keyed: Sequence[tuple[str, events.Event]]) -> None:
        for key, payload in keyed:
            await self.append(topic=topic, key=key, payload=payload)

    def payloads(self) -> list[events.Event]:
        return [row.payload for row in self.committed]


class InMemoryUnitOfWork:
    def __init__(self) -> None:
        self.clientes = InMemoryClienteRepository()
        self.pendentes = InMemoryPendingPedidos()
        self.outbox = FakeOutbox()
        self.commits = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Leaving without commit rolls back whatever the outbox got in this transaction.
        self.outbox.pending.clear()

    async def commit(self) -> None:
        self.commits += 1
        self.outbox.committed.extend(self.outbox.pending)
        self.outbox.pending.clear()


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


def pedido(pedido_id: str = "10248", *, cliente_id: str = "ALFKI") -> PedidoAEnriquecer:
    return PedidoAEnriquecer(
        id=pedido_id, cliente_id=cliente_id, valor=Decimal("440.00"), data=DATA
    )


def enriquecido(pedido: PedidoAEnriquecer, dados: DadosCliente) -> events.PedidoEnriquecido:
    return events.PedidoEnriquecido(
        id=pedido.id,
        cliente_id=pedido.cliente_id,
        valor=pedido.valor,
        data=pedido.data,
        cliente=events.ClienteDoPedido(
            nome=dados.nome, cidade=dados.cidade, pais=dados.pais, segmento=dados.segmento
        ),
    )


# --------------------------------------------------------------------------------------
# DadosCliente, validar_id and Cliente
# --------------------------------------------------------------------------------------


def test_customer_data_is_stripped_and_empty_optionals_become_none() -> None:
    dados = DadosCliente(nome="  Ana Trujillo ", email=" ", cidade=" México D.F. ", pais="")

    validados = dados.validados()

    assert validados == DadosCliente(nome="Ana Trujillo", cidade="México D.F.")


@pytest.mark.parametrize("nome", ["", "   ", "\t\n"])
def test_a_blank_nome_is_rejected(nome: str) -> None:
    with pytest.raises(InvalidClienteError, match=r"^nome: must not be blank$") as caught:
        DadosCliente(nome=nome).validados()

    assert caught.value.field == "nome"


def test_a_nome_of_200_characters_is_accepted() -> None:
    dados = DadosCliente(nome="n" * 200)

    assert dados.validados().nome == "n" * 200


@pytest.mark.parametrize("campo", ["nome", "email", "cidade", "pais", "segmento"])
def test_a_field_longer_than_200_characters_is_rejected_by_name(campo: str) -> None:
    dados = DadosCliente(**{"nome": "Ana", campo: "x" * 201})

    with pytest.raises(InvalidClienteError, match=rf"^{campo}: must be at most 200 characters$"):
        dados.validados()


@pytest.mark.parametrize("email", ["maria", "maria@alfreds", "ma ria@alfreds.de", "a@b@c.de"])
def test_an_email_that_does_not_look_like_one_is_rejected(email: str) -> None:
    with pytest.raises(InvalidClienteError, match=r"^email: must look like name@example\.com$"):
        DadosCliente(nome="Maria", email=email).validados()


@pytest.mark.parametrize("value", ["", "x" * 65, "ALF KI", "ALFKI/1"])
def test_an_invalid_customer_id_is_rejected_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidClienteError, match=r"^cliente-id: must be 1 to 64 characters"):
        validar_id(value, field="cliente-id")


def test_a_valid_customer_id_is_returned_unchanged() -> None:
    assert validar_id("ALFKI") == "ALFKI"


def test_every_change_of_a_customer_adds_one_to_its_versao() -> None:
    cliente = Cliente(id="ALFKI", dados=DADOS, versao=1)

    removido = cliente.com_dados(DadosCliente(nome="Alfreds")).removendo()
    de_volta = removido.com_dados(DADOS)

    assert (removido.versao, removido.removido) == (3, True)
    assert (de_volta.versao, de_volta.removido) == (4, False)


# --------------------------------------------------------------------------------------
# registrar_cliente
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_customer_is_created_with_versao_one(uow: InMemoryUnitOfWork) -> None:
    cliente, created = await registrar_cliente(uow, "ALFKI", DADOS)

    assert created
    assert cliente == Cliente(id="ALFKI", dados=DADOS, versao=1)
    assert uow.clientes.clientes == {"ALFKI": cliente}
    assert uow.clientes.locked == ["ALFKI"]


@pytest.mark.asyncio
async def test_a_new_customer_publishes_cliente_registrado(uow: InMemoryUnitOfWork) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)

    assert uow.outbox.committed == [
        OutboxRow(
            topic=events.TOPIC_CLIENTES,
            key="ALFKI",
            payload=events.ClienteRegistrado(
                id="ALFKI",
                nome="Alfreds Futterkiste",
                versao=1,
                email="maria@alfreds.de",
                cidade="Berlin",
                pais="Germany",
            ),
        )
    ]


@pytest.mark.asyncio
async def test_a_new_customer_is_stored_with_validated_data(uow: InMemoryUnitOfWork) -> None:
    cliente, _ = await registrar_cliente(uow, "ANATR", DadosCliente(nome=" Ana ", cidade=""))

    assert cliente.dados == DadosCliente(nome="Ana")


@pytest.mark.asyncio
async def test_a_customer_with_an_invalid_id_is_rejected(uow: InMemoryUnitOfWork) -> None:
    with pytest.raises(InvalidClienteError, match=r"^id: must be 1 to 64 characters"):
        await registrar_cliente(uow, "ALF KI", DADOS)

    assert uow.clientes.clientes == {}
    assert uow.outbox.committed == []


@pytest.mark.asyncio
async def test_creating_a_customer_releases_the_orders_that_waited_for_it(
    uow: InMemoryUnitOfWork,
) -> None:
    primeiro, segundo = pedido("10248"), pedido("10249")
    await enriquecer_pedidos(uow, [primeiro])
    await enriquecer_pedidos(uow, [segundo])

    await registrar_cliente(uow, "ALFKI", DADOS)

    enriched = [row for row in uow.outbox.committed if row.topic != events.TOPIC_CLIENTES]
    assert enriched == [
        OutboxRow(
            topic=events.TOPIC_PEDIDOS_ENRIQUECIDOS, key="ALFKI", payload=enriquecido(p, DADOS)
        )
        for p in (primeiro, segundo)
    ]
    assert uow.pendentes.by_cliente == {}


@pytest.mark.asyncio
async def test_creating_a_customer_releases_only_its_own_orders(
    uow: InMemoryUnitOfWork,
) -> None:
    outro = pedido("10250", cliente_id="BONAP")
    await enriquecer_pedidos(uow, [outro])

    await registrar_cliente(uow, "ALFKI", DADOS)

    assert uow.outbox.payloads() == [
        events.ClienteRegistrado(
            id="ALFKI",
            nome=DADOS.nome,
            versao=1,
            email=DADOS.email,
            cidade=DADOS.cidade,
            pais=DADOS.pais,
        )
    ]
    assert uow.pendentes.by_cliente == {"BONAP": {"10250": outro}}


@pytest.mark.asyncio
async def test_a_repeated_identical_post_returns_the_existing_customer_without_event(
    uow: InMemoryUnitOfWork,
) -> None:
    existing, _ = await registrar_cliente(uow, "ALFKI", DADOS)
    repeated = DadosCliente(
        nome=" Alfreds Futterkiste ", email="maria@alfreds.de", cidade="Berlin", pais="Germany"
    )

    result = await registrar_cliente(uow, "ALFKI", repeated)

    assert result == (existing, False)
    assert len(uow.outbox.committed) == 1
    assert uow.commits == 1


@pytest.mark.asyncio
async def test_a_post_with_other_data_for_an_existing_customer_is_a_conflict(
    uow: InMemoryUnitOfWork,
) -> None:
    existing, _ = await registrar_cliente(uow, "ALFKI", DADOS)

    with pytest.raises(
        ConflictingClienteError, match=r"^cliente ALFKI already exists with other data$"
    ) as caught:
        await registrar_cliente(uow, "ALFKI", DadosCliente(nome="Alfreds"))

    assert caught.value.cliente_id == "ALFKI"
    assert uow.clientes.clientes == {"ALFKI": existing}
    assert len(uow.outbox.committed) == 1


@pytest.mark.asyncio
async def test_a_customer_created_again_after_removal_continues_its_versao(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    await remover_cliente(uow, "ALFKI")

    cliente, created = await registrar_cliente(uow, "ALFKI", DadosCliente(nome="Alfreds"))

    assert created
    assert (cliente.versao, cliente.removido) == (3, False)
    assert uow.outbox.payloads()[-1] == events.ClienteRegistrado(
        id="ALFKI", nome="Alfreds", versao=3
    )


# --------------------------------------------------------------------------------------
# enriquecer_pedidos
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_order_for_a_known_customer_is_published_enriched(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    order = pedido()

    waiting = await enriquecer_pedidos(uow, [order])

    assert waiting == []
    assert uow.outbox.committed[-1] == OutboxRow(
        topic=events.TOPIC_PEDIDOS_ENRIQUECIDOS, key="ALFKI", payload=enriquecido(order, DADOS)
    )
    assert uow.clientes.locked[-1] == "ALFKI"


@pytest.mark.asyncio
async def test_an_order_for_an_unknown_customer_waits(uow: InMemoryUnitOfWork) -> None:
    order = pedido()

    waiting = await enriquecer_pedidos(uow, [order])

    assert waiting == [order]
    assert uow.pendentes.by_cliente == {"ALFKI": {"10248": order}}
    assert uow.outbox.committed == []
    assert uow.commits == 1


@pytest.mark.asyncio
async def test_an_order_for_a_removed_customer_waits(uow: InMemoryUnitOfWork) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    await remover_cliente(uow, "ALFKI")
    events_before = len(uow.outbox.committed)
    order = pedido()

    waiting = await enriquecer_pedidos(uow, [order])

    assert waiting == [order]
    assert uow.pendentes.by_cliente == {"ALFKI": {"10248": order}}
    assert len(uow.outbox.committed) == events_before


@pytest.mark.asyncio
async def test_an_order_waiting_for_a_removed_customer_is_released_when_it_returns(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    await remover_cliente(uow, "ALFKI")
    order = pedido()
    await enriquecer_pedidos(uow, [order])
    novos = DadosCliente(nome="Alfreds", segmento="varejo")

    await registrar_cliente(uow, "ALFKI", novos)

    assert uow.outbox.payloads()[-1] == enriquecido(order, novos)
    assert uow.pendentes.by_cliente == {}


@pytest.mark.asyncio
async def test_a_batch_publishes_the_known_and_keeps_the_unknown_in_order(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "BONAP", DADOS)
    await registrar_cliente(uow, "ALFKI", DADOS)
    first, waiting, second = (
        pedido("1", cliente_id="BONAP"),
        pedido("2", cliente_id="NOBODY"),
        pedido("3", cliente_id="ALFKI"),
    )
    commits_before = uow.commits

    kept = await enriquecer_pedidos(uow, [first, waiting, second])

    assert kept == [waiting]
    assert uow.outbox.payloads()[-2:] == [enriquecido(first, DADOS), enriquecido(second, DADOS)]
    assert uow.pendentes.by_cliente == {"NOBODY": {"2": waiting}}
    assert uow.clientes.locked[-3:] == ["ALFKI", "BONAP", "NOBODY"]
    assert uow.commits == commits_before + 1


# --------------------------------------------------------------------------------------
# atualizar_cliente
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_update_raises_versao_and_publishes_cliente_atualizado(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    novos = DadosCliente(nome="Alfreds Futterkiste", cidade="Hamburg", segmento="varejo")

    cliente = await atualizar_cliente(uow, "ALFKI", novos)

    assert cliente == Cliente(id="ALFKI", dados=novos, versao=2)
    assert uow.clientes.clientes["ALFKI"] == cliente
    assert uow.outbox.committed[-1] == OutboxRow(
        topic=events.TOPIC_CLIENTES,
        key="ALFKI",
        payload=events.ClienteAtualizado(
            id="ALFKI",
            nome="Alfreds Futterkiste",
            versao=2,
            cidade="Hamburg",
            segmento="varejo",
        ),
    )


@pytest.mark.asyncio
async def test_an_update_without_change_publishes_nothing(uow: InMemoryUnitOfWork) -> None:
    existing, _ = await registrar_cliente(uow, "ALFKI", DADOS)

    cliente = await atualizar_cliente(uow, "ALFKI", DADOS)

    assert cliente == existing
    assert cliente.versao == 1
    assert len(uow.outbox.committed) == 1
    assert uow.commits == 1


@pytest.mark.asyncio
async def test_an_update_of_an_unknown_customer_is_not_found(uow: InMemoryUnitOfWork) -> None:
    with pytest.raises(ClienteNotFoundError, match=r"^cliente ALFKI does not exist$") as caught:
        await atualizar_cliente(uow, "ALFKI", DADOS)

    assert caught.value.cliente_id == "ALFKI"
    assert uow.outbox.committed == []


@pytest.mark.asyncio
async def test_an_update_of_a_removed_customer_is_not_found(uow: InMemoryUnitOfWork) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    await remover_cliente(uow, "ALFKI")

    with pytest.raises(ClienteNotFoundError, match=r"cliente ALFKI does not exist"):
        await atualizar_cliente(uow, "ALFKI", DadosCliente(nome="Alfreds"))


@pytest.mark.asyncio
async def test_an_update_with_invalid_data_is_rejected(uow: InMemoryUnitOfWork) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)

    with pytest.raises(InvalidClienteError, match=r"^nome: must not be blank$"):
        await atualizar_cliente(uow, "ALFKI", DadosCliente(nome=" "))

    assert uow.clientes.clientes["ALFKI"].versao == 1


# --------------------------------------------------------------------------------------
# remover_cliente
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_removal_raises_versao_and_publishes_the_last_state(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)

    await remover_cliente(uow, "ALFKI")

    assert uow.clientes.clientes["ALFKI"] == Cliente(
        id="ALFKI", dados=DADOS, versao=2, removido=True
    )
    assert uow.outbox.committed[-1] == OutboxRow(
        topic=events.TOPIC_CLIENTES,
        key="ALFKI",
        payload=events.ClienteRemovido(
            id="ALFKI",
            nome="Alfreds Futterkiste",
            versao=2,
            email="maria@alfreds.de",
            cidade="Berlin",
            pais="Germany",
        ),
    )


@pytest.mark.asyncio
async def test_removing_an_unknown_customer_is_not_found(uow: InMemoryUnitOfWork) -> None:
    with pytest.raises(ClienteNotFoundError, match=r"cliente ALFKI does not exist"):
        await remover_cliente(uow, "ALFKI")

    assert uow.outbox.committed == []


@pytest.mark.asyncio
async def test_removing_a_customer_twice_is_not_found(uow: InMemoryUnitOfWork) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    await remover_cliente(uow, "ALFKI")

    with pytest.raises(ClienteNotFoundError, match=r"cliente ALFKI does not exist"):
        await remover_cliente(uow, "ALFKI")

    assert uow.clientes.clientes["ALFKI"].versao == 2
    assert len(uow.outbox.committed) == 2


@pytest.mark.asyncio
async def test_versao_grows_by_one_with_every_change_of_a_customer(
    uow: InMemoryUnitOfWork,
) -> None:
    await registrar_cliente(uow, "ALFKI", DADOS)
    await atualizar_cliente(uow, "ALFKI", DadosCliente(nome="Alfreds"))
    await remover_cliente(uow, "ALFKI")
    await registrar_cliente(uow, "ALFKI", DADOS)

    versoes = [
        (type(payload).__name__, payload.versao)
        for payload in uow.outbox.payloads()
        if isinstance(payload, events.ClienteSnapshot)
    ]

    assert versoes == [
        ("ClienteRegistrado", 1),
        ("ClienteAtualizado", 2),
        ("ClienteRemovido", 3),
        ("ClienteRegistrado", 4),
    ]


@pytest.mark.parametrize(
    ("campo", "valor", "codigo"),
    [
        ("nome", "Ana\nMaria", "U+000A"),
        ("nome", "a\x00b", "U+0000"),
        ("cidade", "Bue\tnos Aires", "U+0009"),
        ("nome", "\u202egnaL", "U+202E"),
        ("segmento", "x\u2066y", "U+2066"),
        ("email", "a\x7f@b.co", "U+007F"),
    ],
)
def test_a_control_character_inside_a_field_is_rejected_by_name(
    campo: str, valor: str, codigo: str
) -> None:
    dados = DadosCliente(**{"nome": "Ana", campo: valor})

    with pytest.raises(InvalidClienteError, match=re.escape(codigo)) as caught:
        dados.validados()

    assert caught.value.field == campo


def test_blanks_around_a_field_are_stripped_not_refused() -> None:
    assert DadosCliente(nome="\tAna Trujillo\r\n").validados().nome == "Ana Trujillo"
