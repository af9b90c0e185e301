"""The CRD in the chart agrees with the operator: names, enums and every status it writes.

The API server prunes status fields its schema does not declare, silently; validating each
status the operator builds against the schema catches that here. The `x-kubernetes-
validations` rules (CEL) need an API server to run; `ReprocessingSpec.from_resource`
enforces the same rules and is tested in test_crd.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from operador.crd import (
    GROUP,
    KIND,
    PLURAL,
    SERVICES,
    VERSION,
    ConditionType,
    Mode,
    Phase,
    StatusChange,
)

CRD = Path(__file__).resolve().parents[2] / "charts/data-sync/crds/reprocessings.datasync.io.yaml"
NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return loaded


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return found


def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A validator of `schema`; `x-kubernetes-*` keys are not JSON Schema and are ignored."""
    return jsonschema.Draft7Validator(schema)


def merged(status: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`status` after a JSON merge patch with `change` (None removes a field)."""
    result = dict(status)
    for key, value in change.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def test_the_crd_is_a_valid_custom_resource_definition(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.30", strict=True)


def test_the_crd_names_the_resource_the_operator_watches(crd: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert (crd["spec"]["names"]["kind"], crd["spec"]["names"]["plural"]) == (KIND, PLURAL)
    assert [version["name"] for version in crd["spec"]["versions"]] == [VERSION]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_the_enums_are_the_ones_the_operator_knows(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    status = schema["properties"]["status"]["properties"]
    condition = status["conditions"]["items"]["properties"]

    assert spec["service"]["enum"] == list(SERVICES)
    assert spec["mode"]["enum"] == [mode.value for mode in Mode]
    assert status["phase"]["enum"] == [phase.value for phase in Phase]
    assert condition["type"]["enum"] == [kind.value for kind in ConditionType]


def test_the_printer_columns_show_fields_the_schema_has(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]

    for column in columns:
        node = schema
        for part in column["jsonPath"].strip(".").split("."):
            if part in ("metadata", "creationTimestamp"):
                break
            node = node["properties"][part]
    assert [column["name"] for column in columns if not column.get("priority")] == [
        "Service",
        "Mode",
        "Phase",
        "Attempts",
        "Done",
        "Remaining",
        "Age",
    ]


def test_every_status_the_operator_writes_fits_the_schema(schema: dict[str, Any]) -> None:
    status_schema = validator(schema["properties"]["status"])
    later = NOW + dt.timedelta(minutes=1)
    status: dict[str, Any] = {}
    for step in [
        lambda change: change.blocked(reason="RebuildInProgress", message="m", retry_at=None),
        lambda change: change.waiting(reason="ServiceNotFound", message="m"),
        lambda change: change.started(job="views-1", attempt=1, max_attempts=3),
        lambda change: {"progress": {"done": 5, "remaining": 3, "ratePerSecond": 1.5}},
        lambda change: change.retrying(attempt=1, message="boom", retry_at=later),
        lambda change: change.blocked(reason="RebuildInProgress", message="m", retry_at=later),
        lambda change: change.started(job="views-2", attempt=2, max_attempts=3),
        lambda change: change.succeeded(job="views-2"),
        lambda change: change.failed(reason="JobFailed", message="boom"),
        lambda change: change.cancelled(),
    ]:
        status = merged(status, step(StatusChange(status, now=NOW)))

        status_schema.validate(status)


@pytest.mark.parametrize(
    "spec",
    [
        {"service": "reports", "mode": "rebuild"},
        {"service": "reports", "mode": "rebuild", "from": {"time": "2026-05-01T00:00:00Z"}},
        {"service": "reports", "mode": "rebuild", "restart": True, "maxAttempts": 1},
        {
            "service": "clientes",
            "mode": "replay",
            "group": "clientes-enriquecimento",
            "topics": ["pedidos"],
            "from": {"earliest": True},
        },
        {"service": "clientes", "mode": "redrive", "topics": ["pedidos"], "offsets": [4, 9]},
    ],
)
def test_a_well_formed_spec_is_accepted(schema: dict[str, Any], spec: dict[str, Any]) -> None:
    validator(schema).validate({"spec": spec})


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"mode": "rebuild"}, "'service' is a required property"),
        ({"service": "estoque", "mode": "rebuild"}, "'estoque' is not one of"),
        ({"service": "reports", "mode": "rebuild", "maxAttempts": 0}, "less than the minimum"),
        (
            {"service": "reports", "mode": "replay", "from": {"earliest": True, "offset": 1}},
            "has too many properties",
        ),
        ({"service": "reports", "mode": "replay", "group": ""}, "should be non-empty"),
        ({"service": "reports", "mode": "redrive", "topics": ["a b"]}, "does not match"),
    ],
)
def test_a_malformed_spec_is_refused(
    schema: dict[str, Any], spec: dict[str, Any], error: str
) -> None:
    with pytest.raises(jsonschema.ValidationError, match=error):
        validator(schema).validate({"spec": spec})
