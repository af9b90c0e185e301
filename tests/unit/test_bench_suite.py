"""How the benchmark suite reads a stage's rate off a draining count."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def suite() -> Iterator[ModuleType]:
    # The suite imports its sibling modules by name, as it does when run as a script.
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("suite")
    finally:
        sys.path.remove(str(BENCH))


def test_a_stage_rate_leaves_out_a_slow_start_and_a_partial_end(suite: ModuleType) -> None:
    # A backlog of 1,000 rows read every 20 ms: 10 rows a reading while the process warms
    # up, then 100, then two partial batches.
    moves = iter([0] * 3 + [10] * 10 + [100] * 8 + [60, 40] + [0] * 1000)
    count = 1_000

    def read_count() -> int:
        nonlocal count
        count -= next(moves)
        return count

    figures = suite.drain_rate(read_count, target=0)

    assert figures["moved"] == 1_000
    assert figures["reached_target"]
    # 100 rows a reading against 1,000 rows over 19 readings, whatever a reading takes.
    assert figures["per_s"] / figures["first_to_last_per_s"] == pytest.approx(1.9, rel=0.1)
