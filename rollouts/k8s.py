"""The one module that talks to Kubernetes, through the official client.

Every function takes an ApiClient made by `client_from_kubeconfig` and returns
plain dicts (the objects exactly as the API server sent them). Failures come
out as one vocabulary, so callers decide retries without knowing HTTP:

    TemporaryK8sError   unreachable, timed out, 429 or 5xx: try again later
    PermanentK8sError   the server refused (401, 403, 404, 409, 422…): the same
                        request gives the same answer; `.status` is the code
      NotFoundError     404
      GoneError         410: the resourceVersion is too old, list again

Objects are addressed as the API server does, by group, version and plural
(no discovery: callers know their kinds), so core objects (group "") and
custom resources go through the same paths.
"""

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

# The failure vocabulary lives apart so that code which only catches it
# (tasks, the member agent) does not import the client.
from rollouts.k8s_errors import (  # noqa: F401  (re-exported: callers write k8s.GoneError)
    GoneError,
    K8sError,
    NotFoundError,
    PermanentK8sError,
    TemporaryK8sError,
)
from rollouts.kubeconfig import kubeconfig_parse

FIELD_MANAGER = "fleetui"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
LIST_PAGE_SIZE = 500
CONNECTION_POOL_SIZE = 32

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


# Building a client -------------------------------------------------------------


def client_from_kubeconfig(kubeconfig: str, context: str = "") -> k8s_client.ApiClient:
    """An ApiClient for one context of a kubeconfig given as text.

    The text passes rollouts.kubeconfig's allowlist first, so a kubeconfig
    stored before that check existed still runs no program and reads no file
    here. Raises PermanentK8sError (KubeconfigRefused) for text that is not a
    usable kubeconfig. The message never quotes the text: it holds credentials."""
    config_dict = kubeconfig_parse(kubeconfig, context)
    configuration = k8s_client.Configuration()
    # One connection per open watch stream: a hub sync holds about a dozen.
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    try:
        return k8s_config.new_client_from_config_dict(config_dict, context=context or None, persist_config=False,
                                                      client_configuration=configuration)
    except (k8s_config.ConfigException, KeyError, TypeError, ValueError) as exc:
        raise PermanentK8sError(f"the kubeconfig cannot be used: {_first_line(exc)}") from None


# Paths and requests ------------------------------------------------------------


def resource_path(group: str, version: str, plural: str, namespace: str | None = None,
                  name: str | None = None, subresource: str | None = None) -> str:
    """`/api/v1/...` for the core group, `/apis/<group>/<version>/...` otherwise."""
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    if subresource:
        path += f"/{subresource}"
    return path


# `Bearer <token>` / `Basic <credentials>` as an Authorization header carries
# them; an exception that quotes a header (http.client's "Invalid header
# value", a server echoing the request) must not carry them into a log.
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[^\s'\"\\,;)]+")


def scrub(text: str) -> str:
    """`text` with every Authorization credential replaced by [redacted]."""
    return _CREDENTIAL.sub(lambda match: f"{match.group(1)} [redacted]", text)


def _first_line(exc: BaseException) -> str:
    text = scrub(str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _network_reason(exc: BaseException) -> str:
    """The innermost cause of a network failure, without urllib3's wrapping."""
    reason = getattr(exc, "reason", None) or exc  # MaxRetryError keeps the cause here
    if isinstance(reason, urllib3.exceptions.ProtocolError) and len(reason.args) > 1:
        reason = reason.args[1]
    text = _first_line(reason) if isinstance(reason, BaseException) else scrub(str(reason))
    return text.split("new connection: ", 1)[-1]


def _status_message(exc: ApiException) -> str:
    """The Status message the API server sent, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return scrub(str(body["message"]))
    return scrub(str(exc.reason or "no message"))


def error_from(exc: ApiException, what: str) -> K8sError:
    """Map an ApiException to the vocabulary; `what` says what was attempted."""
    status = exc.status or 0
    message = f"{what}: {_status_message(exc)} (HTTP {status})" if status else f"{what}: {_first_line(exc)}"
    if status == 404:
        return NotFoundError(message, status=status)
    if status == 410:
        return GoneError(message, status=status)
    if status == 429 or status >= 500:
        return TemporaryK8sError(message, status=status)
    # 0 is the client's own TLS failure (a wrong CA): a configuration problem.
    return PermanentK8sError(message, status=status)


def _send(client, method: str, path: str, *, query: list | None = None, body=None,
          content_type: str | None = None, read_timeout: float = READ_TIMEOUT):
    """Send one request; returns the client's RESTResponse (body not read)."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        method, url, headers, body, _ = client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"])
        return client.call_api(method, url, header_params=headers, body=body,
                               _request_timeout=(CONNECT_TIMEOUT, read_timeout))
    except ApiException as exc:
        raise error_from(exc, f"{method} {path}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TemporaryK8sError(f"{method} {path}: cannot reach the API server ({_network_reason(exc)})") from None
    except ValueError as exc:  # http.client refuses a header value (a credential with a line break)
        raise PermanentK8sError(f"{method} {path}: the request could not be sent ({_first_line(exc)})") from None


def _call(client, method: str, path: str, **kwargs) -> dict:
    """Send one request and return its JSON body as a dict."""
    response = _send(client, method, path, **kwargs)
    try:
        response.read()
        return client.response_deserialize(response, {"2XX": "object"}).data or {}
    except ApiException as exc:
        raise error_from(exc, f"{method} {path}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TemporaryK8sError(f"{method} {path}: the connection broke ({_network_reason(exc)})") from None
    except ValueError:
        raise TemporaryK8sError(f"{method} {path}: the answer is not JSON") from None


# Reading -----------------------------------------------------------------------


def list_objects(client, group: str, version: str, plural: str, namespace: str | None = None, *,
                 label_selector: str = "") -> tuple[list[dict], str]:
    """Every object of a kind (in one namespace, or in all when None), page by
    page, and the list's resourceVersion to watch from. Items get their
    apiVersion and kind filled in (core lists leave them out)."""
    path = resource_path(group, version, plural, namespace)
    items, token = [], ""
    while True:
        query = [("limit", str(LIST_PAGE_SIZE))]
        query += [("labelSelector", label_selector)] if label_selector else []
        query += [("continue", token)] if token else []
        page = _call(client, "GET", path, query=query)
        items.extend(page.get("items") or [])
        meta = page.get("metadata") or {}
        token = meta.get("continue") or ""
        if not token:
            break
    api_version = f"{group}/{version}" if group else version
    kind = (page.get("kind") or "").removesuffix("List")
    for item in items:
        item.setdefault("apiVersion", api_version)
        if kind:
            item.setdefault("kind", kind)
    return items, str(meta.get("resourceVersion") or "")


def watch_objects(client, group: str, version: str, plural: str, namespace: str | None = None, *,
                  resource_version: str, timeout_seconds: int = 60, on_open=None) -> "WatchStream":
    """A watch of every change after `resource_version`. Iterating it opens
    the stream and yields (type, object): ADDED, MODIFIED, DELETED and
    BOOKMARK (an object carrying only a newer resourceVersion). Iteration
    ends when the server ends the stream (its timeout, a restart) or when
    another thread calls close(); the caller then watches again from the last
    resourceVersion it saw. Raises GoneError when that version is too old
    (list again), TemporaryK8sError when the connection breaks mid-stream.
    `on_open()`, when given, is called once the server has accepted the watch."""
    path = resource_path(group, version, plural, namespace)
    query = [("watch", "true"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
             ("timeoutSeconds", str(int(timeout_seconds)))]
    return WatchStream(client, path, query, read_timeout=timeout_seconds + READ_TIMEOUT, on_open=on_open)


class WatchStream:
    """One watch request; see watch_objects."""

    def __init__(self, client, path: str, query: list, *, read_timeout: float, on_open=None):
        self.client, self.path, self.query, self.read_timeout = client, path, query, read_timeout
        self.on_open = on_open
        self._stream = None
        self._closed = False

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        if self._closed:
            return
        response = _send(self.client, "GET", self.path, query=self.query, read_timeout=self.read_timeout)
        if not 200 <= response.status <= 299:
            _call_failed(self.client, response, f"GET {self.path}")
        self._stream = response.response
        try:
            if self.on_open:
                self.on_open()
            if self._closed:
                return
            for line in iter_resp_lines(self._stream):
                if line.strip():
                    yield _watch_event(line, self.path)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if not self._closed:
                raise TemporaryK8sError(f"watch {self.path}: the stream broke ({_network_reason(exc)})") from None
        finally:
            self._stream.close()

    def close(self) -> None:
        """End the stream now, from any thread: a blocked read returns."""
        self._closed = True
        stream = self._stream
        if stream is not None:
            try:
                stream.shutdown()
            except (ValueError, RuntimeError, OSError):
                pass  # already closed or released


def _call_failed(client, response, what: str):
    response.read()
    try:
        client.response_deserialize(response, {"2XX": "object"})
    except ApiException as exc:
        raise error_from(exc, what) from None
    raise TemporaryK8sError(f"{what}: unexpected answer (HTTP {response.status})", status=response.status)


def _watch_event(line: str, path: str) -> tuple[str, dict]:
    try:
        event = json.loads(line)
    except ValueError:
        raise TemporaryK8sError(f"watch {path}: the server sent a line that is not JSON") from None
    kind, obj = event.get("type", ""), event.get("object") or {}
    if kind == "ERROR":
        # The API server reports a too-old resourceVersion inside the stream.
        code = int(obj.get("code") or 500)
        raise error_from(ApiException(status=code, reason=obj.get("reason"), body=json.dumps(obj)),
                         f"watch {path}")
    return kind, obj


def get_object(client, group: str, version: str, plural: str, name: str, namespace: str | None = None) -> dict:
    """One object; NotFoundError when it does not exist."""
    return _call(client, "GET", resource_path(group, version, plural, namespace, name))


def get_object_by_manifest(client, manifest: dict, *, plural: str, namespaced: bool) -> dict | None:
    """The live object a manifest names, or None when it does not exist."""
    group, version, namespace, name = manifest_address(manifest, namespaced=namespaced)
    try:
        return get_object(client, group, version, plural, name, namespace)
    except NotFoundError:
        return None


def manifest_address(manifest: dict, *, namespaced: bool) -> tuple[str, str, str | None, str]:
    """(group, version, namespace or None, name) of a manifest."""
    group, _, version = (manifest.get("apiVersion") or "").rpartition("/")
    meta = manifest.get("metadata") or {}
    namespace = (meta.get("namespace") or "default") if namespaced else None
    return group, version, namespace, meta.get("name") or ""


# Writing -----------------------------------------------------------------------


def patch_status_merge(client, group: str, version: str, plural: str, name: str, body: dict,
                       namespace: str | None = None) -> dict:
    """A JSON merge patch (RFC 7386) of the `status` subresource, as
    `kubectl patch --type=merge --subresource=status` sends it. A merge patch
    replaces lists whole: send every condition the list should keep."""
    path = resource_path(group, version, plural, namespace, name, "status")
    return _call(client, "PATCH", path, body=body, content_type=MERGE_PATCH)


def patch_spec_merge(client, group: str, version: str, plural: str, name: str, body: dict,
                     namespace: str | None = None) -> dict:
    """A JSON merge patch of the object itself (spec and metadata)."""
    path = resource_path(group, version, plural, namespace, name)
    return _call(client, "PATCH", path, body=body, content_type=MERGE_PATCH)


def server_side_apply(client, manifest: dict, *, plural: str, namespaced: bool,
                      field_manager: str = FIELD_MANAGER, force: bool = False, dry_run: bool = False) -> dict:
    """Create or update the object the manifest describes by server-side
    apply: the fields in `manifest` become owned by `field_manager`, fields it
    owned before and left out are removed. With force, fields another manager
    owns are taken over instead of failing with 409. With dry_run the server
    answers what the object would be and changes nothing (`dryRun=All`)."""
    group, version, namespace, name = manifest_address(manifest, namespaced=namespaced)
    path = resource_path(group, version, plural, namespace, name)
    query = ([("fieldManager", field_manager)] + ([("force", "true")] if force else [])
             + ([("dryRun", "All")] if dry_run else []))
    return _call(client, "PATCH", path, query=query, body=manifest, content_type=APPLY_PATCH)


def delete_object(client, group: str, version: str, plural: str, name: str, namespace: str | None = None, *,
                  uid: str = "", propagation: str = "Background") -> bool:
    """Delete one object (its dependents by the garbage collector). With `uid`
    only that incarnation is deleted (409 if the name now holds another).
    Returns False when it was already gone."""
    body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
    if uid:
        body["preconditions"] = {"uid": uid}
    try:
        _call(client, "DELETE", resource_path(group, version, plural, namespace, name), body=body)
    except NotFoundError:
        return False
    return True
