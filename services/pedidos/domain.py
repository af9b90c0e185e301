"""What an order is and which orders are acceptable. Standard library only."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

# Dots alone are excluded: "." and ".." would be path segments, not ids, in a URL.
ID_PATTERN: Final = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}")
CENT: Final = Decimal("0.01")
VALOR_LIMIT: Final = Decimal(10) ** 12
"""Exclusive upper bound of an order's value; fits NUMERIC(14, 2) with room to spare."""


class InvalidPedidoError(ValueError):
    """An order breaks a rule. `field` names the offending field as clients spell it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ConflictingPedidoError(Exception):
    """An order with this id exists with other content."""

    def __init__(self, pedido_id: str) -> None:
        super().__init__(f"pedido {pedido_id} already exists with other content")
        self.pedido_id = pedido_id


@dataclass(frozen=True, slots=True)
class Pedido:
    """An accepted order. `valor` always has exactly two decimal places."""

    id: str
    cliente_id: str
    valor: Decimal
    data: dt.datetime


@dataclass(frozen=True, slots=True)
class PedidoRecebido:
    """An order as a client sent it, before it is accepted. `data` may be absent."""

    id: str
    cliente_id: str
    valor: Decimal
    data: dt.datetime | None = None

    def validar(self, *, agora: dt.datetime) -> Pedido:
        """The accepted order, with `data` defaulting to `agora`.

        Raises:
            InvalidPedidoError: a field breaks a rule; the error names it.
        """
        validar_id("id", self.id)
        validar_id("cliente-id", self.cliente_id)
        valor = validar_valor(self.valor)
        data = self.data if self.data is not None else agora
        if data.tzinfo is None or data.utcoffset() is None:
            raise InvalidPedidoError("data", "must carry a UTC offset, such as Z or -03:00")
        try:
            # Kept in UTC, so the order reads back the same whatever offset it came with.
            data = data.astimezone(dt.UTC)
        except OverflowError as error:
            raise InvalidPedidoError("data", "is out of range") from error

        return Pedido(id=self.id, cliente_id=self.cliente_id, valor=valor, data=data)

    def corresponde_a(self, existente: Pedido) -> bool:
        """Whether this request repeats an accepted order (a retry) rather than conflicting
        with it. A request without `data` matches any date."""
        return (
            self.cliente_id == existente.cliente_id
            and self.valor == existente.valor
            and (self.data is None or self.data == existente.data)
        )


def validar_id(field: str, value: str) -> None:
    """Ids are 1 to 64 letters, digits, dots, underscores or hyphens."""
    if not ID_PATTERN.fullmatch(value):
        raise InvalidPedidoError(
            field, "must be 1 to 64 characters of letters, digits, '.', '_' or '-'"
        )


def validar_valor(valor: Decimal) -> Decimal:
    """Returns the value with exactly two decimal places.

    Raises:
        InvalidPedidoError: not finite, not positive, finer than a cent, or too large.
    """
    if not valor.is_finite():
        raise InvalidPedidoError("valor", "must be a finite number")
    if valor <= 0:
        raise InvalidPedidoError("valor", "must be greater than 0")
    if valor >= VALOR_LIMIT:
        raise InvalidPedidoError("valor", "must be below 10^12")
    cents = valor.quantize(CENT)
    if cents != valor:
        raise InvalidPedidoError("valor", "must have at most two decimal places")
    return cents
