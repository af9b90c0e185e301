"""Unit tests of the pedidos domain and of `registrar_pedido`, over an in-memory unit of work."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from datasync import events
from pedidos.domain import (
    ConflictingPedidoError,
    InvalidPedidoError,
    Pedido,
    PedidoRecebido,
    validar_id,
    validar_valor,
)
from pedidos.service import registrar_pedido

AGORA = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)
ONTEM = dt.datetime(2024, 2, 29, 9, 0, tzinfo=dt.UTC)
BRASILIA = dt.timezone(dt.timedelta(hours=-3))


# --------------------------------------------------------------------------------------
# In-memory doubles of pedidos.ports
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    topic: str
    key: str
    payload: events.Event


@dataclass
class InMemoryPedidoIntake:
    """Stores orders and their events together, as one commit would."""

    pedidos: dict[str, Pedido] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    calls: int = 0

    async def add_new(
        self, pedido: Pedido, *, topic: str, key: str, event: events.Event
    ) -> Pedido | None:
        self.calls += 1
        if pedido.id in self.pedidos:
            return self.pedidos[pedido.id]
        self.pedidos[pedido.id] = pedido
        self.outbox.append(OutboxRow(topic=topic, key=key, payload=event))
        return None


@pytest.fixture
def intake() -> InMemoryPedidoIntake:
    return InMemoryPedidoIntake()


def recebido(
    *,
    pedido_id: str = "p-1",
    cliente_id: str = "ALFKI",
    valor: Decimal = Decimal("10.50"),
    data: dt.datetime | None = ONTEM,
) -> PedidoRecebido:
    return PedidoRecebido(id=pedido_id, cliente_id=cliente_id, valor=valor, data=data)


def pedido(
    *,
    pedido_id: str = "p-1",
    cliente_id: str = "ALFKI",
    valor: Decimal = Decimal("10.50"),
    data: dt.datetime = ONTEM,
) -> Pedido:
    return Pedido(id=pedido_id, cliente_id=cliente_id, valor=valor, data=data)


# --------------------------------------------------------------------------------------
# PedidoRecebido.validar
# --------------------------------------------------------------------------------------


def test_a_valid_order_is_accepted_with_its_fields() -> None:
    order = recebido(data=ONTEM)

    accepted = order.validar(agora=AGORA)

    assert accepted == Pedido(id="p-1", cliente_id="ALFKI", valor=Decimal("10.50"), data=ONTEM)


def test_an_accepted_order_has_its_valor_with_exactly_two_decimals() -> None:
    order = recebido(valor=Decimal("7.5"))

    accepted = order.validar(agora=AGORA)

    assert str(accepted.valor) == "7.50"


def test_an_order_without_data_is_dated_now() -> None:
    order = recebido(data=None)

    accepted = order.validar(agora=AGORA)

    assert accepted.data == AGORA


def test_an_order_is_kept_in_utc_at_the_same_instant_it_was_sent_with() -> None:
    data = dt.datetime(2024, 2, 29, 9, 0, tzinfo=BRASILIA)

    accepted = recebido(data=data).validar(agora=AGORA)

    assert accepted.data == data
    assert accepted.data.utcoffset() == dt.timedelta(0)


def test_an_order_dated_where_utc_has_no_year_is_rejected() -> None:
    order = recebido(data=dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))))

    with pytest.raises(InvalidPedidoError, match=r"^data: is out of range"):
        order.validar(agora=AGORA)


def test_an_order_dated_without_utc_offset_is_rejected() -> None:
    order = recebido(data=dt.datetime(2024, 2, 29, 9, 0))  # noqa: DTZ001 - naive on purpose

    with pytest.raises(InvalidPedidoError, match=r"^data: must carry a UTC offset") as caught:
        order.validar(agora=AGORA)

    assert caught.value.field == "data"


def test_an_invalid_cliente_id_is_named_as_clients_spell_it() -> None:
    order = recebido(cliente_id="ALF KI")

    with pytest.raises(InvalidPedidoError, match=r"^cliente-id: must be 1 to 64") as caught:
        order.validar(agora=AGORA)

    assert caught.value.field == "cliente-id"


def test_an_invalid_valor_stops_validation() -> None:
    order = recebido(valor=Decimal(0))

    with pytest.raises(InvalidPedidoError, match=r"^valor: must be greater than 0$"):
        order.validar(agora=AGORA)


# --------------------------------------------------------------------------------------
# validar_id and validar_valor
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["p", "10248", "A.b_c-9", "x" * 64])
def test_ids_of_letters_digits_dots_underscores_and_hyphens_are_accepted(value: str) -> None:
    validar_id("id", value)


@pytest.mark.parametrize("value", ["", "x" * 65, "a b", "pedido/1", "pedidoé", "p\n"])
def test_other_ids_are_rejected_naming_the_field(value: str) -> None:
    with pytest.raises(
        InvalidPedidoError,
        match=r"^id: must be 1 to 64 characters of letters, digits, '\.', '_' or '-'$",
    ):
        validar_id("id", value)


@pytest.mark.parametrize(
    ("valor", "expected"),
    [
        (Decimal("0.01"), "0.01"),
        (Decimal(100), "100.00"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("10.500"), "10.50"),
        (Decimal("999999999999.99"), "999999999999.99"),
    ],
)
def test_a_valid_valor_is_returned_with_two_decimals(valor: Decimal, expected: str) -> None:
    result = validar_valor(valor)

    assert str(result) == expected


@pytest.mark.parametrize(
    ("valor", "message"),
    [
        (Decimal("NaN"), r"^valor: must be a finite number$"),
        (Decimal("sNaN"), r"^valor: must be a finite number$"),
        (Decimal("Infinity"), r"^valor: must be a finite number$"),
        (Decimal("-Infinity"), r"^valor: must be a finite number$"),
        (Decimal(0), r"^valor: must be greater than 0$"),
        (Decimal("-0.00"), r"^valor: must be greater than 0$"),
        (Decimal("-1"), r"^valor: must be greater than 0$"),
        (Decimal(10) ** 12, r"^valor: must be below 10\^12$"),
        (Decimal("1E+999999"), r"^valor: must be below 10\^12$"),
        (Decimal("0.001"), r"^valor: must have at most two decimal places$"),
        (Decimal("10.505"), r"^valor: must have at most two decimal places$"),
        (
            Decimal("0.1000000000000000055511151231257827"),
            r"^valor: must have at most two decimal places$",
        ),
        (Decimal("1E-999999999"), r"^valor: must have at most two decimal places$"),
    ],
)
def test_an_unacceptable_valor_is_rejected_with_its_reason(valor: Decimal, message: str) -> None:
    with pytest.raises(InvalidPedidoError, match=message) as caught:
        validar_valor(valor)

    assert caught.value.field == "valor"


# --------------------------------------------------------------------------------------
# PedidoRecebido.corresponde_a
# --------------------------------------------------------------------------------------


def test_an_order_without_data_matches_any_date() -> None:
    existente = pedido(data=ONTEM)

    assert recebido(data=None).corresponde_a(existente)


def test_an_order_with_the_same_instant_in_another_offset_matches() -> None:
    existente = pedido(data=dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC))

    repetido = recebido(data=dt.datetime(2024, 2, 29, 9, 0, tzinfo=BRASILIA))

    assert repetido.corresponde_a(existente)


def test_an_order_with_the_same_valor_written_differently_matches() -> None:
    existente = pedido(valor=Decimal("10.50"))

    assert recebido(valor=Decimal("10.5")).corresponde_a(existente)


@pytest.mark.parametrize(
    "outro",
    [
        recebido(cliente_id="BONAP"),
        recebido(valor=Decimal("10.51")),
        recebido(data=AGORA),
    ],
    ids=["other cliente", "other valor", "other data"],
)
def test_an_order_with_other_content_does_not_match(outro: PedidoRecebido) -> None:
    existente = pedido()

    assert not outro.corresponde_a(existente)


# --------------------------------------------------------------------------------------
# registrar_pedido
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_order_is_stored_and_created(intake: InMemoryPedidoIntake) -> None:
    order = recebido()

    stored, created = await registrar_pedido(intake, order, clock=lambda: AGORA)

    assert created
    assert stored == pedido()
    assert intake.pedidos == {"p-1": stored}


@pytest.mark.asyncio
async def test_a_new_order_queues_its_pedido_criado_event_with_it(
    intake: InMemoryPedidoIntake,
) -> None:
    order = recebido(valor=Decimal("7.5"))

    await registrar_pedido(intake, order, clock=lambda: AGORA)

    assert intake.outbox == [
        OutboxRow(
            topic=events.TOPIC_PEDIDOS,
            key="ALFKI",
            payload=events.PedidoCriado(
                id="p-1", cliente_id="ALFKI", valor=Decimal("7.50"), data=ONTEM
            ),
        )
    ]


@pytest.mark.asyncio
async def test_a_new_order_without_data_is_dated_by_the_clock(
    intake: InMemoryPedidoIntake,
) -> None:
    order = recebido(data=None)

    stored, _ = await registrar_pedido(intake, order, clock=lambda: AGORA)

    assert stored.data == AGORA


@pytest.mark.asyncio
async def test_a_repeated_order_returns_the_stored_one_without_a_new_event(
    intake: InMemoryPedidoIntake,
) -> None:
    await registrar_pedido(intake, recebido(), clock=lambda: AGORA)

    stored, created = await registrar_pedido(intake, recebido(), clock=lambda: AGORA)

    assert not created
    assert stored == pedido()
    assert len(intake.outbox) == 1


@pytest.mark.asyncio
async def test_a_repeated_order_without_data_keeps_the_stored_date(
    intake: InMemoryPedidoIntake,
) -> None:
    await registrar_pedido(intake, recebido(data=ONTEM), clock=lambda: AGORA)

    stored, created = await registrar_pedido(intake, recebido(data=None), clock=lambda: AGORA)

    assert not created
    assert stored.data == ONTEM


@pytest.mark.asyncio
async def test_duplicate_order_with_other_content_is_rejected(
    intake: InMemoryPedidoIntake,
) -> None:
    await registrar_pedido(intake, recebido(), clock=lambda: AGORA)

    with pytest.raises(
        ConflictingPedidoError, match=r"^pedido p-1 already exists with other content$"
    ) as caught:
        await registrar_pedido(intake, recebido(valor=Decimal(11)), clock=lambda: AGORA)

    assert caught.value.pedido_id == "p-1"
    assert intake.pedidos == {"p-1": pedido()}
    assert len(intake.outbox) == 1


@pytest.mark.asyncio
async def test_an_invalid_order_is_rejected_before_anything_is_written(
    intake: InMemoryPedidoIntake,
) -> None:
    order = recebido(valor=Decimal("0.001"))

    with pytest.raises(InvalidPedidoError, match=r"^valor: "):
        await registrar_pedido(intake, order, clock=lambda: AGORA)

    assert intake.calls == 0
    assert intake.outbox == []
