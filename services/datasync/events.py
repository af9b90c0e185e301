"""Every event contract exchanged through Kafka, in one place.

An event travels as a Kafka record in CloudEvents *binary* mode: the envelope (id, type,
source, time, subject and our schema version) sits in `ce_*` headers, and the record value is
the plain JSON payload described by the Structs below. Keeping the body free of envelope
fields lets any consumer read the payload without knowing about CloudEvents.

Schema evolution follows two rules: a new field always gets a default, and a field's type
never changes. A change that cannot follow them is a new event type with a new version.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

import msgspec

SPEC_VERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"

TOPIC_PEDIDOS: Final = "pedidos"
TOPIC_CLIENTES: Final = "clientes"
TOPIC_PEDIDOS_ENRIQUECIDOS: Final = "pedidos-enriquecidos"
ALL_TOPICS: Final = (TOPIC_PEDIDOS, TOPIC_CLIENTES, TOPIC_PEDIDOS_ENRIQUECIDOS)


def dead_letter_topic(topic: str) -> str:
    """Name of the topic that receives the records of `topic` no consumer could handle."""
    return f"{topic}.dlq"


class Payload(
    msgspec.Struct, kw_only=True, rename="kebab", forbid_unknown_fields=False, frozen=True
):
    """Base of every payload: kebab-case keys; unknown keys are ignored so producers can add
    fields before consumers know them."""


# The rules of the contract itself, checked whenever a payload is decoded, so a record that
# reached a topic without going through the APIs cannot carry what the APIs refuse. A
# violation makes the record undecodable: it goes to the dead-letter topic.
KEY_PATTERN: Final = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}")
"""The shape of every id in the system: 1 to 64 letters, digits, '.', '_' or '-'; dots
alone are excluded, since they would be path segments in a URL."""
_CENT: Final = Decimal("0.01")
_VALOR_LIMIT: Final = Decimal(10) ** 12


def _check_key(name: str, value: str) -> None:
    if not KEY_PATTERN.fullmatch(value):
        raise ValueError(f"{name} must be 1 to 64 letters, digits, '.', '_' or '-'")


def _check_pedido(payload: PedidoCriado | PedidoEnriquecido) -> None:
    _check_key("id", payload.id)
    _check_key("cliente-id", payload.cliente_id)
    valor = payload.valor
    if not valor.is_finite() or valor <= 0 or valor >= _VALOR_LIMIT:
        raise ValueError("valor must be a number greater than 0 and below 10^12")
    if valor.quantize(_CENT) != valor:
        raise ValueError("valor must have at most two decimal places")
    if payload.data.tzinfo is None:
        raise ValueError("data must carry a UTC offset")


class PedidoCriado(Payload, frozen=True):
    """An order was accepted by the pedidos service."""

    id: str
    cliente_id: str
    valor: Decimal
    data: dt.datetime

    def __post_init__(self) -> None:
        _check_pedido(self)


class ClienteSnapshot(Payload, frozen=True):
    """The state of a customer after a change. `versao` grows by one with every change, so a
    consumer can keep the newest state even if it sees an older event again."""

    id: str
    nome: str
    versao: int
    email: str | None = None
    cidade: str | None = None
    pais: str | None = None
    segmento: str | None = None

    def __post_init__(self) -> None:
        _check_key("id", self.id)
        if not self.nome.strip() or self.versao < 1:
            raise ValueError("a customer snapshot needs a nome and a versao of 1 or more")


class ClienteRegistrado(ClienteSnapshot, frozen=True):
    """A customer was created (or created again after a removal)."""


class ClienteAtualizado(ClienteSnapshot, frozen=True):
    """A customer's data changed."""


class ClienteRemovido(ClienteSnapshot, frozen=True):
    """A customer was removed; the snapshot is its last state."""


class ClienteDoPedido(Payload, frozen=True):
    """The customer data copied into an enriched order, as it was at enrichment time."""

    nome: str
    cidade: str | None = None
    pais: str | None = None
    segmento: str | None = None


class PedidoEnriquecido(Payload, frozen=True):
    """An order joined with a snapshot of its customer."""

    id: str
    cliente_id: str
    valor: Decimal
    data: dt.datetime
    cliente: ClienteDoPedido

    def __post_init__(self) -> None:
        _check_pedido(self)


Event = PedidoCriado | ClienteRegistrado | ClienteAtualizado | ClienteRemovido | PedidoEnriquecido


class EventType(msgspec.Struct, frozen=True):
    """How one payload class is named on the wire."""

    name: str
    version: int
    payload: type[Event]


# The CloudEvents `type` attribute is the tag of the union: one name per payload class.
EVENT_TYPES: Final[Mapping[str, EventType]] = {
    spec.name: spec
    for spec in (
        EventType(name="datasync.pedidos.PedidoCriado", version=1, payload=PedidoCriado),
        EventType(name="datasync.clientes.ClienteRegistrado", version=1, payload=ClienteRegistrado),
        EventType(name="datasync.clientes.ClienteAtualizado", version=1, payload=ClienteAtualizado),
        EventType(name="datasync.clientes.ClienteRemovido", version=1, payload=ClienteRemovido),
        EventType(name="datasync.clientes.PedidoEnriquecido", version=1, payload=PedidoEnriquecido),
    )
}
_TYPE_BY_PAYLOAD: Final = {spec.payload: spec for spec in EVENT_TYPES.values()}

# Decoders are built once: msgspec compiles a decoder per type on construction.
_DECODERS: Final = {name: msgspec.json.Decoder(spec.payload) for name, spec in EVENT_TYPES.items()}
_ENCODER: Final = msgspec.json.Encoder()


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The CloudEvents context of one event, carried in Kafka headers."""

    id: str
    type: str
    source: str
    time: dt.datetime
    subject: str
    schema_version: int
    request_id: str | None = None


class EventEnvelopeError(ValueError):
    """A record's headers do not describe an event this system knows. Never retriable."""


class EventPayloadError(ValueError):
    """A record's body does not match its event schema. Never retriable."""


def new_envelope(
    payload: Event, *, source: str, subject: str, request_id: str | None = None
) -> Envelope:
    """Builds the envelope of a new event, with a fresh unique id."""
    spec = _TYPE_BY_PAYLOAD[type(payload)]
    return Envelope(
        id=str(uuid.uuid4()),
        type=spec.name,
        source=source,
        time=dt.datetime.now(dt.UTC),
        subject=subject,
        schema_version=spec.version,
        request_id=request_id,
    )


def encode_payload(payload: Event) -> bytes:
    """Serializes a payload to the JSON record value. Decimals are written as strings so no
    reader can turn money into a float by accident."""
    return _ENCODER.encode(payload)


def envelope_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """The Kafka headers of an event, following the CloudEvents Kafka protocol binding."""
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_time", envelope.time.isoformat().encode()),
        ("ce_subject", envelope.subject.encode()),
        ("ce_schemaversion", str(envelope.schema_version).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if envelope.request_id:
        headers.append(("ce_requestid", envelope.request_id.encode()))
    return headers


def read_envelope(headers: Sequence[tuple[str, bytes]]) -> Envelope:
    """Reads the CloudEvents context back from Kafka headers.

    Raises:
        EventEnvelopeError: a required header is missing or malformed, or the type is unknown.
    """
    values = dict(headers)

    def text(name: str) -> str:
        raw = values.get(name)
        if raw is None:
            raise EventEnvelopeError(f"header {name} is missing")
        try:
            return raw.decode()
        except UnicodeDecodeError as error:
            raise EventEnvelopeError(f"header {name} is not UTF-8") from error

    event_type = text("ce_type")
    if event_type not in EVENT_TYPES:
        raise EventEnvelopeError(f"unknown event type {event_type!r}")
    raw_time, raw_version = text("ce_time"), text("ce_schemaversion")
    try:
        time = dt.datetime.fromisoformat(raw_time)
        schema_version = int(raw_version)
    except ValueError as error:
        raise EventEnvelopeError(f"malformed header: {error}") from error
    request_id = values.get("ce_requestid")

    return Envelope(
        id=text("ce_id"),
        type=event_type,
        source=text("ce_source"),
        time=time,
        subject=text("ce_subject"),
        schema_version=schema_version,
        request_id=request_id.decode(errors="replace") if request_id else None,
    )


def decode_payload(event_type: str, body: bytes) -> Event:
    """Decodes a record value into the payload class named by its CloudEvents type.

    Raises:
        EventEnvelopeError: the type is unknown.
        EventPayloadError: the body is not JSON or does not match the schema.
    """
    decoder = _DECODERS.get(event_type)
    if decoder is None:
        raise EventEnvelopeError(f"unknown event type {event_type!r}")
    try:
        payload: Event = decoder.decode(body)
    except msgspec.DecodeError as error:
        raise EventPayloadError(str(error)) from error
    return payload
