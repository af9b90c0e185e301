"""Import the Northwind sample data through the public REST APIs, as any client would.

The importer reads ``customers.csv``, ``orders.csv`` and ``order_details.csv`` and posts
one ``cliente`` per customer and one ``pedido`` per order. It deliberately uses the HTTP
APIs rather than the databases, so an import exercises validation, persistence and event
publication exactly like production traffic does.

What it guarantees:

- Every CSV row ends up in exactly one bucket of the :class:`ImportReport`: created (201),
  unchanged (200), rejected (locally, or by the API with a 4xx) or failed (5xx or transport
  errors once retries are spent). Nothing is dropped silently.
- Re-running is safe: the APIs answer 200 when an id is posted again with the same content,
  which is also why a POST may be retried after a transport error.
- Money is computed in :class:`decimal.Decimal` from the CSV text and travels as a JSON
  number with exactly two decimals; it never passes through ``float``.
- Personal data (contact names, phone numbers) is never sent nor logged.

Run it with ``python -m datasync.importer --data-dir ../shared/data/northwind``.

Warning:
    When an API is down for the whole run, every row still goes through all its attempts,
    about 12 s per row with the default :class:`RetryPolicy`, spread over the workers:
    roughly 11 minutes for Northwind at concurrency 16. Stop the run with Ctrl-C and start
    it again once the API answers; rows imported before come back as unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import decimal
import email.utils
import functools
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Final, Literal, Protocol

import httpx
import msgspec
import structlog

# tqdm ships no type information; the bar is used through the _ProgressBar protocol below.
from tqdm import tqdm

__all__ = [
    "DEFAULT_RETRY",
    "ClienteRow",
    "DataFileError",
    "Failure",
    "ImportReport",
    "ImportRow",
    "Kind",
    "PedidoRow",
    "Rejection",
    "RetryPolicy",
    "encode_body",
    "import_northwind",
    "import_rows",
    "load_clientes",
    "load_pedidos",
    "main",
]

_log = structlog.get_logger(__name__)

Kind = Literal["cliente", "pedido"]

_CUSTOMER_COLUMNS: Final = ("customer_id", "company_name", "city", "country")
_ORDER_COLUMNS: Final = ("order_id", "customer_id", "order_date")
_DETAIL_COLUMNS: Final = ("order_id", "unit_price", "quantity", "discount")

# Plain decimal notation only: Decimal() would also take "NaN", "1e3" or "1_000",
# none of which is a price a person typed into a spreadsheet.
_DECIMAL_TEXT: Final = re.compile(r"-?\d+(?:\.\d+)?")
_INTEGER_TEXT: Final = re.compile(r"\d+")
_DATE_TEXT: Final = re.compile(r"\d{4}-\d{2}-\d{2}")

# Line totals must be exact whatever the caller's decimal context is: 64 digits hold any
# realistic price x quantity product, and a result that would need rounding raises instead.
_EXACT: Final = decimal.Context(
    prec=64,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
)
# The one deliberate rounding: the order total, half-up at the cent.
_MONEY: Final = decimal.Context(
    prec=64,
    rounding=decimal.ROUND_HALF_UP,
    traps=[decimal.InvalidOperation, decimal.Overflow],
)
_CENT: Final = Decimal("0.01")

# decimal_format="number" writes a Decimal's digits verbatim as a JSON number (440.00),
# which keeps the amount exact on the wire where a float would not.
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
_HEADERS: Final = {
    "content-type": "application/json",
    "accept": "application/json, application/problem+json",
}

# Long enough for a busy service on a laptop, short enough that a hung request is retried
# well before anyone wonders whether the import is stuck.
_REQUEST_TIMEOUT_S: Final = 10.0
# Bodies that are not problem+json are quoted in the report; this keeps an HTML error page
# from flooding the terminal.
_MAX_QUOTED_BODY_CHARS: Final = 200

# Only 503 announces a temporary condition; other 5xx mean the server could not handle
# this row and would fail it again.
_RETRIABLE_STATUS: Final = 503


class DataFileError(Exception):
    """A CSV file cannot be used at all: unreadable, not UTF-8, or missing columns."""


class _RowError(Exception):
    """One CSV row cannot be turned into a request body; the message says why."""


class ClienteRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """One customer, shaped exactly as the body of ``POST /clientes``.

    Empty optional values are ``None`` and left out of the body. Contact name and phone
    are personal data and have no field here on purpose.
    """

    kind: ClassVar[Kind] = "cliente"

    id: str
    nome: str
    cidade: str | None = None
    pais: str | None = None


class PedidoRow(msgspec.Struct, frozen=True):
    """One order, shaped exactly as the body of ``POST /pedidos``.

    ``data`` is midnight UTC of the order date; ``valor`` is the order total rounded
    half-up to cents.
    """

    kind: ClassVar[Kind] = "pedido"

    id: str
    cliente_id: str = msgspec.field(name="cliente-id")
    data: dt.datetime
    valor: Decimal


ImportRow = ClienteRow | PedidoRow


def encode_body(row: ImportRow) -> bytes:
    """Encode a row as the JSON body its API expects.

    Args:
        row: The customer or order to send.

    Returns:
        UTF-8 JSON with ``valor`` as a number carrying its exact digits and ``data`` as an
        RFC 3339 timestamp ending in ``Z``.
    """
    return _ENCODER.encode(row)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was refused, locally or by the API, and will not succeed if resent as is.

    Attributes:
        kind: Which resource the row describes.
        row_id: The row's id, or ``""`` when the id itself is missing.
        detail: Why the row was refused (the problem's ``detail`` for API rejections).
        status: The HTTP status for API rejections; ``None`` when refused locally.
        invalid_params: ``(name, reason)`` pairs from the problem's ``invalid-params``.
        source: File and line for local rejections, e.g. ``"orders.csv line 4"``.
    """

    kind: Kind
    row_id: str
    detail: str
    status: int | None = None
    invalid_params: tuple[tuple[str, str], ...] = ()
    source: str | None = None

    @property
    def reason(self) -> str:
        """The detail followed by every invalid parameter, on one line."""
        params = "; ".join(f"{name}: {why}" for name, why in self.invalid_params)
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{prefix}{self.detail}" + (f" ({params})" if params else "")


@dataclass(frozen=True, slots=True)
class Failure:
    """A row the API could not take because of a server or network fault; resending may work.

    Attributes:
        kind: Which resource the row describes.
        row_id: The row's id.
        reason: The last error seen, e.g. ``"HTTP 503"`` or ``"ConnectError: ..."``.
        attempts: How many times the row was sent.
    """

    kind: Kind
    row_id: str
    reason: str
    attempts: int


@dataclass(slots=True)
class ImportReport:
    """What became of every row of an import.

    Attributes:
        sent: Rows posted to an API (each counted once, however many attempts it took).
        created: Rows the API answered with 201.
        unchanged: Rows the API answered with 200: already there with the same content.
        rejected: Rows refused locally or with a 4xx, in the order they were found.
        failed: Rows lost to 5xx answers or transport errors after retries.
    """

    sent: int = 0
    created: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every row was created or found unchanged."""
        return not self.rejected and not self.failed

    def merge(self, other: ImportReport) -> ImportReport:
        """Return a report that adds ``other``'s outcomes to this one's."""
        return ImportReport(
            sent=self.sent + other.sent,
            created=self.created + other.created,
            unchanged=self.unchanged + other.unchanged,
            rejected=[*self.rejected, *other.rejected],
            failed=[*self.failed, *other.failed],
        )

    def summary(self) -> str:
        """One line of counts, e.g. for the end of a command-line run."""
        local = sum(1 for rejection in self.rejected if rejection.status is None)
        return (
            f"{self.sent + local} rows read, {self.sent} sent: {self.created} created, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected ({local} locally), "
            f"{len(self.failed)} failed"
        )

    def issues(self) -> list[str]:
        """One line per rejected or failed row, saying which row and why."""
        rejected = [
            f"rejected {rejection.kind} {rejection.row_id or '<no id>'}"
            + (f" ({rejection.source})" if rejection.source else "")
            + f": {rejection.reason}"
            for rejection in self.rejected
        ]
        failed = [
            f"failed {failure.kind} {failure.row_id} after {failure.attempts} attempt(s): "
            + failure.reason
            for failure in self.failed
        ]

        return rejected + failed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to insist when the API is briefly unavailable (transport errors and 503).

    Attributes:
        attempts: Tries per row, the first one included. Six tries with the default delays
            span about 15 s, enough for a service to restart.
        base_delay_s: Wait after the first failed try; it doubles after each later one.
        max_delay_s: Upper bound for a single wait, ``Retry-After`` included, so that a
            misbehaving server cannot stall the import for long.
    """

    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")

    def backoff_s(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (counted from 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))

        # Half fixed, half random, so that workers which failed together spread out.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


DEFAULT_RETRY: Final = RetryPolicy()


# --------------------------------------------------------------------------------------
# CSV parsing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CsvRecord:
    file: str
    line: int
    fields: dict[str, str]
    # Set when the record has the wrong number of fields; its values cannot be trusted.
    problem: str | None

    @property
    def source(self) -> str:
        return f"{self.file} line {self.line}"

    def check_shape(self) -> None:
        if self.problem:
            raise _RowError(self.problem)


def _read_table(path: Path, columns: Sequence[str]) -> list[_CsvRecord]:
    """Read a whole CSV file, checking that its header names every needed column."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in columns if name not in header]
            if missing:
                raise DataFileError(f"{path}: missing column(s) {', '.join(missing)}")

            records = []
            for values in reader:
                # csv yields [] for a blank line, which is layout, not a row.
                if not values:
                    continue
                problem = None
                if len(values) != len(header):
                    problem = f"expected {len(header)} fields, found {len(values)}"
                fields = {name: value.strip() for name, value in zip(header, values, strict=False)}
                records.append(_CsvRecord(path.name, reader.line_num, fields, problem))
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except csv.Error as exc:
        raise DataFileError(f"{path}: malformed CSV ({exc})") from exc
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc

    return records


def _required(record: _CsvRecord, name: str) -> str:
    value = record.fields.get(name, "")
    if not value:
        raise _RowError(f"missing {name}")
    return value


def _decimal(record: _CsvRecord, name: str) -> Decimal:
    text = record.fields.get(name, "")
    if not _DECIMAL_TEXT.fullmatch(text):
        raise _RowError(f"{name} {text!r} is not a decimal number")
    return Decimal(text)


def _line_total(record: _CsvRecord) -> Decimal:
    """unit_price x quantity x (1 - discount), exact."""
    unit_price = _decimal(record, "unit_price")
    if unit_price < 0:
        raise _RowError(f"unit_price {unit_price} is negative")
    quantity_text = record.fields.get("quantity", "")
    if not _INTEGER_TEXT.fullmatch(quantity_text) or int(quantity_text) == 0:
        raise _RowError(f"quantity {quantity_text!r} is not a positive whole number")
    discount = _decimal(record, "discount")
    if not 0 <= discount <= 1:
        raise _RowError(f"discount {discount} is not between 0 and 1")

    try:
        gross = _EXACT.multiply(unit_price, Decimal(quantity_text))
        return _EXACT.multiply(gross, _EXACT.subtract(Decimal(1), discount))
    except decimal.DecimalException as exc:
        raise _RowError("line total too large to compute exactly") from exc


def _order_valor(line_totals: Sequence[Decimal]) -> Decimal:
    """Sum the exact line totals, then round once, half-up at the cent."""
    try:
        total = functools.reduce(_EXACT.add, line_totals, Decimal(0))
        return total.quantize(_CENT, context=_MONEY)
    except decimal.DecimalException as exc:
        raise _RowError("order total too large to compute exactly") from exc


def _order_date(record: _CsvRecord) -> dt.datetime:
    text = _required(record, "order_date")
    # fromisoformat alone would also take week dates and compact forms like 19960704.
    day = None
    if _DATE_TEXT.fullmatch(text):
        with contextlib.suppress(ValueError):
            day = dt.date.fromisoformat(text)
    if day is None:
        raise _RowError(f"order_date {text!r} is not a date like 1996-07-04")

    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _check_unique(record: _CsvRecord, row_id: str, seen: dict[str, int]) -> None:
    # A repeated id is ambiguous, and posting both copies concurrently would race.
    first = seen.setdefault(row_id, record.line)
    if first != record.line:
        raise _RowError(f"duplicate id, first seen on line {first}")


def load_clientes(path: Path) -> tuple[list[ClienteRow], list[Rejection]]:
    """Parse ``customers.csv`` into request bodies.

    Args:
        path: The customers file; it needs the columns customer_id, company_name, city
            and country. Other columns, personal data included, are ignored.

    Returns:
        The valid customers in file order, and a rejection for every other row.

    Raises:
        DataFileError: The file cannot be read or lacks a needed column.
    """
    clientes: list[ClienteRow] = []
    rejections: list[Rejection] = []
    seen: dict[str, int] = {}
    for record in _read_table(path, _CUSTOMER_COLUMNS):
        try:
            clientes.append(_parse_cliente(record, seen))
        except _RowError as exc:
            row_id = record.fields.get("customer_id", "")
            rejections.append(Rejection("cliente", row_id, str(exc), source=record.source))

    return clientes, rejections


def _parse_cliente(record: _CsvRecord, seen: dict[str, int]) -> ClienteRow:
    record.check_shape()
    row_id = _required(record, "customer_id")
    _check_unique(record, row_id, seen)

    return ClienteRow(
        id=row_id,
        nome=_required(record, "company_name"),
        cidade=record.fields["city"] or None,
        pais=record.fields["country"] or None,
    )


@dataclass(slots=True)
class _OrderLines:
    totals: list[Decimal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _load_order_lines(path: Path) -> tuple[dict[str, _OrderLines], list[Rejection]]:
    """Group detail lines by order id; a bad line is kept as a problem of its order."""
    by_order: dict[str, _OrderLines] = {}
    rejections: list[Rejection] = []
    for record in _read_table(path, _DETAIL_COLUMNS):
        order_id = record.fields.get("order_id", "")
        if not order_id:
            rejections.append(Rejection("pedido", "", "missing order_id", source=record.source))
            continue

        lines = by_order.setdefault(order_id, _OrderLines())
        try:
            record.check_shape()
            lines.totals.append(_line_total(record))
        except _RowError as exc:
            lines.problems.append(f"{record.source}: {exc}")

    return by_order, rejections


def load_pedidos(orders: Path, details: Path) -> tuple[list[PedidoRow], list[Rejection]]:
    """Parse ``orders.csv`` and ``order_details.csv`` into request bodies.

    Each order's ``valor`` is the sum of its lines' unit_price x quantity x (1 - discount),
    computed exactly from the CSV text and rounded half-up to cents once, at the end.

    Args:
        orders: The orders file (order_id, customer_id, order_date columns needed).
        details: The order lines file (order_id, unit_price, quantity, discount needed).

    Returns:
        The valid orders in file order, and a rejection for every order that has no
        lines or a bad row or line, and for lines whose order is not in ``orders``.

    Raises:
        DataFileError: A file cannot be read or lacks a needed column.
    """
    order_lines, rejections = _load_order_lines(details)
    pedidos: list[PedidoRow] = []
    seen: dict[str, int] = {}
    for record in _read_table(orders, _ORDER_COLUMNS):
        try:
            pedidos.append(_parse_pedido(record, seen, order_lines))
        except _RowError as exc:
            row_id = record.fields.get("order_id", "")
            rejections.append(Rejection("pedido", row_id, str(exc), source=record.source))

    # Lines of an order that orders.csv lacks would otherwise vanish without a trace.
    for order_id, lines in order_lines.items():
        if order_id not in seen:
            count = len(lines.totals) + len(lines.problems)
            detail = f"{count} line(s) for an order missing from {orders.name}"
            rejections.append(Rejection("pedido", order_id, detail, source=details.name))

    return pedidos, rejections


def _parse_pedido(
    record: _CsvRecord, seen: dict[str, int], order_lines: dict[str, _OrderLines]
) -> PedidoRow:
    # The id is registered before anything else can fail, so that the lines of a malformed
    # order are not also reported as lines of an unknown one.
    row_id = _required(record, "order_id")
    _check_unique(record, row_id, seen)
    record.check_shape()
    cliente_id = _required(record, "customer_id")
    data = _order_date(record)
    lines = order_lines.get(row_id, _OrderLines())
    if lines.problems:
        raise _RowError("bad order line(s): " + "; ".join(lines.problems))
    if not lines.totals:
        raise _RowError("no detail lines")

    return PedidoRow(row_id, cliente_id, data, _order_valor(lines.totals))


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class _InvalidParam(msgspec.Struct):
    name: str = ""
    reason: str = ""


class _Problem(msgspec.Struct):
    """The RFC 9457 problem details the APIs answer errors with."""

    title: str | None = None
    detail: str | None = None
    params: list[_InvalidParam] = msgspec.field(default_factory=list, name="invalid-params")


_PROBLEM_DECODER: Final = msgspec.json.Decoder(_Problem)


def _describe(response: httpx.Response) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Extract the detail and invalid parameters of an error response, whatever its body."""
    try:
        problem = _PROBLEM_DECODER.decode(response.content)
    except msgspec.DecodeError:
        quoted = response.text.strip()[:_MAX_QUOTED_BODY_CHARS]
        return quoted or response.reason_phrase, ()

    params = tuple((param.name, param.reason) for param in problem.params)
    return problem.detail or problem.title or response.reason_phrase, params


def _retry_after_s(response: httpx.Response) -> float | None:
    """Seconds the server asked to wait, from delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)

    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


_Outcome = Literal["created", "unchanged"] | Rejection | Failure
Sleep = Callable[[float], Awaitable[None]]


def _outcome(row: ImportRow, response: httpx.Response, attempts: int) -> _Outcome:
    status = response.status_code
    if status == httpx.codes.CREATED:
        return "created"
    if status == httpx.codes.OK:
        return "unchanged"
    if httpx.codes.is_client_error(status):
        detail, params = _describe(response)
        return Rejection(row.kind, row.id, detail, status=status, invalid_params=params)
    if httpx.codes.is_server_error(status):
        detail, _ = _describe(response)
        return Failure(row.kind, row.id, f"HTTP {status}: {detail}", attempts)

    return Failure(row.kind, row.id, f"unexpected HTTP {status}", attempts)


async def _send(
    client: httpx.AsyncClient,
    url: str,
    row: ImportRow,
    *,
    retry: RetryPolicy,
    sleep: Sleep,
) -> _Outcome:
    """Post one row, retrying transport errors and 503 answers, never 4xx."""
    body = encode_body(row)
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await client.post(url, content=body, headers=_HEADERS)
        except httpx.RequestError as exc:
            cause = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            delay_s = retry.backoff_s(attempt)
        else:
            if response.status_code != _RETRIABLE_STATUS:
                return _outcome(row, response, attempt)
            cause = f"HTTP {response.status_code}"
            asked_s = _retry_after_s(response)
            delay_s = retry.backoff_s(attempt) if asked_s is None else asked_s

        if attempt >= retry.attempts:
            _log.error(
                "importer.row_failed",
                kind=row.kind,
                row_id=row.id,
                attempts=attempt,
                cause=cause,
                next_step="reported as failed; rerun the import to resend it",
            )
            return Failure(row.kind, row.id, cause, attempt)
        delay_s = min(delay_s, retry.max_delay_s)
        _log.warning(
            "importer.retry_scheduled",
            kind=row.kind,
            row_id=row.id,
            attempt=attempt,
            max_attempts=retry.attempts,
            delay_s=round(delay_s, 3),
            cause=cause,
        )
        await sleep(delay_s)


class _ProgressBar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


async def import_rows(
    client: httpx.AsyncClient,
    url: str,
    rows: Sequence[ImportRow],
    *,
    concurrency: int,
    progress: bool,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Sleep = asyncio.sleep,
) -> ImportReport:
    """Post every row to one endpoint with a fixed pool of workers.

    Args:
        client: The HTTP client; its timeouts and transport apply to every request.
        url: The collection URL, e.g. ``http://127.0.0.1:3001/clientes``.
        rows: The bodies to post, all of one kind.
        concurrency: How many requests may be in flight at once (at least 1).
        progress: Show a progress bar on stderr; ignored when stderr is not a terminal.
        retry: How to retry transport errors and 503 answers.
        sleep: Waits between attempts; tests pass a fake to avoid real delays.

    Returns:
        The outcome of every row. Local rejections are not part of it.

    Raises:
        ValueError: ``concurrency`` is less than 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")

    report = ImportReport()
    if not rows:
        return report

    bar: _ProgressBar = tqdm(
        total=len(rows),
        desc=f"{rows[0].kind}s",
        unit="row",
        disable=not (progress and sys.stderr.isatty()),
    )
    # Workers share one iterator: each takes the next row when it is free, so at most
    # `concurrency` requests run and no task is created per row.
    pending = iter(rows)

    async def worker() -> None:
        for row in pending:
            outcome = await _send(client, url, row, retry=retry, sleep=sleep)
            report.sent += 1
            if isinstance(outcome, Rejection):
                report.rejected.append(outcome)
            elif isinstance(outcome, Failure):
                report.failed.append(outcome)
            elif outcome == "created":
                report.created += 1
            else:
                report.unchanged += 1
            bar.update(1)

    started = time.monotonic()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(rows))):
                group.create_task(worker())
    finally:
        bar.close()
    _log.info(
        "importer.rows_imported",
        url=url,
        sent=report.sent,
        created=report.created,
        unchanged=report.unchanged,
        rejected=len(report.rejected),
        failed=len(report.failed),
        duration_s=round(time.monotonic() - started, 3),
    )

    return report


def _collection_url(base_url: str, collection: str) -> str:
    return f"{base_url.rstrip('/')}/{collection}"


async def import_northwind(
    data_dir: Path,
    *,
    pedidos_url: str,
    clientes_url: str,
    concurrency: int = 16,
    orders_first: bool = False,
    progress: bool = True,
    retry: RetryPolicy = DEFAULT_RETRY,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ImportReport:
    """Import customers and orders from the Northwind CSV files.

    Both files are parsed before anything is sent, so a missing column stops the run
    before the first request.

    Args:
        data_dir: Directory holding customers.csv, orders.csv and order_details.csv.
        pedidos_url: Base URL of the pedidos API, e.g. ``http://127.0.0.1:3000``.
        clientes_url: Base URL of the clientes API, e.g. ``http://127.0.0.1:3001``.
        concurrency: Requests in flight at once, per resource.
        orders_first: Send orders before customers, to exercise orders that reference a
            customer the system does not know yet.
        progress: Show progress bars when stderr is a terminal.
        retry: How to retry transport errors and 503 answers.
        transport: An alternative HTTP transport, e.g. ``httpx.MockTransport`` in tests.

    Returns:
        Local rejections followed by the outcome of every row sent.

    Raises:
        DataFileError: A file cannot be read or lacks a needed column.
        ValueError: ``concurrency`` is less than 1.
    """
    clientes, cliente_rejections = load_clientes(data_dir / "customers.csv")
    pedidos, pedido_rejections = load_pedidos(
        data_dir / "orders.csv", data_dir / "order_details.csv"
    )
    report = ImportReport(rejected=[*cliente_rejections, *pedido_rejections])

    batches: list[tuple[str, Sequence[ImportRow]]] = [
        (_collection_url(clientes_url, "clientes"), clientes),
        (_collection_url(pedidos_url, "pedidos"), pedidos),
    ]
    if orders_first:
        batches.reverse()
    async with httpx.AsyncClient(
        timeout=_REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=concurrency),
        transport=transport,
    ) as client:
        for url, rows in batches:
            outcome = await import_rows(
                client, url, rows, concurrency=concurrency, progress=progress, retry=retry
            )
            report = report.merge(outcome)

    return report


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _http_url(text: str) -> str:
    # Checked up front: a malformed URL would otherwise fail every row, one retry at a time.
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise argparse.ArgumentTypeError(f"invalid URL {text!r}: {exc}") from exc
    if url.scheme not in {"http", "https"} or not url.host:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL with a host, got {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasync.importer",
        description="Load the Northwind customers and orders through the REST APIs.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="directory with customers.csv, orders.csv and order_details.csv",
    )
    parser.add_argument("--pedidos-url", type=_http_url, default="http://127.0.0.1:3000")
    parser.add_argument("--clientes-url", type=_http_url, default="http://127.0.0.1:3001")
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=16,
        help="requests in flight at once (default: %(default)s)",
    )
    parser.add_argument("--orders-first", action="store_true", help="send orders before customers")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--rejections-file",
        type=Path,
        help="also write every rejected or failed row to this CSV file",
    )
    return parser


def _write_issues_csv(report: ImportReport, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("outcome", "kind", "id", "status", "source", "reason"))
        for rejection in report.rejected:
            writer.writerow(
                (
                    "rejected",
                    rejection.kind,
                    rejection.row_id,
                    rejection.status or "",
                    rejection.source or "",
                    rejection.reason,
                )
            )
        for failure in report.failed:
            writer.writerow(("failed", failure.kind, failure.row_id, "", "", failure.reason))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the import from the command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        0 when every row was created or unchanged, 1 when any row was rejected or failed,
        2 when the data files cannot be used or the rejections file cannot be written.
    """
    args = _parser().parse_args(argv)
    # Log lines go to stderr with the report, leaving stdout free; an application that
    # configured structlog already keeps its own setup.
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    try:
        report = asyncio.run(
            import_northwind(
                args.data_dir,
                pedidos_url=args.pedidos_url,
                clientes_url=args.clientes_url,
                concurrency=args.concurrency,
                orders_first=args.orders_first,
                progress=not args.no_progress,
            )
        )
    except DataFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(report.summary(), file=sys.stderr)
    for line in report.issues():
        print(line, file=sys.stderr)
    if args.rejections_file is not None:
        try:
            _write_issues_csv(report, args.rejections_file)
        except OSError as exc:
            print(f"error: cannot write {args.rejections_file}: {exc}", file=sys.stderr)
            return 2

    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
