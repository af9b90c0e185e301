"""Structured logging: every line is an event name plus key/values.

Context such as the request id, topic, partition and offset is bound with
`structlog.contextvars` for the duration of one request or one record and cleared after, so
every line written meanwhile carries it. Library loggers (uvicorn, aiokafka, SQLAlchemy) go
through the same processors, so the output has one format.

Lines are rendered and written by a thread of their own: the event loop only queues the
record, so a slow disk (the one PostgreSQL flushes its WAL to, on a laptop) never stalls
requests. The queue is drained when the process exits.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

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
            structlog.contextvars.merge_contextvars,
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
        # Library records are formatted in the writer thread, where the request's context
        # variables are not set: the context captured when they were queued is merged.
        foreign_pre_chain=[_merge_queued_context, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [_WRITER.start(handler)]
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


_CONTEXT_ATTRIBUTE = "datasync_context"


class _ContextQueueHandler(logging.handlers.QueueHandler):
    """Queues records as they are, with the caller's context variables: the formatter in
    the writer thread renders them, where the standard handler would render them here."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        setattr(record, _CONTEXT_ATTRIBUTE, structlog.contextvars.get_contextvars())
        return record


def _merge_queued_context(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    record = event_dict.get("_record")
    context = getattr(record, _CONTEXT_ATTRIBUTE, None) or {}
    return {**context, **event_dict}


class _LogWriter:
    """The thread that renders and writes every record of the process, one at a time."""

    def __init__(self) -> None:
        self._listener: logging.handlers.QueueListener | None = None

    def start(self, handler: logging.Handler) -> logging.Handler:
        """Starts (again, after a reconfiguration) writing through `handler`; returns the
        handler that feeds it."""
        self.stop()
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(
            records, handler, respect_handler_level=True
        )
        self._listener.start()
        return _ContextQueueHandler(records)

    def stop(self) -> None:
        """Writes what is queued, then ends the thread."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()


_WRITER = _LogWriter()
atexit.register(_WRITER.stop)
