"""The Kubernetes API over HTTP, as far as the operator uses it beyond kopf.

kopf keeps its own connection to watch `Reprocessing` resources and patch their status. The
operator's other calls (Jobs, their pods and logs, the services' Deployments) go through
`KubernetesApi`, with the same credentials kopf logs in with. Errors of the API or of the
transport become `KubernetesApiError`, which says whether trying again can help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx
import kopf

Manifest = dict[str, Any]
Connect = Callable[[], kopf.ConnectionInfo]
"""Returns where the API is and how to authenticate; called again when a token expired."""

RETRIABLE_STATUSES: Final = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Answers that may differ on the next try. A 409 to a change is an optimistic-concurrency
conflict; a 409 to a creation (the name is taken) has its own error."""


class KubernetesApiError(Exception):
    """A call to the Kubernetes API failed.

    Attributes:
        status: the HTTP status, or None when no answer came (connection, timeout).
        retriable: whether the same call may succeed later.
    """

    def __init__(self, message: str, *, status: int | None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def retriable(self) -> bool:
        return self.status is None or self.status in RETRIABLE_STATUSES


class NotFoundError(KubernetesApiError):
    """The object, or its namespace, does not exist."""


class AlreadyExistsError(KubernetesApiError):
    """An object of that name exists already."""

    @property
    def retriable(self) -> bool:
        return False


def default_connection() -> kopf.ConnectionInfo:
    """The pod's service account in a cluster, else the current context of a kubeconfig.

    Raises:
        kopf.LoginError: neither exists.
    """
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig to log in with")
    return info


def namespaced(
    namespace: str, plural: str, name: str | None = None, *, group: str = "", version: str = "v1"
) -> str:
    """The path of a namespaced collection or of one object in it (`group` "" is core)."""
    prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return path if name is None else f"{path}/{name}"


def has_labels(item: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    found = item.get("metadata", {}).get("labels") or {}
    return all(found.get(key) == value for key, value in labels.items())


class KubernetesApi:
    """A small async client of the Kubernetes API.

    Args:
        connect: where the API is and the credentials to use; called on first use, and once
            more when the API answers 401 (a service account token is rotated hourly).
        timeout_s: upper bound of one call, so a stuck API server turns into a retry.
    """

    def __init__(self, connect: Connect, *, timeout_s: float = 10.0) -> None:
        self._connect = connect
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
        info = self._connect()
        return httpx.AsyncClient(
            base_url=info.server,
            headers={"Accept": "application/json", **info.as_http_headers()},
            verify=info.as_ssl_context(),
            timeout=self._timeout_s,
            trust_env=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        for renewed in (False, True):
            if self._client is None:
                self._client = self._open()
            try:
                response = await self._client.request(method, path, params=params, json=body)
            except httpx.HTTPError as error:
                message = f"{method} {path} got no answer: {error!r}"
                raise KubernetesApiError(message, status=None) from error
            if response.status_code == 401 and not renewed:
                await self.close()
                continue
            if response.is_success:
                return response
            raise _error(method, path, response)
        raise AssertionError("unreachable: the second pass returns or raises")

    async def get(self, path: str) -> Manifest:
        response = await self._request("GET", path)
        result: Manifest = response.json()
        return result

    async def list(self, path: str, *, labels: Mapping[str, str] | None = None) -> list[Manifest]:
        """The items of a collection, those with all of `labels` if given."""
        params = None
        if labels:
            params = {"labelSelector": ",".join(f"{key}={value}" for key, value in labels.items())}
        response = await self._request("GET", path, params=params)
        items: list[Manifest] = response.json().get("items") or []
        return [item for item in items if has_labels(item, labels or {})]

    async def create(self, path: str, body: Mapping[str, Any]) -> Manifest:
        response = await self._request("POST", path, body=body)
        result: Manifest = response.json()
        return result

    async def delete(self, path: str, *, propagation: str = "Background") -> None:
        """Deletes an object; with Background propagation its dependents go right after."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        await self._request("DELETE", path, body=body)

    async def text(self, path: str, *, params: Mapping[str, str] | None = None) -> str:
        """A plain-text answer, such as a container's log."""
        response = await self._request("GET", path, params=params)
        return response.text


def _error(method: str, path: str, response: httpx.Response) -> KubernetesApiError:
    reason = ""
    detail = response.text[:300]
    try:
        status = response.json()
    except ValueError:
        status = None
    if isinstance(status, dict):
        reason = str(status.get("reason") or "")
        detail = str(status.get("message") or detail)
    message = f"{method} {path} answered {response.status_code}: {detail}"
    code = response.status_code
    if code == 404:
        return NotFoundError(message, status=code, reason=reason)
    if code == 409 and method == "POST":
        return AlreadyExistsError(message, status=code, reason=reason)
    return KubernetesApiError(message, status=code, reason=reason)
