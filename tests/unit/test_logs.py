"""Log lines are written by a thread of their own, with the context of where they were
logged, and nothing queued is lost when the writer stops."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from datasync import logs
from datasync.settings import LogSettings


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "service.log"
    with path.open("w", encoding="utf-8") as out:
        monkeypatch.setattr(sys, "stderr", out)
        logs.configure_logging(LogSettings(level="info", format="json"), service="pedidos")
        yield path
        logs._WRITER.stop()
    monkeypatch.undo()
    # Later tests build service kits that configure logging again; until then, keep a writer.
    logs.configure_logging(LogSettings(level="info", format="json"), service="tests")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_our_lines_and_library_lines_carry_the_request_context(log_file: Path) -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1")
    structlog.get_logger("datasync.test").info("test.event", answer=42)
    logging.getLogger("some.library").warning("library says %s", "hello")
    structlog.contextvars.unbind_contextvars("request_id")
    logs._WRITER.stop()

    ours, library = lines(log_file)

    assert ours["event"] == "test.event"
    assert ours["answer"] == 42
    assert ours["request_id"] == "r-1"
    assert ours["service"] == "pedidos"
    assert library["event"] == "library says hello"
    assert library["request_id"] == "r-1"
    assert library["level"] == "warning"


def test_every_queued_line_is_written_when_the_writer_stops(log_file: Path) -> None:
    log = structlog.get_logger("datasync.test")

    for number in range(2_000):
        log.info("test.burst", number=number)
    logs._WRITER.stop()

    assert [line["number"] for line in lines(log_file)] == list(range(2_000))


def test_lines_below_the_level_are_dropped(log_file: Path) -> None:
    structlog.get_logger("datasync.test").debug("test.hidden")
    logging.getLogger("some.library").debug("hidden too")
    logs._WRITER.stop()

    assert lines(log_file) == []


def test_an_exception_is_written_with_its_traceback_from_the_writer_thread(
    log_file: Path,
) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("datasync.test").exception("test.failed")
        logging.getLogger("some.library").exception("library failed")
    logs._WRITER.stop()

    ours, library = lines(log_file)

    assert ours["level"] == "error"
    assert "ValueError: boom" in ours["exception"]
    assert "ValueError: boom" in library["exception"]


def test_a_value_without_a_json_form_is_written_as_its_repr(log_file: Path) -> None:
    structlog.get_logger("datasync.test").info("test.odd_value", where=Path("spool"))
    logs._WRITER.stop()

    assert lines(log_file)[0]["where"] == repr(Path("spool"))
