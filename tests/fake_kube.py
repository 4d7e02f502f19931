"""A small fake Kubernetes API server on loopback, for the real `kubernetes` client.

It serves what Fleet UI's adapter (rollouts/k8s.py) uses, over plain HTTP on
127.0.0.1 and an ephemeral port:

    GET    .../<plural>                     list (labelSelector, limit/continue), with resourceVersion
    GET    .../<plural>?watch=true&resourceVersion=N
                                            a chunked stream of JSON lines, replaying
                                            every change after N, then live ones
    GET    .../<plural>/<name>              get
    POST   .../<plural>                     create
    PATCH  .../<plural>/<name>[/status]     merge patch (application/merge-patch+json)
    PATCH  .../<plural>/<name>?fieldManager=m
                                            server-side apply (application/apply-patch+yaml)
    DELETE .../<plural>/<name>              delete (uid precondition)

Tests drive the "cluster" directly (put, delete, compact, break_watches,
go_down) and read `requests` to assert exactly what the client sent. Fault
injection: `fail(403, method="PATCH", path_contains="/status")` answers the
next matching request with that code.

No discovery, no defaulting, no admission: a resource is served once it is
registered with `serve` (the fleet and common core kinds are by default).
"""

import copy
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

FLEET = "placement.kubernetes-fleet.io"
CLUSTER = "cluster.kubernetes-fleet.io"

DEFAULT_RESOURCES = [
    # group, version, plural, kind, namespaced
    (FLEET, "v1beta1", "clusterstagedupdateruns", "ClusterStagedUpdateRun", False),
    (FLEET, "v1beta1", "stagedupdateruns", "StagedUpdateRun", True),
    (FLEET, "v1beta1", "clusterstagedupdatestrategies", "ClusterStagedUpdateStrategy", False),
    (FLEET, "v1beta1", "stagedupdatestrategies", "StagedUpdateStrategy", True),
    (FLEET, "v1beta1", "clusterapprovalrequests", "ClusterApprovalRequest", False),
    (FLEET, "v1beta1", "approvalrequests", "ApprovalRequest", True),
    (FLEET, "v1beta1", "clusterresourceplacements", "ClusterResourcePlacement", False),
    (FLEET, "v1beta1", "resourceplacements", "ResourcePlacement", True),
    (FLEET, "v1beta1", "clusterresourcesnapshots", "ClusterResourceSnapshot", False),
    (FLEET, "v1beta1", "resourcesnapshots", "ResourceSnapshot", True),
    (FLEET, "v1beta1", "clusterschedulingpolicysnapshots", "ClusterSchedulingPolicySnapshot", False),
    (FLEET, "v1beta1", "schedulingpolicysnapshots", "SchedulingPolicySnapshot", True),
    (CLUSTER, "v1beta1", "memberclusters", "MemberCluster", False),
    ("", "v1", "namespaces", "Namespace", False),
    ("", "v1", "configmaps", "ConfigMap", True),
    ("", "v1", "secrets", "Secret", True),
    ("", "v1", "services", "Service", True),
    ("apps", "v1", "deployments", "Deployment", True),
    ("apps", "v1", "statefulsets", "StatefulSet", True),
    ("apps", "v1", "daemonsets", "DaemonSet", True),
    ("batch", "v1", "jobs", "Job", True),
]


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict
    content_type: str
    body: object
    authorization: str = ""


@dataclass
class _Failure:
    status: int
    method: str | None
    path_contains: str
    times: int
    message: str
    reason: str


@dataclass
class _Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass
class _Event:
    rv: int
    key: tuple  # (group, plural)
    namespace: str
    type: str
    obj: dict = field(repr=False)


def status_body(code: int, message: str, reason: str = "") -> dict:
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
               410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
               500: "InternalError", 503: "ServiceUnavailable"}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason or reasons.get(code, "Unknown"), "code": code}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKube:
    """The fake API server. Use as a context manager (or start()/stop())."""

    def __init__(self, token: str = "fake-token"):
        self.token = token
        self.resources: dict[tuple, _Resource] = {}
        self.objects: dict[tuple, dict] = {}  # (group, plural, namespace, name) -> object
        self.events: list[_Event] = []
        self.requests: list[Request] = []
        self.rv = 100
        self.compacted_rv = 0  # a watch from an older resourceVersion gets 410
        self.down = False
        self._failures: list[_Failure] = []
        self._break = 0  # bumped by break_watches(); open streams end
        self._break_abruptly = False
        self._cond = threading.Condition()
        self._server = None
        self._thread = None
        for spec in DEFAULT_RESOURCES:
            self.serve(*spec)

    # Lifecycle --------------------------------------------------------------

    def start(self) -> "FakeKube":
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._break += 1
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, context: str = "fake", url: str | None = None) -> str:
        """A kubeconfig text for this server with a bearer token."""
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": url or self.url}}],
            "users": [{"name": "fake-user", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake-user"}}],
        })

    # Driving the cluster ----------------------------------------------------

    def serve(self, group: str, version: str, plural: str, kind: str, namespaced: bool) -> None:
        self.resources[(group, version, plural)] = _Resource(group, version, plural, kind, namespaced)

    def unserve(self, group: str, plural: str) -> None:
        """Stop serving a kind in every version (as if its CRD were absent)."""
        for key in [k for k in self.resources if k[0] == group and k[2] == plural]:
            del self.resources[key]

    def _resource_for(self, obj: dict) -> _Resource:
        group, _, version = obj["apiVersion"].rpartition("/")
        for res in self.resources.values():
            if res.group == group and res.kind == obj["kind"]:
                return res
        raise KeyError(f"the fake does not serve {obj['apiVersion']} {obj['kind']}")

    def put(self, obj: dict) -> dict:
        """Create or replace an object as a controller would; returns the stored copy."""
        res = self._resource_for(obj)
        meta = obj.get("metadata") or {}
        with self._cond:
            key = (res.group, res.plural, meta.get("namespace", "") if res.namespaced else "", meta["name"])
            old = self.objects.get(key)
            stored = copy.deepcopy(obj)
            self._stamp(stored, old, spec_changed=old is None or old.get("spec") != stored.get("spec"))
            return self._store(res, key, stored, "MODIFIED" if old else "ADDED")

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict | None:
        res = self._resource_for({"apiVersion": api_version, "kind": kind})
        obj = self.objects.get((res.group, res.plural, namespace if res.namespaced else "", name))
        return copy.deepcopy(obj) if obj else None

    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> None:
        res = self._resource_for({"apiVersion": api_version, "kind": kind})
        with self._cond:
            self._remove(res, (res.group, res.plural, namespace if res.namespaced else "", name))

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion seen so far get 410."""
        with self._cond:
            self.rv += 1
            self.compacted_rv = self.rv
            self.events = []

    def break_watches(self, *, abruptly: bool = False) -> None:
        """End every open watch stream (cleanly, or by dropping the connection)."""
        with self._cond:
            self._break += 1
            self._break_abruptly = abruptly
            self._cond.notify_all()

    def go_down(self) -> None:
        """Drop every connection without answering, until come_back()."""
        self.down = True
        self.break_watches(abruptly=True)

    def come_back(self) -> None:
        self.down = False

    def fail(self, status: int, *, method: str | None = None, path_contains: str = "", times: int = 1,
             message: str = "", reason: str = "") -> None:
        """Answer the next `times` matching requests with this status."""
        self._failures.append(_Failure(status, method, path_contains, times,
                                       message or f"injected failure {status}", reason))

    def requests_to(self, method: str, path_contains: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def watch_requests(self, plural: str) -> list[Request]:
        return [r for r in self.requests
                if r.method == "GET" and r.query.get("watch") == "true" and r.path.endswith(f"/{plural}")]

    # Store internals (callers hold self._cond) ------------------------------

    def _stamp(self, obj: dict, old: dict | None, *, spec_changed: bool) -> None:
        meta = obj.setdefault("metadata", {})
        old_meta = (old or {}).get("metadata") or {}
        meta["uid"] = old_meta.get("uid") or meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = old_meta.get("creationTimestamp") or meta.get("creationTimestamp") or _now()
        generation = old_meta.get("generation", 0)
        meta["generation"] = generation + 1 if spec_changed or not old else generation
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)

    def _store(self, res: _Resource, key: tuple, obj: dict, type_: str) -> dict:
        self.objects[key] = obj
        self.events.append(_Event(self.rv, (res.group, res.plural), key[2], type_, copy.deepcopy(obj)))
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def _remove(self, res: _Resource, key: tuple) -> dict:
        obj = self.objects.pop(key)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append(_Event(self.rv, (res.group, res.plural), key[2], "DELETED", copy.deepcopy(obj)))
        self._cond.notify_all()
        return obj

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if (failure.method in (None, method)) and failure.path_contains in path and failure.times > 0:
                failure.times -= 1
                return failure
        return None


class _Server(ThreadingHTTPServer):
    # A hub sync opens a dozen watches at once; the default backlog of 5 drops
    # SYNs, and the client's retransmission adds a whole second.
    request_queue_size = 128


def _selector_matches(selector: str, labels: dict) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, eq, value = term.partition("=")
        if eq and labels.get(key.rstrip("=!")) != value.lstrip("="):
            return False
        if not eq and key not in labels:
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeKube = None

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Headers and body go out as separate writes: without this, Nagle's
        # algorithm and delayed ACKs add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Routing ----------------------------------------------------------------

    def _route(self, method: str) -> None:
        fake = self.server_fake
        if fake.down:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = self._read_body()
        fake.requests.append(Request(method, parts.path, query, self.headers.get("Content-Type", ""), body,
                                     self.headers.get("Authorization", "")))
        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            return self._status(401, "Unauthorized")
        failure = fake._take_failure(method, parts.path)
        if failure:
            return self._send_json(failure.status, status_body(failure.status, failure.message, failure.reason))
        target = self._parse_path(parts.path)
        if target is None:
            return self._status(404, "the server could not find the requested resource")
        res, namespace, name, subresource = target
        if method == "GET" and not name and query.get("watch") in ("true", "1"):
            return self._watch(res, namespace, query)
        handler = {("GET", False): self._list, ("GET", True): self._get, ("POST", False): self._create,
                   ("PATCH", True): self._patch, ("DELETE", True): self._delete}.get((method, bool(name)))
        if handler is None:
            return self._status(405, f"{method} is not supported here")
        with fake._cond:
            handler(res, namespace, name, subresource, query, body)

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PATCH(self):
        self._route("PATCH")

    def do_DELETE(self):
        self._route("DELETE")

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        text = raw.decode()
        try:
            return json.loads(text)
        except ValueError:
            return yaml.safe_load(text)

    def _parse_path(self, path: str):
        segs = [unquote(s) for s in path.strip("/").split("/")]
        if segs[:1] == ["api"] and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        namespace = ""
        if rest[:1] == ["namespaces"] and len(rest) >= 3:  # /namespaces/<ns>/<plural>...
            namespace, rest = rest[1], rest[2:]
        if not rest:
            return None
        res = self.server_fake.resources.get((group, version, rest[0]))
        if res is None or (namespace and not res.namespaced):
            return None
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if name and res.namespaced and not namespace:
            return None
        return res, namespace, name, subresource

    # Answers ----------------------------------------------------------------

    def _send_json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, message: str, reason: str = "") -> None:
        self._send_json(code, status_body(code, message, reason))

    def _key(self, res: _Resource, namespace: str, name: str) -> tuple:
        return (res.group, res.plural, namespace, name)

    def _not_found(self, res: _Resource, name: str) -> None:
        self._status(404, f'{res.plural}{"." + res.group if res.group else ""} "{name}" not found')

    def _list(self, res, namespace, name, subresource, query, body):
        fake = self.server_fake
        items = [copy.deepcopy(o) for k, o in sorted(fake.objects.items())
                 if k[:2] == (res.group, res.plural) and (not namespace or k[2] == namespace)
                 and _selector_matches(query.get("labelSelector", ""), o["metadata"].get("labels") or {})]
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(items)
        meta = {"resourceVersion": str(fake.rv)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        self._send_json(200, {"apiVersion": res.api_version, "kind": f"{res.kind}List", "metadata": meta,
                              "items": items[start:start + limit]})

    def _get(self, res, namespace, name, subresource, query, body):
        obj = self.server_fake.objects.get(self._key(res, namespace, name))
        if obj is None:
            return self._not_found(res, name)
        self._send_json(200, obj)

    def _create(self, res, namespace, name, subresource, query, body):
        fake = self.server_fake
        name = (body.get("metadata") or {}).get("name", "")
        key = self._key(res, namespace, name)
        if key in fake.objects:
            return self._status(409, f'{res.plural} "{name}" already exists', "AlreadyExists")
        obj = copy.deepcopy(body)
        obj["metadata"]["namespace"] = namespace or None
        obj["metadata"] = {k: v for k, v in obj["metadata"].items() if v is not None}
        fake._stamp(obj, None, spec_changed=True)
        self._send_json(201, fake._store(res, key, obj, "ADDED"))

    def _patch(self, res, namespace, name, subresource, query, body):
        content_type = self.headers.get("Content-Type", "").split(";")[0]
        if content_type == "application/apply-patch+yaml":
            return self._apply(res, namespace, name, query, body)
        if content_type != "application/merge-patch+json":
            return self._status(415, f"the body of the request was in an unknown format: {content_type}")
        fake = self.server_fake
        key = self._key(res, namespace, name)
        old = fake.objects.get(key)
        if old is None:
            return self._not_found(res, name)
        wanted_rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            return self._status(409, f'Operation cannot be fulfilled on {res.plural} "{name}": '
                                     "the object has been modified", "Conflict")
        patched = merge_patch(old, body or {})
        if subresource == "status":
            new = {**copy.deepcopy(old), "status": patched.get("status")}
        else:
            new = {**patched, "status": copy.deepcopy(old.get("status"))}
        new = {k: v for k, v in new.items() if v is not None}
        fake._stamp(new, old, spec_changed=new.get("spec") != old.get("spec"))
        self._send_json(200, fake._store(res, key, new, "MODIFIED"))

    def _apply(self, res, namespace, name, query, body):
        """Server-side apply, simplified: the applied fields replace the
        object's (status and server-set metadata kept); managedFields records
        the manager."""
        fake = self.server_fake
        manager = query.get("fieldManager")
        if not manager:
            return self._status(400, "PATCH requests with content type application/apply-patch+yaml "
                                     "must include fieldManager")
        key = self._key(res, namespace, name)
        old = fake.objects.get(key)
        new = copy.deepcopy(body)
        meta = new.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        if old is not None:
            new["status"] = copy.deepcopy(old.get("status"))
            new = {k: v for k, v in new.items() if v is not None}
        meta["managedFields"] = [{"manager": manager, "operation": "Apply", "apiVersion": res.api_version}]
        if query.get("dryRun") == "All":  # what it would be; nothing stored, nothing watched
            meta.update({k: v for k, v in ((old or {}).get("metadata") or {}).items()
                         if k in ("uid", "resourceVersion", "creationTimestamp", "generation")})
            return self._send_json(200 if old else 201, new)
        fake._stamp(new, old, spec_changed=old is None or new.get("spec") != old.get("spec"))
        self._send_json(201 if old is None else 200, fake._store(res, key, new, "MODIFIED" if old else "ADDED"))

    def _delete(self, res, namespace, name, subresource, query, body):
        fake = self.server_fake
        key = self._key(res, namespace, name)
        obj = fake.objects.get(key)
        if obj is None:
            return self._not_found(res, name)
        uid = ((body or {}).get("preconditions") or {}).get("uid")
        if uid and uid != obj["metadata"]["uid"]:
            return self._status(409, f"Precondition failed: UID in precondition: {uid}, "
                                     f"UID in object meta: {obj['metadata']['uid']}", "Conflict")
        self._send_json(200, fake._remove(res, key))

    # Watch ------------------------------------------------------------------

    def _watch(self, res, namespace, query):
        try:
            self._stream(res, namespace, query)
        except OSError:  # the client went away (or we dropped it): so does the stream
            self.close_connection = True

    def _stream(self, res, namespace, query):
        fake = self.server_fake
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with fake._cond:
            cursor = int(query.get("resourceVersion") or fake.rv)
            too_old = cursor < fake.compacted_rv
            breaks = fake._break
        if too_old:
            status = status_body(410, f"too old resource version: {cursor} ({fake.compacted_rv})", "Expired")
            self._chunk({"type": "ERROR", "object": status})
            return self._end_chunks()
        while True:
            with fake._cond:
                if fake._break == breaks and time.monotonic() < deadline:
                    fake._cond.wait(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
                pending = [e for e in fake.events if e.rv > cursor]
                broke, abrupt = fake._break != breaks, fake._break_abruptly
                latest = fake.rv
            if broke and abrupt:  # a break ends the stream before anything newer is sent
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if broke:
                return self._end_chunks()
            for event in pending:
                cursor = event.rv
                if event.key == (res.group, res.plural) and (not namespace or event.namespace == namespace):
                    self._chunk({"type": event.type, "object": event.obj})
            if time.monotonic() >= deadline:
                if query.get("allowWatchBookmarks") == "true":
                    self._chunk({"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(latest)}}})
                return self._end_chunks()

    def _chunk(self, event: dict) -> None:
        data = (json.dumps(event) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# KubeFleet objects as a hub holds them (the tutorial's fleet) --------------------

GROUP_VERSION = f"{FLEET}/v1beta1"


def condition(type_: str, status: str, reason: str, at: str = "2026-03-02T21:28:08Z", message: str = "",
              generation: int = 1) -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": at, "observedGeneration": generation}


def fleet_object(kind: str, name: str, *, namespace: str = "", labels: dict | None = None,
                 annotations: dict | None = None, spec: dict | None = None, status: dict | None = None) -> dict:
    group = CLUSTER if kind == "MemberCluster" else FLEET
    meta = {"name": name, **({"namespace": namespace} if namespace else {}),
            **({"labels": labels} if labels else {}), **({"annotations": annotations} if annotations else {})}
    obj = {"apiVersion": f"{group}/v1beta1", "kind": kind, "metadata": meta, "spec": spec or {}}
    if status is not None:
        obj["status"] = status
    return obj


def tutorial_run_status(stage: str = "staging") -> dict:
    """The example run's status while `stage` runs ("canary-waiting": waiting
    for the canary approval)."""
    run_conditions = [condition("Initialized", "True", "UpdateRunInitializedSuccessfully")]
    staging = {"stageName": "staging", "clusters": [{"clusterName": "member2", "conditions": [
        condition("Started", "True", "ClusterUpdatingStarted")]}],
        "conditions": [condition("Progressing", "True", "StageUpdatingStarted")]}
    canary = {"stageName": "canary", "clusters": [{"clusterName": "member3"}, {"clusterName": "member1"}],
              "afterStageTaskStatus": [{"type": "Approval"}]}
    if stage == "staging":
        run_conditions.append(condition("Progressing", "True", "UpdateRunStarted"))
    else:
        staging["clusters"][0]["conditions"].append(condition("Succeeded", "True", "ClusterUpdatingSucceeded",
                                                              "2026-03-02T21:28:23Z"))
        staging["conditions"] = [condition("Progressing", "False", "StageUpdatingSucceeded", "2026-03-02T21:28:23Z"),
                                 condition("Succeeded", "True", "StageUpdatingSucceeded", "2026-03-02T21:29:23Z")]
        canary["conditions"] = [condition("Progressing", "False", "StageUpdatingWaiting", "2026-03-02T21:29:53Z")]
        canary["afterStageTaskStatus"] = [{"type": "Approval", "approvalRequestName": "example-run-canary",
                                           "conditions": [condition("ApprovalRequestCreated", "True",
                                                                    "AfterStageTaskApprovalRequestCreated",
                                                                    "2026-03-02T21:29:53Z")]}]
        run_conditions.append(condition("Progressing", "False", "UpdateRunWaiting", "2026-03-02T21:29:53Z",
                                        "the update run is waiting for after-stage tasks in stage canary"))
    return {"conditions": run_conditions, "policySnapshotIndexUsed": "0", "stagesStatus": [staging, canary]}


def tutorial_hub(fake: FakeKube, *, run_state: str | None = "Run") -> None:
    """The tutorial's fleet on the fake hub, its run in the staging stage.
    run_state=None gives the legacy run shape (no spec.state)."""
    parent = {"kubernetes-fleet.io/parent-CRP": "example-placement"}
    for name, env, order in (("member1", "canary", "2"), ("member2", "staging", "1"), ("member3", "canary", "1")):
        fake.put(fleet_object("MemberCluster", name, labels={"environment": env, "order": order},
                              spec={"identity": {"kind": "ServiceAccount", "name": "fleet-member-agent"}}))
    fake.put(fleet_object("ClusterResourcePlacement", "example-placement", spec={
        "resourceSelectors": [{"group": "", "kind": "Namespace", "version": "v1", "name": "test-namespace"}],
        "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}))
    fake.put(fleet_object("ClusterSchedulingPolicySnapshot", "example-placement-0", labels={
        **parent, "kubernetes-fleet.io/is-latest-snapshot": "true", "kubernetes-fleet.io/policy-index": "0"},
        spec={"policy": {"placementType": "PickAll"}}))
    fake.put(fleet_object("ClusterResourceSnapshot", "example-placement-0-snapshot", labels={
        **parent, "kubernetes-fleet.io/is-latest-snapshot": "true", "kubernetes-fleet.io/resource-index": "0"},
        annotations={"kubernetes-fleet.io/resource-hash": "abc"},
        spec={"selectedResources": [{"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "test-cm", "namespace": "test-namespace"},
                                     "data": {"key": "value1"}}]}))
    fake.put(fleet_object("ClusterStagedUpdateStrategy", "example-strategy", spec={"stages": [
        {"name": "staging", "labelSelector": {"matchLabels": {"environment": "staging"}},
         "afterStageTasks": [{"type": "TimedWait", "waitTime": "1m"}]},
        {"name": "canary", "labelSelector": {"matchLabels": {"environment": "canary"}}, "sortingLabelKey": "order",
         "afterStageTasks": [{"type": "Approval"}]}]}))
    spec = {"placementName": "example-placement", "resourceSnapshotIndex": "0",
            "stagedRolloutStrategyName": "example-strategy", **({"state": run_state} if run_state else {})}
    fake.put(fleet_object("ClusterStagedUpdateRun", "example-run", spec=spec, status=tutorial_run_status()))


def tutorial_approval_request() -> dict:
    labels = {"kubernetes-fleet.io/targetUpdateRun": "example-run",
              "kubernetes-fleet.io/targetUpdatingStage": "canary",
              "kubernetes-fleet.io/isLatestUpdateRunApproval": "true"}
    return fleet_object("ClusterApprovalRequest", "example-run-canary", labels=labels,
                        spec={"parentStageRollout": "example-run", "targetStage": "canary"})
