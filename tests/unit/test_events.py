"""Unit tests of the event contracts: CloudEvents headers and JSON payloads."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from datasync import events
from datasync.events import (
    Envelope,
    EventEnvelopeError,
    EventPayloadError,
    decode_payload,
    encode_payload,
    envelope_headers,
    read_envelope,
)

DATA = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
PEDIDO_CRIADO = "datasync.pedidos.PedidoCriado"
ENVELOPE = Envelope(
    id="5c1d7e0a-8a0b-4a36-9d57-2f8f3c1d9e10",
    type=PEDIDO_CRIADO,
    source="pedidos",
    time=dt.datetime(2024, 3, 1, 12, 30, 15, 250_000, tzinfo=dt.UTC),
    subject="10248",
    schema_version=1,
    request_id="req-42",
)
CLIENTE = events.ClienteDoPedido(nome="Alfreds", cidade="Berlin", pais="Germany")

PAYLOADS: list[events.Event] = [
    events.PedidoCriado(id="10248", cliente_id="ALFKI", valor=Decimal("440.00"), data=DATA),
    events.ClienteRegistrado(id="ALFKI", nome="Alfreds", versao=1, email="maria@alfreds.de"),
    events.ClienteAtualizado(id="ALFKI", nome="Alfreds", versao=2, segmento="varejo"),
    events.ClienteRemovido(id="ALFKI", nome="Alfreds", versao=3),
    events.PedidoEnriquecido(
        id="10248", cliente_id="ALFKI", valor=Decimal("440.00"), data=DATA, cliente=CLIENTE
    ),
]


def type_name(payload: events.Event) -> str:
    [name] = [name for name, spec in events.EVENT_TYPES.items() if spec.payload is type(payload)]
    return name


def body(**fields: object) -> bytes:
    """A PedidoCriado body with `fields` replaced; a field set to ... is left out."""
    values: dict[str, object] = {
        "id": "10248",
        "cliente-id": "ALFKI",
        "valor": "440.00",
        "data": "2024-03-01T09:30:00-03:00",
    }
    values.update(fields)
    return json.dumps({key: value for key, value in values.items() if value is not ...}).encode()


def headers_without(name: str) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in envelope_headers(ENVELOPE) if key != name]


def headers_with(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [*headers_without(name), (name, value)]


# --------------------------------------------------------------------------------------
# Envelope
# --------------------------------------------------------------------------------------


def test_an_envelope_survives_the_trip_through_kafka_headers() -> None:
    headers = envelope_headers(ENVELOPE)

    assert read_envelope(headers) == ENVELOPE


def test_an_envelope_without_request_id_has_no_request_id_header() -> None:
    envelope = Envelope(
        id="e-1",
        type=PEDIDO_CRIADO,
        source="pedidos",
        time=ENVELOPE.time,
        subject="10248",
        schema_version=1,
    )

    headers = envelope_headers(envelope)

    assert "ce_requestid" not in dict(headers)
    assert read_envelope(headers) == envelope


def test_envelope_headers_follow_the_cloudevents_kafka_binding() -> None:
    headers = dict(envelope_headers(ENVELOPE))

    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"5c1d7e0a-8a0b-4a36-9d57-2f8f3c1d9e10",
        "ce_type": b"datasync.pedidos.PedidoCriado",
        "ce_source": b"pedidos",
        "ce_time": b"2024-03-01T12:30:15.250000+00:00",
        "ce_subject": b"10248",
        "ce_schemaversion": b"1",
        "content-type": b"application/json",
        "ce_requestid": b"req-42",
    }


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda payload: type(payload).__name__)
def test_a_new_envelope_names_the_payload_type_and_its_version(payload: events.Event) -> None:
    envelope = events.new_envelope(payload, source="tests", subject="s-1", request_id="r-1")

    assert (envelope.type, envelope.schema_version) == (type_name(payload), 1)
    assert (envelope.source, envelope.subject, envelope.request_id) == ("tests", "s-1", "r-1")
    assert envelope.time.utcoffset() == dt.timedelta(0)


def test_every_new_envelope_has_its_own_id() -> None:
    payload = PAYLOADS[0]

    ids = {events.new_envelope(payload, source="pedidos", subject="10248").id for _ in range(3)}

    assert len(ids) == 3


@pytest.mark.parametrize(
    "name", ["ce_type", "ce_id", "ce_source", "ce_subject"], ids=lambda name: name
)
def test_a_missing_header_is_named(name: str) -> None:
    headers = headers_without(name)

    with pytest.raises(EventEnvelopeError, match=rf"^header {name} is missing$"):
        read_envelope(headers)


@pytest.mark.parametrize("name", ["ce_time", "ce_schemaversion"], ids=lambda name: name)
def test_a_missing_time_or_schema_version_header_is_reported_as_missing(name: str) -> None:
    headers = headers_without(name)

    with pytest.raises(EventEnvelopeError, match=rf"^header {name} is missing$"):
        read_envelope(headers)


def test_a_header_that_is_not_utf8_is_named() -> None:
    headers = headers_with("ce_subject", b"\xff\xfe")

    with pytest.raises(EventEnvelopeError, match=r"^header ce_subject is not UTF-8$"):
        read_envelope(headers)


def test_an_unknown_event_type_in_the_headers_is_rejected() -> None:
    headers = headers_with("ce_type", b"datasync.pedidos.PedidoCancelado")

    with pytest.raises(
        EventEnvelopeError, match=r"^unknown event type 'datasync\.pedidos\.PedidoCancelado'$"
    ):
        read_envelope(headers)


def test_a_malformed_time_header_is_rejected() -> None:
    headers = headers_with("ce_time", b"yesterday")

    with pytest.raises(
        EventEnvelopeError, match=r"^malformed header: Invalid isoformat string: 'yesterday'$"
    ):
        read_envelope(headers)


def test_a_malformed_schema_version_header_is_rejected() -> None:
    headers = headers_with("ce_schemaversion", b"one")

    with pytest.raises(
        EventEnvelopeError,
        match=r"^malformed header: invalid literal for int\(\) with base 10: 'one'$",
    ):
        read_envelope(headers)


def test_envelope_errors_are_value_errors() -> None:
    assert issubclass(EventEnvelopeError, ValueError)
    assert issubclass(EventPayloadError, ValueError)


# --------------------------------------------------------------------------------------
# Payload
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda payload: type(payload).__name__)
def test_a_payload_survives_encoding_and_decoding(payload: events.Event) -> None:
    encoded = encode_payload(payload)

    decoded = decode_payload(type_name(payload), encoded)

    assert decoded == payload
    assert type(decoded) is type(payload)


@pytest.mark.parametrize("valor", ["440.00", "0.10", "0.01", "999999999999.99"])
def test_a_decimal_valor_survives_the_round_trip_digit_for_digit(valor: str) -> None:
    payload = events.PedidoCriado(id="10248", cliente_id="ALFKI", valor=Decimal(valor), data=DATA)

    decoded = decode_payload(PEDIDO_CRIADO, encode_payload(payload))

    assert isinstance(decoded, events.PedidoCriado)
    assert str(decoded.valor) == valor


def test_a_date_keeps_its_utc_offset_through_the_round_trip() -> None:
    payload = PAYLOADS[0]

    decoded = decode_payload(PEDIDO_CRIADO, encode_payload(payload))

    assert isinstance(decoded, events.PedidoCriado)
    assert decoded.data.utcoffset() == dt.timedelta(hours=-3)


def test_a_decimal_is_encoded_as_a_json_string_under_kebab_case_keys() -> None:
    payload = PAYLOADS[0]

    encoded = json.loads(encode_payload(payload))

    assert encoded == {
        "id": "10248",
        "cliente-id": "ALFKI",
        "valor": "440.00",
        "data": "2024-03-01T09:30:00-03:00",
    }


def test_a_payload_with_unknown_fields_is_decoded_ignoring_them() -> None:
    encoded = body(canal="web")

    decoded = decode_payload(PEDIDO_CRIADO, encoded)

    assert decoded == PAYLOADS[0]


def test_a_payload_of_an_unknown_event_type_is_rejected() -> None:
    with pytest.raises(
        EventEnvelopeError, match=r"^unknown event type 'datasync\.pedidos\.PedidoCancelado'$"
    ):
        decode_payload("datasync.pedidos.PedidoCancelado", body())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<pedido/>", r"^JSON is malformed: invalid character \(byte 0\)$"),
        (b"", r"^Input data was truncated$"),
        (b"[]", r"^Expected `object`, got `array`$"),
        (body(valor="quatro"), r"^Invalid decimal string - at `\$\.valor`$"),
        (body(valor=True), r"^Expected `decimal`, got `bool` - at `\$\.valor`$"),
        (body(data="ontem"), r"^Invalid RFC3339 encoded datetime - at `\$\.data`$"),
        (body(id=10248), r"^Expected `str`, got `int` - at `\$\.id`$"),
    ],
    ids=["not json", "empty", "array", "bad decimal", "bool valor", "bad date", "int id"],
)
def test_a_malformed_body_is_rejected_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(EventPayloadError, match=message):
        decode_payload(PEDIDO_CRIADO, raw)


@pytest.mark.parametrize("field", ["id", "cliente-id", "valor", "data"])
def test_a_body_missing_a_required_field_names_it(field: str) -> None:
    raw = body(**{field: ...})

    with pytest.raises(EventPayloadError, match=rf"^Object missing required field `{field}`$"):
        decode_payload(PEDIDO_CRIADO, raw)


def test_the_dead_letter_topic_of_a_topic_has_the_dlq_suffix() -> None:
    assert events.dead_letter_topic(events.TOPIC_PEDIDOS) == "pedidos.dlq"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"id":"1","cliente-id":"C","valor":"NaN","data":"2024-01-01T00:00:00Z"}', "valor"),
        (b'{"id":"1","cliente-id":"C","valor":"-5.00","data":"2024-01-01T00:00:00Z"}', "valor"),
        (b'{"id":"1","cliente-id":"C","valor":"0","data":"2024-01-01T00:00:00Z"}', "valor"),
        (b'{"id":"1","cliente-id":"C","valor":"1.005","data":"2024-01-01T00:00:00Z"}', "two"),
        (b'{"id":"1","cliente-id":"","valor":"1.00","data":"2024-01-01T00:00:00Z"}', "cliente-id"),
        (b'{"id":"1","cliente-id":"C","valor":"1.00","data":"2024-01-01T00:00:00"}', "offset"),
    ],
)
def test_an_order_event_the_api_would_refuse_cannot_be_decoded(body: bytes, message: str) -> None:
    with pytest.raises(EventPayloadError, match=message):
        decode_payload(PEDIDO_CRIADO, body)


def test_a_customer_snapshot_without_a_name_cannot_be_decoded() -> None:
    body = b'{"id":"C1","nome":"  ","versao":1}'

    with pytest.raises(EventPayloadError, match="nome"):
        decode_payload("datasync.clientes.ClienteRegistrado", body)
