"""HTTP machinery shared by the services' REST adapters.

Every error leaves as `application/problem+json` (RFC 9457) from one mapping in this module,
with `invalid-params` naming each field at fault. Request bodies are decoded here with
msgspec straight from the bytes, so a JSON number becomes a `Decimal` without passing
through a float.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec
import structlog
from litestar import Litestar, Request, Response, get
from litestar.config.response_cache import ResponseCacheConfig
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody
from litestar.openapi.spec import Schema as OpenAPISchema
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from datasync import metrics
from datasync.db import DatabaseUnavailableError, is_connection_error
from datasync.events import KEY_PATTERN
from datasync.logs import REQUEST_ID_KEY

log = structlog.get_logger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
REQUEST_ID_HEADER: Final = "x-request-id"
RETRY_AFTER_S: Final = 1
"""Retry-After sent with 503: a database restart takes about a second."""

_FIELD_IN_MESSAGE: Final = re.compile(r" - at `\$\.?([^`]*)`$")
_FIELD_IN_BACKTICKS: Final = re.compile(r"field `([^`]*)`")
_SAFE_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class InvalidParam(msgspec.Struct, frozen=True):
    name: str
    reason: str


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="kebab"):
    """An RFC 9457 problem body."""

    title: str
    status: int
    detail: str | None = None
    type: str = "about:blank"
    invalid_params: list[InvalidParam] = msgspec.field(default_factory=list)


class ProblemError(Exception):
    """Raised by adapters to answer with a problem; mapped to a response in one place."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        detail: str | None = None,
        invalid_params: Sequence[InvalidParam] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(
            title=title, status=status, detail=detail, invalid_params=list(invalid_params)
        )
        self.headers = dict(headers or {})


def invalid(field_name: str, reason: str, *, status: int = 422) -> ProblemError:
    """A problem about one field."""
    return ProblemError(
        status,
        "Invalid request",
        detail=f"{field_name}: {reason}",
        invalid_params=[InvalidParam(field_name, reason)],
    )


def conflict(field_name: str, detail: str) -> ProblemError:
    """A 409: the value of `field_name` is taken by a resource with other content."""
    return ProblemError(
        409,
        "Conflict",
        detail=detail,
        invalid_params=[InvalidParam(field_name, "taken, by a resource with other content")],
    )


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


T = TypeVar("T")


async def decode_json_body(request: Request[Any, Any, Any], decoder: msgspec.json.Decoder[T]) -> T:
    """Decodes a JSON request body into a Struct, or raises the problem that says why not."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ProblemError(
            415,
            "Unsupported media type",
            detail="send the body as application/json",
            invalid_params=[InvalidParam("content-type", f"{media_type or 'missing'}")],
        )

    charset = _charset(request.headers.get("content-type", ""))
    if charset not in (None, "utf-8", "utf8"):
        raise ProblemError(
            415,
            "Unsupported media type",
            detail="JSON bodies are read as UTF-8",
            invalid_params=[InvalidParam("content-type", f"charset {charset}")],
        )

    body = await request.body()
    try:
        return decoder.decode(body)
    except RecursionError as error:
        raise ProblemError(
            400,
            "Malformed JSON",
            detail="the body is nested too deeply",
            invalid_params=[InvalidParam("body", "nested too deeply")],
        ) from error
    except msgspec.ValidationError as error:
        field_name, reason = _field_of(str(error))
        raise invalid(field_name, reason) from error
    except msgspec.DecodeError as error:
        raise ProblemError(
            400,
            "Malformed JSON",
            detail=str(error),
            invalid_params=[InvalidParam("body", str(error))],
        ) from error


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _field_of(message: str) -> tuple[str, str]:
    """The field a msgspec validation message is about, and the message without it.

    msgspec says "... - at `$.valor`" for a bad value, and names the key in backticks for a
    missing or unknown field at the top level.
    """
    located = _FIELD_IN_MESSAGE.search(message)
    if located:
        path = located.group(1)
        parent, _, _ = message.partition(" - at ")
        if path and (named := _FIELD_IN_BACKTICKS.search(parent)) and "field" in parent:
            return f"{path}.{named.group(1)}", parent
        return path or "body", parent
    named = _FIELD_IN_BACKTICKS.search(message)
    if named and "field" in message:
        return named.group(1), message
    return "body", message


# --- cursors -------------------------------------------------------------------------------


def encode_cursor(last_key: str) -> str:
    """An opaque cursor that resumes a listing after `last_key`."""
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor resumes after, or a 400 problem naming `cursor`."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise invalid("cursor", "not a cursor returned by this API", status=400) from error
    if not KEY_PATTERN.fullmatch(key):
        raise invalid("cursor", "not a cursor returned by this API", status=400)
    return key


def require_key(value: str, *, what: str) -> None:
    """Answers 404 at once for a path id that no record can have (a NUL byte, a slash...),
    instead of asking the database about it."""
    if not KEY_PATTERN.fullmatch(value):
        raise ProblemError(404, "Not found", detail=f"{what} {value!r} does not exist")


def valid_filter(value: str | None, *, name: str) -> str | None:
    """A query filter that must have the shape of an id, or a 400 problem naming it."""
    if value is not None and not KEY_PATTERN.fullmatch(value):
        raise invalid(name, "must be 1 to 64 letters, digits, '.', '_' or '-'", status=400)
    return value


class Page(msgspec.Struct, frozen=True, kw_only=True, rename="kebab"):
    """One page of a listing; `next-cursor` is absent on the last page."""

    items: list[Any]
    next_cursor: str | None = None


# --- error mapping -------------------------------------------------------------------------


def _problem_error_handler(_: Request[Any, Any, Any], error: ProblemError) -> Response[Any]:
    return problem_response(error.problem, error.headers)


def _validation_handler(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    items = error.extra if isinstance(error.extra, list) else []
    params = [
        InvalidParam(str(item.get("key", "")), str(item.get("message", "")))
        for item in items
        if isinstance(item, dict)
    ]
    if not params and error.detail:
        # Litestar names a missing parameter only in its message: "Missing required query
        # parameter 'de' for path /reports/vendas-diarias".
        missing = re.search(r"parameter '([^']+)'", error.detail)
        params = [InvalidParam(missing.group(1) if missing else "request", error.detail)]
    detail = "; ".join(f"{param.name}: {param.reason}" for param in params) or error.detail
    return problem_response(
        Problem(title="Invalid request", status=400, detail=detail, invalid_params=params)
    )


def _http_error_handler(_: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    params = [InvalidParam("body", error.detail)] if error.status_code == 413 else []
    return problem_response(
        Problem(
            title=_title(error.status_code),
            status=error.status_code,
            detail=error.detail,
            invalid_params=params,
        ),
        error.headers,
    )


def _unexpected_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    if isinstance(error, DatabaseUnavailableError) or is_connection_error(error):
        log.warning(
            "http.database_unavailable",
            error=str(error),
            next_step="answered 503; the client may retry",
        )
        return problem_response(
            Problem(
                title="Service unavailable",
                status=503,
                detail="the database is not reachable right now; retry shortly",
            ),
            {"retry-after": str(RETRY_AFTER_S)},
        )
    log.error("http.unexpected_error", path=request.url.path, exc_info=error)
    return problem_response(Problem(title="Internal server error", status=500))


def _title(status: int) -> str:
    titles = {
        400: "Bad request",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        413: "Request body too large",
        415: "Unsupported media type",
        503: "Service unavailable",
    }
    return titles.get(status, "Error")


# --- request context, metrics and the summary log line -------------------------------------


class RequestContextMiddleware(ASGIMiddleware):
    """Binds a request id to the logs, counts the request and writes one summary line."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] != ScopeType.HTTP:
            await next_app(scope, receive, send)
            return

        incoming = _header(scope, REQUEST_ID_HEADER)
        trusted = incoming is not None and _SAFE_REQUEST_ID.match(incoming) is not None
        request_id = incoming if trusted and incoming else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(**{REQUEST_ID_KEY: request_id})
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            duration_s = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = str(scope.get("method", ""))
            status = status_holder["status"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(duration_s)
            if not route.startswith(("/health", "/metrics")):
                log.info(
                    "http.request_handled",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(duration_s * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars(REQUEST_ID_KEY)


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    """The id bound to this request by the middleware."""
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


# --- health and metrics --------------------------------------------------------------------

ReadinessCheck = Callable[[], Awaitable[Mapping[str, Any]]]
"""Returns details to show; raises (any exception) when the dependency is not ready."""


@dataclass(frozen=True)
class Readiness:
    """The checks `/health/ready` runs, each by name."""

    checks: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    timeout_s: float = 2.0

    async def evaluate(self) -> tuple[bool, dict[str, Any]]:
        async def run(name: str, check: ReadinessCheck) -> tuple[str, dict[str, Any]]:
            try:
                details = await asyncio.wait_for(check(), timeout=self.timeout_s)
                return name, {"ok": True, **details}
            except Exception as error:  # noqa: BLE001 - any failure means "not ready"
                return name, {"ok": False, "error": str(error) or type(error).__name__}

        results = await asyncio.gather(*(run(n, c) for n, c in self.checks.items()))
        report = dict(results)
        return all(item["ok"] for item in report.values()), report


def ops_handlers(readiness: Readiness) -> list[Any]:
    """`/health/live`, `/health/ready` and `/metrics`, for every process."""

    @get("/health/live", tags=["operations"], summary="The process is up", sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "live"}

    @get("/health/ready", tags=["operations"], summary="Database, Kafka and schema are ready")
    async def ready() -> Response[Any]:
        ok, report = await readiness.evaluate()
        body = {"status": "ready" if ok else "not-ready", "checks": report}
        return Response(content=body, status_code=200 if ok else 503)

    @get("/metrics", tags=["operations"], summary="Prometheus metrics", sync_to_thread=False)
    def prometheus_metrics() -> Response[bytes]:
        # The framework appends the charset itself; the exposition format's own type
        # already names one, which would make it appear twice.
        media_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
        return Response(content=generate_latest(), media_type=media_type)

    return [live, ready, prometheus_metrics]


def json_body_operation(schema: type[msgspec.Struct], *, description: str) -> type[Operation]:
    """An OpenAPI operation class that documents a JSON body we decode ourselves."""
    component = msgspec.json.schema(schema)
    request_schema = OpenAPISchema(**_openapi_schema_kwargs(component))

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=request_schema)},
                description=description,
                required=True,
            )

    return BodyOperation


def _openapi_schema_kwargs(json_schema: dict[str, Any]) -> dict[str, Any]:
    definitions = json_schema.get("$defs", {})
    root = json_schema
    if "$ref" in root:
        root = definitions[root["$ref"].rsplit("/", 1)[-1]]

    def convert(node: dict[str, Any]) -> OpenAPISchema:
        if "$ref" in node:
            return convert(definitions[node["$ref"].rsplit("/", 1)[-1]])
        if "anyOf" in node:
            return OpenAPISchema(one_of=[convert(option) for option in node["anyOf"]])
        return OpenAPISchema(**_plain_kwargs(node, convert))

    return _plain_kwargs(root, convert)


def _plain_kwargs(
    node: dict[str, Any], convert: Callable[[dict[str, Any]], OpenAPISchema]
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if "type" in node:
        kwargs["type"] = OpenAPIType(node["type"])
    if "properties" in node:
        kwargs["properties"] = {name: convert(sub) for name, sub in node["properties"].items()}
    for key, target in (
        ("required", "required"),
        ("description", "description"),
        ("title", "title"),
        ("pattern", "pattern"),
        ("minLength", "min_length"),
        ("maxLength", "max_length"),
        ("format", "format"),
        ("examples", "examples"),
        ("exclusiveMinimum", "exclusive_minimum"),
        ("exclusiveMaximum", "exclusive_maximum"),
    ):
        if key in node:
            kwargs[target] = node[key]
    return kwargs


def create_app(
    *,
    title: str,
    route_handlers: Sequence[Any],
    readiness: Readiness,
    max_body_bytes: int,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    state: Mapping[str, Any] | None = None,
) -> Litestar:
    """A Litestar app with the shared error mapping, middleware, ops endpoints and OpenAPI
    document (`/schema`, interactive pages at `/schema/swagger` and `/schema/scalar`)."""
    return Litestar(
        route_handlers=[*route_handlers, *ops_handlers(readiness)],
        exception_handlers={
            ProblemError: _problem_error_handler,
            ValidationException: _validation_handler,
            HTTPException: _http_error_handler,
            Exception: _unexpected_error_handler,
        },
        middleware=[RequestContextMiddleware()],
        openapi_config=OpenAPIConfig(
            title=title,
            version="1",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), ScalarRenderPlugin()],
        ),
        request_max_body_size=max_body_bytes,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        state=State(dict(state or {})),
        response_cache_config=ResponseCacheConfig(),
        debug=False,
        # Logging is configured once per process by datasync.logs, not by the framework.
        logging_config=None,
    )
