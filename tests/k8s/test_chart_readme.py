"""The values table of charts/data-sync/README.md documents every value, and its default
and per-environment columns say what the values files really hold."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from tests.k8s.conftest import CHART, ENVIRONMENTS

pytestmark = pytest.mark.k8s

ROW = re.compile(r"^\| `([^`]+)` \| (.*?) \| (.*?) \| (.*?) \| (.*?) \| .*\|$")
NOT_IN_VALUES = "—"
MISSING = object()


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Values as Helm merges them: maps key by key, anything else replaced."""
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def lookup(values: dict[str, Any], key: str) -> Any:
    found: Any = values
    for part in key.split("."):
        if not isinstance(found, dict) or part not in found:
            return MISSING
        found = found[part]
    return found


def leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(leaf_keys(value, f"{path}."))
        else:
            keys.append(path)
    return keys


def covers(documented: str, key: str) -> bool:
    """Whether a documented key (maybe with <placeholder> parts) is the key or a parent."""
    pattern = re.sub(r"<[^>]+>", "[^.]+", re.escape(documented))
    return re.fullmatch(rf"{pattern}(\..+)?", key) is not None


@pytest.fixture(scope="module")
def table() -> dict[str, list[str]]:
    rows = {}
    for line in (CHART / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.groups()[1:]]
    return rows


def cell_value(cell: str) -> Any:
    return yaml.safe_load(cell.strip("`"))


def test_every_value_is_documented(table: dict[str, list[str]]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    undocumented = [k for k in leaf_keys(values) if not any(covers(d, k) for d in table)]

    assert not undocumented


def test_the_table_shows_the_defaults_and_each_environment(table: dict[str, list[str]]) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    environments = {
        name: merged(defaults, yaml.safe_load((CHART / f"values-{name}.yaml").read_text()))
        for name in ENVIRONMENTS
    }

    for key, (default, *per_environment) in table.items():
        if default == NOT_IN_VALUES:
            continue
        expected = lookup(defaults, key)

        assert cell_value(default) == expected, key
        for name, cell in zip(ENVIRONMENTS, per_environment, strict=True):
            actual = lookup(environments[name], key)

            assert (cell_value(cell) if cell else expected) == actual, f"{key} in {name}"
