"""`python -m operador`: the reprocessing operator, for one namespace.

Reads `WATCH_NAMESPACE`, the `OPERATOR_*` and `LOG_*` settings, logs in with the pod's
service account (or a kubeconfig, outside a cluster) and runs kopf until SIGTERM. A missing
or malformed setting exits with 78 (EX_CONFIG) and a message naming the variable.
"""

import logging
import sys

import kopf

from datasync.logs import configure_logging
from datasync.settings import (
    LogSettings,
    SettingsError,
    read_app_env,
    read_environment,
    read_group,
)
from operador.handlers import OperatorSettings, WatchSettings, build_registry, kopf_settings
from operador.kube import KubernetesApi, default_connection

EX_CONFIG = 78


def health_endpoint(settings: OperatorSettings) -> str:
    """kopf's liveness endpoint, answering both probe paths of the chart's pods.

    kopf serves the endpoint's path as an aiohttp route, so a route pattern answers
    `/health/live` and `/health/ready` alike: 200 once kopf has started, with the results
    of the probe handlers (there are none).
    """
    return f"http://{settings.health_host}:{settings.health_port}/health/{{probe:live|ready}}"


def main() -> int:
    env = read_environment()
    try:
        app_env = read_app_env(env)
        settings = read_group(OperatorSettings, env, app_env)
        watch = read_group(WatchSettings, env, app_env)
        log_settings = read_group(LogSettings, env, app_env)
    except SettingsError as error:
        sys.stderr.write(f"configuration error: {error}\n")
        return EX_CONFIG

    configure_logging(log_settings, service="operador")
    # httpx logs every API call at INFO (three per running Job every few seconds), aiohttp
    # every probe: both would drown what the operator does.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    api = KubernetesApi(default_connection)
    kopf.run(
        registry=build_registry(api=api, settings=settings, connect=default_connection),
        settings=kopf_settings(),
        namespaces=[watch.watch_namespace],
        standalone=True,
        liveness_endpoint=health_endpoint(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
