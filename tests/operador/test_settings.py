"""The operator's settings, read from the environment like every other process's."""

from __future__ import annotations

import logging

import kopf
import pytest

from datasync.settings import AppEnv, SettingsError, read_group
from operador.handlers import OperatorSettings, WatchSettings, kopf_settings


def test_the_defaults_find_api_deployments_by_the_recommended_labels() -> None:
    settings = read_group(OperatorSettings, {}, AppEnv.PROD)

    assert settings.api_labels("reports") == {
        "app.kubernetes.io/name": "reports",
        "app.kubernetes.io/component": "api",
    }
    assert settings.job_relabel() == {"app.kubernetes.io/component": "reprocessing"}


def test_a_chart_names_its_own_labels_and_release() -> None:
    env = {
        "OPERATOR_SERVICE_LABEL": "data-sync/service",
        "OPERATOR_PROCESS_LABEL": "data-sync/process",
        "OPERATOR_SELECTOR": "app.kubernetes.io/instance=prod, app.kubernetes.io/name=data-sync",
    }

    settings = read_group(OperatorSettings, env, AppEnv.PROD)

    assert settings.api_labels("clientes") == {
        "app.kubernetes.io/instance": "prod",
        "app.kubernetes.io/name": "data-sync",
        "data-sync/service": "clientes",
        "data-sync/process": "api",
    }


def test_a_malformed_selector_stops_start_up_naming_the_item() -> None:
    with pytest.raises(SettingsError, match="selector item 'release' is not key=value"):
        read_group(OperatorSettings, {"OPERATOR_SELECTOR": "release"}, AppEnv.PROD)


def test_the_namespace_to_watch_is_required() -> None:
    with pytest.raises(SettingsError, match="WATCH_NAMESPACE is required"):
        read_group(WatchSettings, {}, AppEnv.PROD)


def test_kopf_keeps_to_its_namespace_and_its_own_annotations() -> None:
    settings = kopf_settings()

    assert settings.scanning.disabled is True
    assert settings.peering.standalone is True
    assert settings.persistence.finalizer == "datasync.io/reprocessing-operator"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.posting.level == logging.WARNING
