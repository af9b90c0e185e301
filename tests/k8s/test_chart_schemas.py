"""The chart lints, and everything it renders matches the schema of its kind.

Core Kubernetes objects are checked by kubernetes-validate in strict mode (no property the
API would silently drop). The operators' objects are checked against the JSON schemas of
their CRDs in ../shared/k8s-schemas, read from there, never copied.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.k8s.conftest import (
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    REPO,
    Manifest,
    run_helm,
)

pytestmark = pytest.mark.k8s

CRD_SCHEMAS = REPO.parent / "shared" / "k8s-schemas"
OPERATOR_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io", "monitoring.coreos.com")


def is_operator_object(manifest: Manifest) -> bool:
    return str(manifest["apiVersion"]).split("/")[0] in OPERATOR_GROUPS


def describe(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    group, version = api_version.split("/")
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    schema: dict[str, Any] = json.loads(path.read_text())

    # Not checked against the meta-schema: some CRD patterns use Go's regex syntax, such as
    # a (?i) flag after ^, which Python's re refuses although our objects never reach them.
    return jsonschema.Draft202012Validator(schema)


def test_chart_lints_without_warnings(helm: str, environment: str) -> None:
    run_helm(
        helm,
        "lint",
        "--strict",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--values",
        str(CHART / f"values-{environment}.yaml"),
    )


def test_core_objects_match_the_kubernetes_schema(manifests: list[Manifest]) -> None:
    errors = []
    for manifest in manifests:
        if is_operator_object(manifest):
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            errors.append(f"{describe(manifest)}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{describe(manifest)}: {error.message}")

    assert not errors, "\n".join(errors)


def test_operator_objects_match_their_crd_schema(manifests: list[Manifest]) -> None:
    if not CRD_SCHEMAS.is_dir():
        pytest.skip(f"the CRD schemas are not at {CRD_SCHEMAS} (../shared/k8s-schemas)")
    errors = []
    for manifest in filter(is_operator_object, manifests):
        try:
            validator = crd_validator(manifest["apiVersion"], manifest["kind"])
        except FileNotFoundError as error:
            errors.append(f"{describe(manifest)}: no schema at {error.filename}")
            continue
        errors.extend(
            f"{describe(manifest)}: {'.'.join(map(str, error.path))}: {error.message}"
            for error in validator.iter_errors(manifest)
        )

    assert not errors, "\n".join(errors)


def test_the_chart_renders_operator_objects_of_each_operator(manifests: list[Manifest]) -> None:
    groups = {str(m["apiVersion"]).split("/")[0] for m in filter(is_operator_object, manifests)}

    assert groups == set(OPERATOR_GROUPS)
