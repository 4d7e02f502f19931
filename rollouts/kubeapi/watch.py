"""Watch, as the Kubernetes API server serves it: `?watch=1` on a list URL.

A watch is a chunked stream of JSON lines `{"type": …, "object": …}`:

1. resourceVersion unset or "0": ADDED for every current object first
   ("Get State and Start at Most Recent"), then changes after the
   revision that state was read at.
2. resourceVersion X: every change after X. X older than the change log's
   compaction point (a deletion may have been forgotten) ends the stream
   with an ERROR event carrying a Status 410 Expired, as the API server
   does once the stream is open; clients then list again.
3. Then, until timeoutSeconds: each poll reads the hub revision horizon
   (rollouts/models/revisions.py) and, when it moved, the kind's rows and
   tombstones in between, in revision order; with allowWatchBookmarks a
   BOOKMARK carrying the current revision every BOOKMARK_SECONDS.

Served under ASGI (daphne, `fleet serve`): an async iterator that sleeps
between polls on the event loop and reads in a worker thread whose database
connection it closes after each poll, so an idle watch holds neither a
thread nor a connection.
"""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.http import HttpResponse, StreamingHttpResponse

from rollouts.api.errors import ApiError, BadRequest
from rollouts.api.kinds import Kind
from rollouts.api.labels import parse_selector
from rollouts.selectors import changelog
from rollouts.selectors.changelog import Change, Filter

POLL_SECONDS = 0.25
BOOKMARK_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 1800
MAX_TIMEOUT_SECONDS = 3600
_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class WatchRequest:
    """A watch's parsed query: where to start, what to send, for how long."""

    kind: Kind
    wanted: Filter
    start: int | None  # None: send the current state first
    bookmarks: bool
    timeout: float
    render: Callable[[dict], dict] | None = None  # e.g. a Table row for `kubectl get -w`


def list_resource_version() -> str:
    """The hub-wide resourceVersion for a list's metadata. Read it BEFORE the
    list's rows: every write at or below it is then in the list."""
    return str(changelog.hub_revision())


def watch_response(request, kind: Kind, namespace: str | None, params, *,
                   render: Callable[[dict], dict] | None = None) -> HttpResponse:
    """The streaming response of a watch of `kind` (in `namespace`, None for
    all). Bad parameters answer 400 with a Status naming the parameter.
    `render`, when given, turns each event's object into what the client
    asked for (a pure function: it runs in the reading thread)."""
    try:
        watch = replace(parse_watch(kind, namespace, params), render=render)
    except ApiError as error:
        return status_response(error.code, error.reason, str(error))
    _release_connection()
    response = StreamingHttpResponse(_lines(watch), content_type="application/json")
    response["Cache-Control"] = "no-cache, private"
    response["X-Accel-Buffering"] = "no"
    return response


def _release_connection() -> None:
    """Called from a sync view: close its connection, which the stream (it
    reads on its own threads) would otherwise keep until it ends."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if not connection.in_atomic_block:
            connection.close()


def parse_watch(kind: Kind, namespace: str | None, params) -> WatchRequest:
    """The watch's query parameters, or BadRequest worded as the API server's."""
    raw_version = params.get("resourceVersion") or ""
    start = None if raw_version in ("", "0") else _number("resourceVersion", raw_version)
    timeout = _number("timeoutSeconds", params.get("timeoutSeconds") or str(DEFAULT_TIMEOUT_SECONDS))
    labels = parse_selector(params.get("labelSelector") or "")
    wanted = Filter(namespace=namespace, labels=labels or None, fields=_field_requirements(params.get("fieldSelector")))
    bookmarks = (params.get("allowWatchBookmarks") or "").lower() in ("1", "true")
    return WatchRequest(kind, wanted, start, bookmarks, float(min(timeout, MAX_TIMEOUT_SECONDS)))


def _number(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise BadRequest(f"invalid value for {name}: {raw!r}: must be a non-negative integer")
    return int(raw)


def _field_requirements(text: str | None) -> tuple[tuple[str, str, bool], ...]:
    """`metadata.name=x,metadata.namespace!=y` as (field, value, equal) triples."""
    found = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        field, op, value = _split_requirement(part)
        if field not in _FIELDS:
            raise BadRequest(f'field label not supported: {field}')
        found.append((field, value, op != "!="))
    return tuple(found)


def _split_requirement(part: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        field, found, value = part.partition(op)
        if found:
            return field.strip(), op, value.strip()
    raise BadRequest(f"invalid field selector: {part!r}: expected field=value or field!=value")


def status_body(code: int, reason: str, message: str) -> dict:
    """A Kubernetes Status object."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def status_response(code: int, reason: str, message: str) -> HttpResponse:
    return HttpResponse(json.dumps(status_body(code, reason, message)), status=code, content_type="application/json")


def _line(type_: str, obj: dict) -> bytes:
    return (json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n").encode()


async def _lines(watch: WatchRequest):
    """The stream: the state or the 410, then changes, bookmarks, until the timeout."""
    deadline = time.monotonic() + watch.timeout
    position, state, compacted = await _read(_start, watch)
    if watch.start is not None and watch.start < compacted:
        message = f"too old resource version: {watch.start} ({compacted})"
        yield _line("ERROR", status_body(410, "Expired", message))
        return
    sent = {change.uid: change.resource_version for change in state}
    known = set(sent) if watch.start is None else None
    for change in state:
        yield _line(change.type, change.object)
    bookmarked = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        horizon, changes = await _read(_poll, watch, position)
        for change in changes:
            if sent.pop(change.uid, None) != change.resource_version:  # not already in the state sent
                yield _line(_event_type(change, change.uid, known), change.object)
        position = max(position, horizon)
        if watch.bookmarks and time.monotonic() - bookmarked >= BOOKMARK_SECONDS:
            bookmarked = time.monotonic()
            yield _line("BOOKMARK", {"kind": watch.kind.kind, "apiVersion": watch.kind.api_version,
                                     "metadata": {"resourceVersion": str(position)}})


def _event_type(change: Change, uid: str, known: set | None) -> str:
    """ADDED for an object this watch has not sent before (known only when
    it began with the state: a watch from a revision cannot tell a new object
    from a changed one and says MODIFIED, which informers treat alike)."""
    if known is None:
        return change.type
    if change.type == changelog.DELETED:
        known.discard(uid)
        return change.type
    if uid in known:
        return change.type
    known.add(uid)
    return changelog.ADDED


async def _read(function, *args):
    """Run a read in a worker thread, closing its connections after, so the
    watch holds none between polls."""
    return await sync_to_async(_closing(function), thread_sensitive=False)(*args)


def _closing(function):
    def run(*args):
        try:
            return function(*args)
        finally:
            connections.close_all()
    return run


def _start(watch: WatchRequest) -> tuple[int, list[Change], int]:
    """(revision to go on from, the ADDED events of the current state, the compaction point)."""
    compacted = changelog.compacted_revision(compact=True)
    if watch.start is not None:
        return watch.start, [], compacted
    position = changelog.hub_revision()  # before the rows: the state holds every write up to it
    return position, _rendered(watch, changelog.current_state(watch.kind, watch.wanted)), compacted


def _poll(watch: WatchRequest, position: int) -> tuple[int, list[Change]]:
    """(the horizon, the changes after `position` up to it)."""
    horizon = changelog.hub_revision()
    if horizon <= position:
        return horizon, []
    return horizon, _rendered(watch, changelog.changes_between(watch.kind, watch.wanted, position, horizon))


def _rendered(watch: WatchRequest, changes: list[Change]) -> list[Change]:
    if watch.render is None:
        return changes
    return [replace(change, object=watch.render(change.object)) for change in changes]
