"""Live updates: after a write commits, push the partials the pages show.

Writers say what changed, inside their transaction; nothing is sent before it
commits (transaction.on_commit), and a rolled-back write sends nothing:

    run_changed(run)                   the engine saved a run's status, or a
                                       person stopped, resumed or created it
    approval_request_changed(request)  a person approved a stage gate

After commit each changed run is rendered once per audience that watches it,
as the very partial its page's htmx refresh renders (`run_detail.html#timeline`
through the view's own context builder, `overview.html#live` likewise) with
`hx-swap-oob`, and sent to the group of those viewers: one render per group,
not per viewer. The consumers (consumers.py) send the same render when a
socket connects, so a page that missed a push is whole again on reconnect.

An audience is what a partial's permission checks see: a viewer sees no Stop
or Approve… buttons, a release manager does. Rendering a page for the wrong
audience would show buttons to people who may not use them, so each audience
has its own group and render (`run-<kind>-<pk>-<audience>`).

Pushes are hints: a render nobody listens to is skipped (the group is empty),
a dropped message is repaired by the next push, the page's minute-long resync
or its reconnect. Nothing here ever fails the write that committed.

Access is checked again while a socket is open (consumers.py): each socket
also joins the group of its user and of its session, and `sockets_revoke`
(a logout) closes the session's sockets, `sockets_recheck` (an account
deactivated, a role lost or gained, a password changed) makes the user's
sockets check their session and audience again, after commit.

Where the pushes go: with REDIS_URL, through channels-redis from any process
(a Celery worker's engine reaches browsers on every ASGI server). Without it,
the in-memory layer reaches only sockets of this process: enough for `fleet
serve` (the engine loop runs in a thread beside the web server), not for a
`fleet engine` in another process; pages then poll (pushes_reach_browsers()).
"""

import asyncio
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from types import SimpleNamespace

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

OVERVIEW_GROUP = "fleet-overview"
MESSAGE_TYPE = "live.html"  # handled by the consumers' live_html()
REVOKE_TYPE = "access.revoked"  # consumers' access_revoked(): close now
RECHECK_TYPE = "access.recheck"  # consumers' access_recheck(): check the session and role again
ENGINE_THREAD = "fleet-engine"  # the thread `fleet serve` runs the engine loop in
SEND_TIMEOUT = 5.0

# Audience -> the permissions the partials check, as `perms.rollouts.<codename>`.
AUDIENCES = {
    "view": {"approve_stage": False, "operate_run": False},
    "approve": {"approve_stage": True, "operate_run": False},
    "operate": {"approve_stage": False, "operate_run": True},
    "manage": {"approve_stage": True, "operate_run": True},
}

_pending = threading.local()  # keys to push once the current transaction commits
_server_loop: asyncio.AbstractEventLoop | None = None  # where in-memory sockets live


# Names --------------------------------------------------------------------------------


def audience_of(user) -> str | None:
    """The audience of a signed-in user, or None when they may not view the fleet."""
    from rollouts import roles

    if not user.has_perm(roles.VIEW):
        return None
    approve, operate = user.has_perm(roles.APPROVE), user.has_perm(roles.OPERATE)
    return next(name for name, p in AUDIENCES.items()
                if (p["approve_stage"], p["operate_run"]) == (approve, operate))


def run_group(kind: str, pk: int, audience: str) -> str:
    return f"run-{kind.lower()}-{pk}-{audience}"


def run_socket_path(run) -> str:
    """The WebSocket path of a run's page (rollouts/routing.py)."""
    return f"/ws/runs/{run.KIND.lower()}/{run.pk}/"


OVERVIEW_SOCKET_PATH = "/ws/overview/"


def user_group(user_pk) -> str:
    """Every socket of one user (closed or re-checked when the account changes)."""
    return f"user-{user_pk}"


def session_group(session_key: str) -> str:
    """Every socket of one session. Named by a hash: a group name is stored in
    Redis, and the session key is a credential."""
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def session_audience(session_key: str | None) -> tuple[bool, str | None]:
    """(signed in, audience) of a session as it is now: the session still
    exists, names an active user, and its password hash still matches (as
    django.contrib.auth.get_user checks); audience as audience_of(), None
    without the viewer role. (False, None) for an ended or forged session."""
    if not session_key:
        return False, None
    store = import_string(settings.SESSION_ENGINE + ".SessionStore")(session_key)
    user = auth.get_user(SimpleNamespace(session=store))
    if not user.is_authenticated:
        return False, None
    return True, audience_of(user)


# Registering (inside the writer's transaction) ------------------------------------------


def run_changed(run) -> None:
    """The run's page and the overview change once this transaction commits."""
    _mark(("run", run.KIND, run.pk))
    _mark(("overview",))


def approval_request_changed(request) -> None:
    """The page of the request's run and the overview change after commit."""
    from rollouts.controllers.family import family_of

    run_kind = family_of(request).run.KIND
    _mark(("run-named", run_kind, request.namespace, (request.spec or {}).get("parentStageRollout", "")))
    _mark(("overview",))


def _mark(key: tuple) -> None:
    """Remember the key and flush after commit. Every registration schedules a
    flush, and the first one to run sends every key: N changes of one run in
    one transaction cost one render. Keys of a rolled-back transaction go out
    with the next flush: a push renders current state, so that is harmless."""
    keys = getattr(_pending, "keys", None)
    if keys is None:
        keys = _pending.keys = {}
    keys[key] = None
    transaction.on_commit(_flush)


def sockets_revoke(*, session_key: str | None) -> None:
    """Close every socket of this session now (a logout: the session is
    flushed right after, so nothing waits for a commit)."""
    if session_key:
        _send_to_groups([session_group(session_key)], {"type": REVOKE_TYPE})


def sockets_recheck(*, user_pks) -> None:
    """Once this transaction commits, make every socket of these users check
    its session and audience again (a deactivation, a changed role or
    password). A socket that may no longer listen, or would now see another
    audience, is closed; the page reconnects if it still may."""
    groups = [user_group(pk) for pk in user_pks]
    if groups:
        transaction.on_commit(lambda: _send_to_groups(groups, {"type": RECHECK_TYPE}))


def _send_to_groups(groups: list[str], message: dict) -> None:
    """Send one message to each group, through whichever layer; never raises
    (a socket that misses it re-checks on its next push anyway)."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return

        async def send_each():
            for group in groups:
                await layer.group_send(group, message)

        if isinstance(layer, InMemoryChannelLayer):
            if any(layer.groups.get(g) for g in groups):
                _on_server_loop(send_each)
        else:
            _on_sender_loop(send_each())
    except Exception:
        log.warning("could not tell the sockets of %s to re-check access", groups, exc_info=True)


def _flush() -> None:
    keys = list(getattr(_pending, "keys", None) or ())
    _pending.keys = {}
    if keys:
        push(keys)


# Rendering: the views' own context builders and partials --------------------------------


def render_run(kind: str, pk: int, audiences) -> dict[str, str]:
    """{audience: the run's timeline partial, out of band}; {} when the run is gone.
    The timeline is read once, whatever the number of audiences."""
    from rollouts.controllers.family import FAMILIES
    from rollouts.views.runs import timeline_context

    family = next((f for f in FAMILIES if f.run.KIND == kind), None)
    run = family.run.objects.filter(pk=pk).first() if family else None
    if run is None:
        return {}
    context = {**timeline_context(run), "oob": True}
    return {audience: render_to_string("rollouts/run_detail.html#timeline",
                                       {**context, "perms": {"rollouts": AUDIENCES[audience]}})
            for audience in audiences}


def render_overview() -> str:
    from rollouts.views.overview import overview_context

    return render_to_string("rollouts/overview.html#live", {**overview_context(), "oob": True})


# Pushing ------------------------------------------------------------------------------------


def push(keys: list[tuple]) -> None:
    """Render each key for the groups that listen and send it. Never raises:
    the write has committed, and a missed push is repaired on reconnect."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        if isinstance(layer, InMemoryChannelLayer):
            _push_in_memory(layer, keys)
        else:
            keys = _resolve(keys)
            listening = _on_sender_loop(_listening(layer, [g for key in keys for g in _groups(key)]))
            messages = _render(keys, listening)
            if messages:
                _on_sender_loop(_send_all(layer, messages))
    except Exception:  # a template, the database or Redis: none may fail the committed write
        log.warning("live update not sent; pages catch up on their next push, resync or reconnect",
                    exc_info=True)


def _resolve(keys: list[tuple]) -> list[tuple]:
    """Run names (an approval names its run) to ("run", kind, pk), deduplicated."""
    from rollouts.controllers.family import FAMILIES

    out = {}
    for key in keys:
        if key[0] == "run-named":
            _, kind, namespace, name = key
            family = next(f for f in FAMILIES if f.run.KIND == kind)
            pk = family.run.objects.filter(namespace=namespace, name=name).values_list("pk", flat=True).first()
            if pk is None:
                continue
            key = ("run", kind, pk)
        out[key] = None
    return list(out)


def _groups(key: tuple) -> list[str]:
    if key[0] == "overview":
        return [OVERVIEW_GROUP]
    return [run_group(key[1], key[2], audience) for audience in AUDIENCES]


def _render(keys: list[tuple], listening: set[str]) -> list[tuple[str, str]]:
    """(group, html) for every group someone listens to."""
    messages = []
    for key in keys:
        if key[0] == "overview":
            if OVERVIEW_GROUP in listening:
                messages.append((OVERVIEW_GROUP, render_overview()))
            continue
        _, kind, pk = key
        audiences = [a for a in AUDIENCES if run_group(kind, pk, a) in listening]
        if audiences:
            messages += [(run_group(kind, pk, a), html) for a, html in render_run(kind, pk, audiences).items()]
    return messages


async def _send_all(layer, messages: list[tuple[str, str]]) -> None:
    for group, html in messages:
        await layer.group_send(group, {"type": MESSAGE_TYPE, "html": html})


async def _listening(layer, groups: list[str]) -> set[str]:
    """The groups with at least one member, asked of Redis all at once.
    channels-redis has no public call for this; its group is a sorted set
    scored by join time. Should that ever change, every group counts as
    listened to (we render more, miss nothing)."""

    async def members(group: str) -> int:
        try:
            connection = layer.connection(layer.consistent_hash(group))
            return await connection.zcount(layer._group_key(group), int(time.time()) - layer.group_expiry, "+inf")
        except AttributeError:
            return 1

    counts = await asyncio.gather(*(members(g) for g in groups))
    return {group for group, count in zip(groups, counts, strict=True) if count}


_sender_lock = threading.Lock()
_sender_loops: dict[int, asyncio.AbstractEventLoop] = {}


def _on_sender_loop(coroutine):
    """Run a coroutine on this process's sender loop and wait for it. The loop
    runs for the life of the process in a thread of its own, so pushes reuse
    its Redis connections; async_to_sync would build a loop, a thread and a
    connection per push (several ms each), and cannot run at all in a thread
    that has an event loop. A forked process (a Celery worker) gets its own."""
    with _sender_lock:
        loop = _sender_loops.get(os.getpid())
        if loop is None or loop.is_closed():
            loop = _sender_loops[os.getpid()] = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="fleet-broadcast", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=SEND_TIMEOUT)


# The in-memory layer: sockets of this process only -------------------------------------------


def note_server_loop() -> None:
    """Called by a consumer as it connects: the event loop its sockets live on.
    The in-memory layer's queues belong to that loop, so a push from the
    engine's thread must be handed over to it, never sent from another loop."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def _push_in_memory(layer: InMemoryChannelLayer, keys: list[tuple]) -> None:
    loop = _server_loop
    if loop is None or loop.is_closed():
        return  # no socket ever connected to this process: nobody to tell
    keys = _resolve(keys)
    listening = {g for key in keys for g in _groups(key) if layer.groups.get(g)}
    messages = _render(keys, listening)
    if messages:
        _on_server_loop(lambda: _send_all(layer, messages))


def _on_server_loop(make_coroutine) -> None:
    """Run make_coroutine() on the loop the in-memory sockets live on: from
    that loop, scheduled; from another thread, handed over and waited for."""
    loop = _server_loop
    if loop is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:  # already on the sockets' loop: just schedule the sends
        loop.create_task(make_coroutine())
        return
    future = asyncio.run_coroutine_threadsafe(make_coroutine(), loop)
    try:
        future.result(timeout=SEND_TIMEOUT)
    except FutureTimeout:
        log.warning("live update still queued after %.0f s; the server's loop is busy", SEND_TIMEOUT)


def pushes_reach_browsers() -> bool:
    """Whether the engine's transitions reach sockets served by this process:
    always through Redis; with the in-memory layer only when the engine loop
    runs in this process (`fleet serve`). Pages poll when this is False."""
    layer = get_channel_layer()
    if layer is None:
        return False
    if not isinstance(layer, InMemoryChannelLayer):
        return True
    return any(t.name == ENGINE_THREAD and t.is_alive() for t in threading.enumerate())
