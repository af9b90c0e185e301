"""Unit tests of money on the wire: exact JSON numbers in, two-decimal strings out."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from datasync.money import NotANumberError, decimal_from_json_number, format_money


def raw(text: str) -> msgspec.Raw:
    return msgspec.Raw(text.encode())


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("100.0", "100.0"),
        ("100.00", "100.00"),
        ("0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827"),
        ("-1", "-1"),
        ("0", "0"),
        ("1e3", "1E+3"),
        ("2.5E-1", "0.25"),
        ("1e+2", "1E+2"),
        (" 42.5\n", "42.5"),
    ],
)
def test_a_json_number_literal_becomes_its_exact_decimal(literal: str, expected: str) -> None:
    value = decimal_from_json_number(raw(literal))

    assert isinstance(value, Decimal)
    assert str(value) == expected


def test_a_number_inside_a_decoded_document_is_read_exactly() -> None:
    document = msgspec.json.decode(
        b'{"valor": 0.1000000000000000055511151231257827}', type=dict[str, msgspec.Raw]
    )

    assert decimal_from_json_number(document["valor"]) == Decimal(
        "0.1000000000000000055511151231257827"
    )


@pytest.mark.parametrize(
    "literal",
    [
        '"100.00"',
        '"NaN"',
        "true",
        "false",
        "null",
        "NaN",
        "Infinity",
        "-Infinity",
        "[1]",
        '{"valor": 1}',
        "",
        "01",
        ".5",
        "1.",
        "+1",
        "1_000",
        "0x10",
        "1 2",
        "١٢",
    ],
)
def test_anything_but_a_json_number_literal_is_refused(literal: str) -> None:
    with pytest.raises(NotANumberError, match=r"^must be a JSON number$"):
        decimal_from_json_number(raw(literal))


def test_not_a_number_error_is_a_value_error() -> None:
    assert issubclass(NotANumberError, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("100"), "100.00"),
        (Decimal("100.0"), "100.00"),
        (Decimal("0.1"), "0.10"),
        (Decimal("440.00"), "440.00"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("1E+11"), "100000000000.00"),
        (Decimal("999999999999.99"), "999999999999.99"),
        (Decimal("-5.5"), "-5.50"),
        (Decimal("0"), "0.00"),
    ],
)
def test_money_is_formatted_with_exactly_two_decimals(value: Decimal, expected: str) -> None:
    assert format_money(value) == expected
