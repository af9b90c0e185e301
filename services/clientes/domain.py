"""Customers, and how an order is joined with its customer. Standard library only."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

# Dots alone are excluded: "." and ".." would be path segments, not ids, in a URL.
ID_PATTERN: Final = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}")
EMAIL_PATTERN: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_TEXT_LENGTH: Final = 200


class InvalidClienteError(ValueError):
    """A customer breaks a rule. `field` names the offending field as clients spell it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ClienteNotFoundError(LookupError):
    def __init__(self, cliente_id: str) -> None:
        super().__init__(f"cliente {cliente_id} does not exist")
        self.cliente_id = cliente_id


class ConflictingClienteError(Exception):
    def __init__(self, cliente_id: str) -> None:
        super().__init__(f"cliente {cliente_id} already exists with other data")
        self.cliente_id = cliente_id


@dataclass(frozen=True, slots=True)
class DadosCliente:
    """What a client may set on a customer."""

    nome: str
    email: str | None = None
    cidade: str | None = None
    pais: str | None = None
    segmento: str | None = None

    def validados(self) -> DadosCliente:
        """The same data with surrounding blanks removed and empty optionals as None.

        Raises:
            InvalidClienteError: a field breaks a rule; the error names it.
        """
        nome = _stripped("nome", self.nome)
        if not nome:
            raise InvalidClienteError("nome", "must not be blank")
        if len(nome) > MAX_TEXT_LENGTH:
            raise InvalidClienteError("nome", f"must be at most {MAX_TEXT_LENGTH} characters")
        email = _optional("email", self.email)
        if email is not None and not EMAIL_PATTERN.fullmatch(email):
            raise InvalidClienteError("email", "must look like name@example.com")

        return DadosCliente(
            nome=nome,
            email=email,
            cidade=_optional("cidade", self.cidade),
            pais=_optional("pais", self.pais),
            segmento=_optional("segmento", self.segmento),
        )


def _optional(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    stripped = _stripped(field, value)
    if len(stripped) > MAX_TEXT_LENGTH:
        raise InvalidClienteError(field, f"must be at most {MAX_TEXT_LENGTH} characters")
    return stripped or None


# Characters that reorder the text around them: in a report or a log line they can make a
# name read as something else.
BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _stripped(field: str, value: str) -> str:
    """The value without surrounding blanks, refused if a control character is left."""
    stripped = value.strip()
    for character in stripped:
        # PostgreSQL text cannot hold NUL; names and places hold no line breaks, tabs or
        # other control characters either.
        if unicodedata.category(character) == "Cc" or character in BIDI_CONTROLS:
            raise InvalidClienteError(
                field, f"must not contain the control character U+{ord(character):04X}"
            )
    return stripped


def validar_id(value: str, *, field: str = "id") -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidClienteError(
            field, "must be 1 to 64 characters of letters, digits, '.', '_' or '-'"
        )
    return value


@dataclass(frozen=True, slots=True)
class Cliente:
    """A customer. `versao` grows by one with every change, removal included, so readers
    of its events can always tell the newest state."""

    id: str
    dados: DadosCliente
    versao: int
    removido: bool = False

    def com_dados(self, dados: DadosCliente) -> Cliente:
        return replace(self, dados=dados, versao=self.versao + 1, removido=False)

    def removendo(self) -> Cliente:
        return replace(self, versao=self.versao + 1, removido=True)


@dataclass(frozen=True, slots=True)
class PedidoAEnriquecer:
    """An order waiting to be joined with its customer."""

    id: str
    cliente_id: str
    valor: Decimal
    data: dt.datetime
