"""Unit tests of the Northwind CSV importer: parsing, valor arithmetic and the HTTP client.

The HTTP API is replaced by ``httpx.MockTransport``; these tests pin the client's behaviour
(retries, counting, reporting), not the services'.
"""

from __future__ import annotations

import asyncio
import csv
import decimal
import json
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from datasync import importer
from datasync.importer import (
    ClienteRow,
    DataFileError,
    ImportReport,
    ImportRow,
    PedidoRow,
    Rejection,
    RetryPolicy,
    encode_body,
    import_northwind,
    import_rows,
    load_clientes,
    load_pedidos,
    main,
)

CUSTOMER_COLUMNS = (
    "customer_id",
    "company_name",
    "contact_name",
    "city",
    "region",
    "postal_code",
    "country",
    "phone",
)
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "order_date",
    "required_date",
    "shipped_date",
    "ship_via",
    "freight",
    "ship_city",
    "ship_country",
)
DETAIL_COLUMNS = ("order_id", "product_id", "unit_price", "quantity", "discount")

PROBLEM_JSON = {"content-type": "application/problem+json"}
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.5, max_delay_s=5.0)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def customer(
    customer_id: str = "ALFKI",
    company_name: str = "Alfreds Futterkiste",
    *,
    city: str = "Berlin",
    country: str = "Germany",
) -> list[str]:
    return [customer_id, company_name, "Maria Anders", city, "", "12209", country, "030-0074321"]


def order(
    order_id: str = "10248", customer_id: str = "VINET", day: str = "1996-07-04"
) -> list[str]:
    shipping = ["1996-08-01", "1996-07-16", "3", "32.38", "Reims", "France"]
    return [order_id, customer_id, day, *shipping]


def line(order_id: str, unit_price: str, quantity: str, discount: str = "0") -> list[str]:
    return [order_id, "11", unit_price, quantity, discount]


def parse_pedidos(
    tmp_path: Path, orders: Sequence[Sequence[str]], lines: Sequence[Sequence[str]]
) -> tuple[list[PedidoRow], list[Rejection]]:
    return load_pedidos(
        write_csv(tmp_path / "orders.csv", ORDER_COLUMNS, orders),
        write_csv(tmp_path / "order_details.csv", DETAIL_COLUMNS, lines),
    )


def valor_of(tmp_path: Path, lines: Sequence[Sequence[str]]) -> Decimal:
    pedidos, rejections = parse_pedidos(tmp_path, [order("10248")], lines)
    assert rejections == []
    return pedidos[0].valor


Answer = httpx.Response | httpx.TransportError


@dataclass
class FakeApi:
    """Answers each POST from a per-id script, then with 201 once the script is spent."""

    script: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        answers = self.script.get(json.loads(request.content)["id"], [])
        answer = answers.pop(0) if answers else httpx.Response(201)
        if isinstance(answer, httpx.TransportError):
            raise answer
        return answer

    def ids_posted(self) -> list[str]:
        return [json.loads(call.content)["id"] for call in self.calls]


@dataclass
class FakeSleep:
    """Records the delays the importer asks for instead of waiting them out."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)


Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


async def post_all(
    handler: Handler,
    rows: Sequence[ImportRow],
    *,
    sleep: FakeSleep | None = None,
    concurrency: int = 4,
) -> ImportReport:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await import_rows(
            client,
            "http://127.0.0.1:3001/clientes",
            rows,
            concurrency=concurrency,
            progress=False,
            retry=FAST_RETRY,
            sleep=sleep or FakeSleep(),
        )


def cliente(row_id: str) -> ClienteRow:
    return ClienteRow(id=row_id, nome=f"Empresa {row_id}")


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    """``main`` configures structlog for the process; put the defaults back afterwards."""
    yield
    structlog.reset_defaults()


# --------------------------------------------------------------------------------------
# valor
# --------------------------------------------------------------------------------------


def test_valor_is_the_exact_sum_of_price_times_quantity_over_the_lines(tmp_path: Path) -> None:
    lines = [line("10248", "14", "12"), line("10248", "9.8", "10"), line("10248", "34.8", "5")]

    valor = valor_of(tmp_path, lines)

    assert valor == Decimal("440.00")
    assert str(valor) == "440.00"


def test_discounts_of_fifteen_and_five_percent_reduce_their_own_lines(tmp_path: Path) -> None:
    lines = [line("10248", "18", "10", "0.15"), line("10248", "20", "2", "0.05")]

    valor = valor_of(tmp_path, lines)

    assert valor == Decimal("191.00")


@pytest.mark.parametrize(
    ("unit_price", "quantity", "discount", "expected"),
    [
        # 29.925 exactly; half-even would give 29.92 and float arithmetic 29.92 too.
        pytest.param("10.5", "3", "0.05", "29.93", id="half-cent-after-discount"),
        # 1.045 exactly; as floats 1.1 * 0.95 is 1.04499..., which rounds down.
        pytest.param("1.1", "1", "0.05", "1.05", id="float-would-round-down"),
        pytest.param("0.125", "1", "0", "0.13", id="half-up-from-even-cent"),
        pytest.param("0.124", "1", "0", "0.12", id="below-half-rounds-down"),
        pytest.param("15.55", "7", "0.15", "92.52", id="below-half-after-discount"),
    ],
)
def test_valor_is_rounded_half_up_at_the_cent(
    tmp_path: Path, unit_price: str, quantity: str, discount: str, expected: str
) -> None:
    lines = [line("10248", unit_price, quantity, discount)]

    valor = valor_of(tmp_path, lines)

    assert str(valor) == expected


def test_valor_is_rounded_once_for_the_order_not_line_by_line(tmp_path: Path) -> None:
    lines = [line("10248", "0.005", "1"), line("10248", "0.005", "1")]

    valor = valor_of(tmp_path, lines)

    assert valor == Decimal("0.01")


def test_valor_does_not_depend_on_the_callers_decimal_context(tmp_path: Path) -> None:
    lines = [line("10248", "1234567.89", "3", "0.05")]

    with decimal.localcontext(prec=4, rounding=decimal.ROUND_DOWN):
        valor = valor_of(tmp_path, lines)

    assert str(valor) == "3518518.49"


# --------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------


def test_pedido_body_carries_valor_as_a_json_number_with_exact_digits(tmp_path: Path) -> None:
    pedidos, _ = parse_pedidos(tmp_path, [order("10248", "VINET")], [line("10248", "1234.5", "1")])

    body = encode_body(pedidos[0])

    assert body == (
        b'{"id":"10248","cliente-id":"VINET","data":"1996-07-04T00:00:00Z","valor":1234.50}'
    )
    assert json.loads(body, parse_float=Decimal)["valor"] == Decimal("1234.50")


def test_pedido_body_dates_the_order_at_midnight_utc_with_a_z_offset(tmp_path: Path) -> None:
    pedidos, _ = parse_pedidos(
        tmp_path, [order("10249", day="1996-07-05")], [line("10249", "1", "1")]
    )

    body = json.loads(encode_body(pedidos[0]))

    assert body["data"] == "1996-07-05T00:00:00Z"


def test_cliente_body_leaves_out_personal_data_and_empty_optional_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, [customer("ALFKI", city="")])
    clientes, _ = load_clientes(path)

    body = encode_body(clientes[0])

    assert json.loads(body) == {"id": "ALFKI", "nome": "Alfreds Futterkiste", "pais": "Germany"}
    assert b"Maria" not in body
    assert b"030" not in body


# --------------------------------------------------------------------------------------
# Local rejections
# --------------------------------------------------------------------------------------


def test_order_without_detail_lines_is_rejected_with_a_reason(tmp_path: Path) -> None:
    orders = [order("10248"), order("10249")]

    pedidos, rejections = parse_pedidos(tmp_path, orders, [line("10248", "14", "12")])

    assert [pedido.id for pedido in pedidos] == ["10248"]
    assert rejections == [
        Rejection("pedido", "10249", "no detail lines", source="orders.csv line 3")
    ]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        pytest.param(line("10249", "abc", "1"), "unit_price 'abc' is not a decimal", id="text"),
        pytest.param(line("10249", "NaN", "1"), "unit_price 'NaN' is not a decimal", id="nan"),
        pytest.param(line("10249", "1e3", "1"), "unit_price '1e3' is not a decimal", id="exp"),
        pytest.param(line("10249", "", "1"), "unit_price '' is not a decimal", id="empty"),
        pytest.param(line("10249", "-1", "1"), "unit_price -1 is negative", id="negative"),
        pytest.param(line("10249", "1", "2.5"), "quantity '2.5' is not a positive", id="frac"),
        pytest.param(line("10249", "1", "0"), "quantity '0' is not a positive", id="zero"),
        pytest.param(line("10249", "1", "1", "1.5"), "discount 1.5 is not between", id="disc"),
        pytest.param(["10249", "11", "1"], "expected 5 fields, found 3", id="short-row"),
    ],
)
def test_order_with_an_unparsable_line_is_rejected_and_the_others_are_kept(
    tmp_path: Path, bad_line: list[str], reason: str
) -> None:
    orders = [order("10248"), order("10249")]
    lines = [line("10248", "14", "12"), line("10249", "10", "1"), bad_line]

    pedidos, rejections = parse_pedidos(tmp_path, orders, lines)

    assert [pedido.id for pedido in pedidos] == ["10248"]
    assert [(r.row_id, r.source) for r in rejections] == [("10249", "orders.csv line 3")]
    assert rejections[0].detail.startswith("bad order line(s): order_details.csv line 4: ")
    assert reason in rejections[0].detail


@pytest.mark.parametrize(
    ("bad_order", "row_id", "reason"),
    [
        pytest.param(order(""), "", "missing order_id", id="no-id"),
        pytest.param(order("10249", ""), "10249", "missing customer_id", id="no-customer"),
        pytest.param(
            order("10249", day="04/07/1996"),
            "10249",
            "order_date '04/07/1996' is not a date like 1996-07-04",
            id="date-format",
        ),
        pytest.param(
            order("10249", day="1996-02-30"),
            "10249",
            "order_date '1996-02-30' is not a date like 1996-07-04",
            id="no-such-day",
        ),
        pytest.param(order("10249")[:4], "10249", "expected 9 fields, found 4", id="short-row"),
    ],
)
def test_order_row_that_cannot_be_parsed_is_rejected_with_its_line(
    tmp_path: Path, bad_order: list[str], row_id: str, reason: str
) -> None:
    orders = [order("10248"), bad_order]
    lines = [line("10248", "14", "12"), line("10249", "1", "1")]

    pedidos, rejections = parse_pedidos(tmp_path, orders, lines)

    assert [pedido.id for pedido in pedidos] == ["10248"]
    assert rejections[0] == Rejection("pedido", row_id, reason, source="orders.csv line 3")


def test_lines_of_an_order_missing_from_the_orders_file_are_rejected(tmp_path: Path) -> None:
    lines = [line("10248", "14", "12"), line("99999", "1", "1"), line("99999", "2", "1")]

    _, rejections = parse_pedidos(tmp_path, [order("10248")], lines)

    assert rejections == [
        Rejection(
            "pedido",
            "99999",
            "2 line(s) for an order missing from orders.csv",
            source="order_details.csv",
        )
    ]


def test_line_without_order_id_is_rejected(tmp_path: Path) -> None:
    lines = [line("10248", "14", "12"), line("", "1", "1")]

    _, rejections = parse_pedidos(tmp_path, [order("10248")], lines)

    assert rejections == [
        Rejection("pedido", "", "missing order_id", source="order_details.csv line 3")
    ]


def test_duplicate_order_id_is_rejected_and_the_first_row_kept(tmp_path: Path) -> None:
    orders = [order("10248", "VINET"), order("10248", "TOMSP")]

    pedidos, rejections = parse_pedidos(tmp_path, orders, [line("10248", "14", "12")])

    assert [pedido.cliente_id for pedido in pedidos] == ["VINET"]
    assert rejections == [
        Rejection(
            "pedido", "10248", "duplicate id, first seen on line 2", source="orders.csv line 3"
        )
    ]


def test_customer_rows_that_cannot_be_parsed_are_rejected_with_their_line(
    tmp_path: Path,
) -> None:
    rows = [customer("ALFKI"), customer(""), customer("ANATR", ""), customer("ALFKI"), ["X"]]
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, rows)

    clientes, rejections = load_clientes(path)

    assert [cliente.id for cliente in clientes] == ["ALFKI"]
    assert [(r.row_id, r.detail, r.source) for r in rejections] == [
        ("", "missing customer_id", "customers.csv line 3"),
        ("ANATR", "missing company_name", "customers.csv line 4"),
        ("ALFKI", "duplicate id, first seen on line 2", "customers.csv line 5"),
        ("X", "expected 8 fields, found 1", "customers.csv line 6"),
    ]


def test_file_without_a_needed_column_cannot_be_imported(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", ("customer_id", "city"), [["ALFKI", "Berlin"]])

    with pytest.raises(DataFileError, match=r"customers.csv: missing column\(s\) company_name"):
        load_clientes(path)


def test_file_that_is_not_utf8_cannot_be_imported(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(",".join(CUSTOMER_COLUMNS).encode() + b"\nALFKI,M\xe9xico\n")

    with pytest.raises(DataFileError, match=r"customers.csv: not UTF-8 text"):
        load_clientes(path)


# --------------------------------------------------------------------------------------
# import_rows against a fake API
# --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_created_and_unchanged_rows_are_counted_apart() -> None:
    api = FakeApi({"ANATR": [httpx.Response(200)]})

    report = await post_all(api.handle, [cliente("ALFKI"), cliente("ANATR")])

    assert (report.sent, report.created, report.unchanged) == (2, 1, 1)
    assert report.ok


@pytest.mark.asyncio
async def test_rows_are_posted_as_json_to_the_collection_url() -> None:
    api = FakeApi()

    await post_all(api.handle, [cliente("ALFKI")])

    request = api.calls[0]
    assert (request.method, str(request.url)) == ("POST", "http://127.0.0.1:3001/clientes")
    assert request.headers["content-type"] == "application/json"
    assert request.content == b'{"id":"ALFKI","nome":"Empresa ALFKI"}'


@pytest.mark.asyncio
async def test_api_rejection_keeps_status_detail_and_invalid_params_and_is_not_retried() -> None:
    problem = {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "Validation failed",
        "invalid-params": [{"name": "nome", "reason": "must not be empty"}],
    }
    answer = httpx.Response(422, json=problem, headers=PROBLEM_JSON)
    api = FakeApi({"ALFKI": [answer]})

    report = await post_all(api.handle, [cliente("ALFKI")])

    assert report.rejected == [
        Rejection(
            "cliente",
            "ALFKI",
            "Validation failed",
            status=422,
            invalid_params=(("nome", "must not be empty"),),
        )
    ]
    assert report.rejected[0].reason == "HTTP 422: Validation failed (nome: must not be empty)"
    assert (report.sent, report.created, len(api.calls)) == (1, 0, 1)


@pytest.mark.asyncio
async def test_rejection_without_problem_body_quotes_the_body() -> None:
    api = FakeApi({"ALFKI": [httpx.Response(409, text="already taken")]})

    report = await post_all(api.handle, [cliente("ALFKI")])

    assert report.rejected[0].reason == "HTTP 409: already taken"


@pytest.mark.asyncio
async def test_503_is_retried_after_the_delay_the_server_asks_for() -> None:
    api = FakeApi({"ALFKI": [httpx.Response(503, headers={"retry-after": "2"})]})
    sleep = FakeSleep()

    with capture_logs() as logs:
        report = await post_all(api.handle, [cliente("ALFKI")], sleep=sleep)

    assert (report.created, api.ids_posted()) == (1, ["ALFKI", "ALFKI"])
    assert sleep.delays == [2.0]
    retries = [log for log in logs if log["event"] == "importer.retry_scheduled"]
    assert retries == [
        {
            "event": "importer.retry_scheduled",
            "log_level": "warning",
            "kind": "cliente",
            "row_id": "ALFKI",
            "attempt": 1,
            "max_attempts": 3,
            "delay_s": 2.0,
            "cause": "HTTP 503",
        }
    ]


@pytest.mark.asyncio
async def test_retry_after_longer_than_the_policy_allows_is_shortened() -> None:
    api = FakeApi({"ALFKI": [httpx.Response(503, headers={"retry-after": "3600"})]})
    sleep = FakeSleep()

    await post_all(api.handle, [cliente("ALFKI")], sleep=sleep)

    assert sleep.delays == [FAST_RETRY.max_delay_s]


@pytest.mark.asyncio
async def test_retry_after_as_a_past_http_date_retries_at_once() -> None:
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    api = FakeApi({"ALFKI": [httpx.Response(503, headers={"retry-after": past})]})
    sleep = FakeSleep()

    await post_all(api.handle, [cliente("ALFKI")], sleep=sleep)

    assert sleep.delays == [0.0]


@pytest.mark.asyncio
async def test_transport_error_is_retried_with_backoff() -> None:
    api = FakeApi({"ALFKI": [httpx.ConnectError("connection refused")]})
    sleep = FakeSleep()

    report = await post_all(api.handle, [cliente("ALFKI")], sleep=sleep)

    assert (report.sent, report.created, len(api.calls)) == (1, 1, 2)
    # Half the base delay is fixed and half is jitter.
    assert FAST_RETRY.base_delay_s / 2 <= sleep.delays[0] <= FAST_RETRY.base_delay_s


@pytest.mark.asyncio
async def test_row_that_keeps_failing_is_reported_failed_after_the_last_attempt() -> None:
    api = FakeApi({"ALFKI": [httpx.Response(503)] * 5})
    sleep = FakeSleep()

    with capture_logs() as logs:
        report = await post_all(api.handle, [cliente("ALFKI"), cliente("ANATR")], sleep=sleep)

    assert (report.sent, report.created) == (2, 1)
    assert [(f.row_id, f.reason, f.attempts) for f in report.failed] == [("ALFKI", "HTTP 503", 3)]
    assert len(sleep.delays) == 2
    assert [log["event"] for log in logs if log["log_level"] == "error"] == ["importer.row_failed"]


@pytest.mark.asyncio
async def test_server_error_other_than_503_fails_the_row_without_retry() -> None:
    answer = httpx.Response(500, json={"title": "Internal Server Error", "status": 500})
    api = FakeApi({"ALFKI": [answer]})

    report = await post_all(api.handle, [cliente("ALFKI")])

    assert [(f.reason, f.attempts) for f in report.failed] == [
        ("HTTP 500: Internal Server Error", 1)
    ]
    assert len(api.calls) == 1


@pytest.mark.asyncio
async def test_requests_in_flight_never_exceed_the_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def slow_api(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        # Yield to the event loop a few times so that other workers get to start.
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(201)

    report = await post_all(slow_api, [cliente(str(n)) for n in range(10)], concurrency=3)

    assert (report.sent, report.created, peak) == (10, 10, 3)


@pytest.mark.asyncio
async def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        await post_all(FakeApi().handle, [cliente("ALFKI")], concurrency=0)


# --------------------------------------------------------------------------------------
# import_northwind
# --------------------------------------------------------------------------------------


def northwind(tmp_path: Path) -> Path:
    write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, [customer("VINET", "Vins")])
    write_csv(tmp_path / "orders.csv", ORDER_COLUMNS, [order("10248"), order("10249")])
    write_csv(tmp_path / "order_details.csv", DETAIL_COLUMNS, [line("10248", "14", "12")])
    return tmp_path


@pytest.mark.parametrize(
    ("orders_first", "paths"),
    [
        pytest.param(False, ["/clientes", "/pedidos"], id="customers-first"),
        pytest.param(True, ["/pedidos", "/clientes"], id="orders-first"),
    ],
)
@pytest.mark.asyncio
async def test_import_northwind_sends_each_resource_to_its_api_in_the_chosen_order(
    tmp_path: Path, orders_first: bool, paths: list[str]
) -> None:
    api = FakeApi()

    report = await import_northwind(
        northwind(tmp_path),
        pedidos_url="http://127.0.0.1:3000",
        clientes_url="http://127.0.0.1:3001/",
        orders_first=orders_first,
        progress=False,
        transport=httpx.MockTransport(api.handle),
    )

    hosts = {call.url.path: call.url.port for call in api.calls}
    assert hosts == {"/clientes": 3001, "/pedidos": 3000}
    assert [call.url.path for call in api.calls] == paths
    assert (report.sent, report.created) == (2, 2)
    assert [(r.row_id, r.detail) for r in report.rejected] == [("10249", "no detail lines")]
    assert not report.ok


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_structlog")
def test_main_lists_rejected_rows_on_stderr_and_exits_with_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    async def fake_import(data_dir: Path, **options: object) -> ImportReport:
        seen.update(options, data_dir=data_dir)
        rejection = Rejection("pedido", "10249", "no detail lines", source="orders.csv line 3")
        return ImportReport(sent=1, created=1, rejected=[rejection])

    monkeypatch.setattr(importer, "import_northwind", fake_import)
    rejections_file = tmp_path / "rejected.csv"
    argv = ["--data-dir", str(tmp_path), "--orders-first", "--no-progress", "--concurrency", "3"]

    code = main([*argv, "--rejections-file", str(rejections_file)])

    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "2 rows read, 1 sent: 1 created, 0 unchanged, 1 rejected (1 locally), 0 failed",
        "rejected pedido 10249 (orders.csv line 3): no detail lines",
    ]
    assert seen == {
        "data_dir": tmp_path,
        "pedidos_url": "http://127.0.0.1:3000",
        "clientes_url": "http://127.0.0.1:3001",
        "concurrency": 3,
        "orders_first": True,
        "progress": False,
    }
    with rejections_file.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["outcome", "kind", "id", "status", "source", "reason"],
            ["rejected", "pedido", "10249", "", "orders.csv line 3", "no detail lines"],
        ]


@pytest.mark.usefixtures("restore_structlog")
def test_main_exits_with_0_when_every_row_was_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fake_import(data_dir: Path, **options: object) -> ImportReport:
        return ImportReport(sent=3, created=2, unchanged=1)

    monkeypatch.setattr(importer, "import_northwind", fake_import)

    code = main(["--data-dir", str(tmp_path)])

    assert code == 0
    assert capsys.readouterr().err == (
        "3 rows read, 3 sent: 2 created, 1 unchanged, 0 rejected (0 locally), 0 failed\n"
    )


@pytest.mark.usefixtures("restore_structlog")
def test_main_exits_with_2_when_the_data_files_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path / "nowhere"), "--no-progress"])

    assert code == 2
    assert "customers.csv: cannot read (No such file or directory)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--concurrency", "0"], id="zero-concurrency"),
        pytest.param(["--pedidos-url", "ftp://127.0.0.1"], id="not-http"),
        pytest.param(["--clientes-url", "127.0.0.1:3001"], id="no-scheme"),
    ],
)
def test_main_refuses_bad_options_before_reading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", str(tmp_path), *argv])

    assert exited.value.code == 2
    assert "error: argument" in capsys.readouterr().err
