"""REST adapter of monitoramento (Litestar)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Response, get
from litestar.params import QueryParameter

from monitoramento.ports import StatusHistory


def status_handlers(
    *,
    current_status: Callable[[], Awaitable[dict[str, Any]]],
    history: StatusHistory,
) -> list[Any]:
    @get(
        "/status",
        tags=["status"],
        summary="Health of every service, Kafka, the databases, lag and outbox backlog",
        description="200 when everything is healthy; 503 with the degraded parts named.",
    )
    async def status() -> Response[dict[str, Any]]:
        document = await current_status()
        return Response(document, status_code=200 if document["status"] == "ok" else 503)

    @get("/status/historico", tags=["status"], summary="The most recent status snapshots")
    async def historico(
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 20,
    ) -> list[dict[str, Any]]:
        return list(await history.latest(limit))

    return [status, historico]
