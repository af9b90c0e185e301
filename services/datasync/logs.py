"""Structured logging: every line is an event name plus key/values.

Context such as the request id, topic, partition and offset is bound with
`structlog.contextvars` for the duration of one request or one record and cleared after, so
every line written meanwhile carries it. Library loggers (uvicorn, aiokafka, SQLAlchemy) go
through the same renderer, so the output has one format.

Our own lines take structlog's native path: a level below the configured one is a no-op
method, and a line is an event dict handed to a queue, with no standard-library record on
the way. A thread of its own renders the queued lines and writes them in batches, so the
event loop neither renders nor waits on a slow disk (the one PostgreSQL flushes its WAL to,
on a laptop), and a busy process makes one write for many lines. The queue is drained when
the process exits.
"""

from __future__ import annotations

import atexit
import contextvars
import datetime as dt
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from datasync.settings import LogSettings

WRITE_PAUSE_S = 0.005
"""How long the writer lets lines gather after a write. Lines reach the file at most this
much later; in return a process logging a thousand lines a second wakes the writer two
hundred times, not a thousand, each time for one system call."""


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
    renderer: Processor
    if json_output:
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    # The console renderer lays out tracebacks itself; JSON needs them as text first.
    exceptions: list[Processor] = [structlog.processors.format_exc_info] if json_output else []
    level = logging.getLevelName(settings.level.upper())

    # Everything that depends on the caller (its context, its exception, the time) is
    # taken where the line is logged; rendering waits for the writer thread.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            _capture_exc_info,
            _to_writer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_queued_logger,
        # Not cached, so a reconfiguration (tests capturing logs, a second composition root
        # in one process) reaches loggers that were already used; it costs microseconds.
        cache_logger_on_first_use=False,
    )
    library_formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _merge_queued_context,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _record_time,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exceptions,
            renderer,
        ],
    )
    handler = _WRITER.start(
        sys.stderr, render=_chain([*exceptions, renderer]), format_library=library_formatter.format
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

    # Access logs are replaced by our own request summary line; aiokafka's INFO lines about
    # every (re)join are noise at the default level.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # While a broker is down the client retries every few hundred milliseconds and logs
    # each failure; once every ten seconds says the same, and our own events say what the
    # service does about it.
    handler.addFilter(RepeatFilter(prefix="aiokafka", window_s=10.0))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


REQUEST_ID_KEY = "request_id"
"""The log context key of the request a line was written for."""


def background_context() -> contextvars.Context:
    """The current context without the request's id, for a task that a request starts but
    that outlives it and serves others (a shared writer, a client's connection tasks): its
    lines must not carry the id of whichever request happened to start it."""
    context = contextvars.copy_context()
    context.run(structlog.contextvars.unbind_contextvars, REQUEST_ID_KEY)
    return context


_JSON = msgspec.json.Encoder(enc_hook=repr)


def _json_line(event_dict: EventDict, **_: Any) -> str:
    # Values msgspec has no encoding for (an exception, a path) are written as their repr.
    return _JSON.encode(event_dict).decode()


def _chain(processors: list[Processor]) -> Callable[[EventDict], str]:
    def render(event_dict: EventDict) -> str:
        result: Any = event_dict
        for processor in processors:
            result = processor(None, "", result)
        return str(result)

    return render


def _capture_exc_info(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    # `exc_info=True` means the exception being handled, which only the logging thread knows.
    if event_dict.get("exc_info") is True:
        event_dict["exc_info"] = sys.exc_info()
    return event_dict


def _to_writer(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> tuple[tuple[EventDict], dict[str, Any]]:
    return (event_dict,), {}


class _QueuedLogger:
    """What structlog's bound loggers write to: every method queues the event dict."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, event_dict: EventDict) -> None:
        _WRITER.put(event_dict)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _queued_logger(*args: Any) -> _QueuedLogger:
    # `structlog.get_logger(name)` passes the name on; a logger got without one has none.
    return _QueuedLogger(str(args[0]) if args else "")


_CONTEXT_ATTRIBUTE = "datasync_context"


class _LibraryHandler(logging.Handler):
    """Queues the standard library's records, with the caller's context variables."""

    def emit(self, record: logging.LogRecord) -> None:
        setattr(record, _CONTEXT_ATTRIBUTE, structlog.contextvars.get_contextvars())
        _WRITER.put(record)


def _merge_queued_context(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    record = event_dict.get("_record")
    context = getattr(record, _CONTEXT_ATTRIBUTE, None) or {}
    return {**context, **event_dict}


def _record_time(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    created = record.created if record is not None else time.time()
    moment = dt.datetime.fromtimestamp(created, dt.UTC).isoformat()
    event_dict["timestamp"] = moment.replace("+00:00", "Z")
    return event_dict


_STOP = object()


class _LogWriter:
    """The thread that renders and writes every line of the process, in the order queued."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(
        self,
        stream: TextIO,
        *,
        render: Callable[[EventDict], str],
        format_library: Callable[[logging.LogRecord], str],
    ) -> logging.Handler:
        """Starts (again, after a reconfiguration) writing to `stream`; returns the handler
        that queues the standard library's records."""
        self.stop()
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._write_all,
            args=(self._queue, stream, render, format_library),
            name="log-writer",
            daemon=True,
        )
        self._thread.start()
        return _LibraryHandler()

    def put(self, item: EventDict | logging.LogRecord) -> None:
        self._queue.put(item)

    def stop(self) -> None:
        """Writes what is queued, then ends the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    @staticmethod
    def _write_all(
        lines: queue.SimpleQueue[Any],
        stream: TextIO,
        render: Callable[[EventDict], str],
        format_library: Callable[[logging.LogRecord], str],
    ) -> None:
        while True:
            batch = [lines.get()]
            while True:
                try:
                    batch.append(lines.get_nowait())
                except queue.Empty:
                    break
            text = []
            for item in batch:
                if item is _STOP:
                    continue
                try:
                    rendered = (
                        format_library(item)
                        if isinstance(item, logging.LogRecord)
                        else render(item)
                    )
                except Exception as error:  # noqa: BLE001 - one bad value must not end logging
                    rendered = f"unrenderable log line: {error!r}"
                text.append(rendered + "\n")
            try:
                stream.write("".join(text))
                stream.flush()
            except (OSError, ValueError):
                pass  # the stream is gone (closed pipe, closed file): nowhere left to write
            if _STOP in batch:
                return
            time.sleep(WRITE_PAUSE_S)


_WRITER = _LogWriter()
atexit.register(_WRITER.stop)
