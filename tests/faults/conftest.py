"""Options of the fault-injection suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-faults",
        action="store_true",
        help="also run the slow fault scenarios (PostgreSQL and Kafka outages, scaling)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--all-faults"):
        return
    skip = pytest.mark.skip(reason="a slow fault scenario: run it with --all-faults")
    for item in items:
        if "slow_fault" in item.keywords:
            item.add_marker(skip)
