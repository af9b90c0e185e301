"""Money on the wire: exact JSON numbers in, strings with two decimals out."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

import msgspec

_JSON_NUMBER: Final = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class NotANumberError(ValueError):
    """The value is not a JSON number (a string, a boolean, null, an object...)."""


def decimal_from_json_number(raw: msgspec.Raw) -> Decimal:
    """The exact Decimal of a raw JSON value, which must be a number literal.

    A string such as "100.00" is refused on purpose: clients must send numbers, and taking
    both would make "NaN" or "1e999999" strings a second, less checked way in.
    """
    text = bytes(raw).strip()
    if not _JSON_NUMBER.fullmatch(text):
        raise NotANumberError("must be a JSON number")
    try:
        return Decimal(text.decode("ascii"))
    except InvalidOperation as error:
        raise NotANumberError("must be a JSON number") from error


def format_money(value: Decimal) -> str:
    """`"100.00"`: exactly two decimals, no exponent."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
