"""Structured logging: every line is an event name plus key/values.

Context such as the request id, topic, partition and offset is bound with
`structlog.contextvars` for the duration of one request or one record and cleared after, so
every line written meanwhile carries it. Library loggers (uvicorn, aiokafka, SQLAlchemy) go
through the same processors, so the output has one format.
"""

from __future__ import annotations

import logging
import sys
import time

import structlog

from datasync.settings import LogSettings


class RepeatFilter(logging.Filter):
    """Lets one record per message template through every `window_s` seconds, for the
    loggers under `prefix`; other loggers pass untouched."""

    def __init__(self, *, prefix: str, window_s: float) -> None:
        super().__init__()
        self._prefix = prefix
        self._window_s = window_s
        self._last_seen: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last_seen.get(key, -self._window_s) < self._window_s:
            return False
        self._last_seen[key] = now
        return True


def configure_logging(settings: LogSettings, *, service: str) -> None:
    """Configures structlog and the standard library logging for one process."""
    json_output = settings.format == "json" or (
        settings.format == "auto" and not sys.stderr.isatty()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.typing.Processor
    if json_output:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    structlog.configure(
        # Level first: a debug line below the configured level costs a comparison, not the
        # whole chain (time stamp, context, rendering) before logging drops it.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so a reconfiguration (tests capturing logs, a second composition root
        # in one process) reaches loggers that were already used; it costs microseconds.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())

    # Access logs are replaced by our own request summary line; aiokafka's INFO lines about
    # every (re)join are noise at the default level.
    logging.getLogger("uvicorn.access").disabled = True
    kafka_client = logging.getLogger("aiokafka")
    kafka_client.setLevel(logging.WARNING)
    # While a broker is down the client retries every few hundred milliseconds and logs
    # each failure; once every ten seconds says the same, and our own events say what the
    # service does about it.
    handler.addFilter(RepeatFilter(prefix="aiokafka", window_s=10.0))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
