"""Live updates: after a write commits, push the partials the pages show.

A subscriber of rollouts.changes (registered in RolloutsConfig.ready): the
writers publish what changed inside their transaction and never call this
module; it gets the committed batch once the transaction commits, and a
rolled-back write sends nothing:

    RunChanged                 the run's page and the overview
    ApprovalRequestChanged     the page of the request's run and the overview
    ClusterFailing             the pages of the placement's active runs and the overview
    HubConnectionChanged       the overview ("Needs attention" lists failing hubs)
    RunChanged, ApprovalRequestChanged   every page: the nav's "Approvals (n)"

The count of gates waiting for a person is in every page's nav and tab title.
Every page's socket joins APPROVALS_GROUP (the overview and run pages' own
sockets, and on the other pages a socket of its own, NAV_SOCKET_PATH), and
gets the count as a tiny fragment after a run or a request changed: a run
reaching its gate makes one wait, an approval, a rejection or a resume
changes it. It is the same number for everyone (one render per batch), and
it carries data-version (when it was counted) so a count counted earlier and
delivered later does not overwrite a newer one (static/live.js).

Each changed run is read once and rendered once per audience that watches
it, from the very partials its page's htmx refresh renders
(`run_detail.html#timeline` from selectors.pages.run_timeline_context,
`overview.html#live` from selectors.pages.overview_context) with
`hx-swap-oob`, and sent to the group of those viewers: one render per group,
not per viewer, and one per batch however many changes of one run it holds.
A run's push carries only the fragments of its page that changed since the
last push to that group (rollouts/fragments.py; what was sent is remembered
in Redis or in process, fragment_memory.py), marked with the version it
applies to: a page at another version ignores it if it is already as new,
and otherwise fetches its whole timeline (static/live.js). The consumers
(consumers.py) send the whole timeline when a socket connects, and change
nothing remembered, so a page that missed pushes is whole again on reconnect.

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
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from rollouts import changes, fragment_memory, fragments, metrics, outages, roles
from rollouts.controllers.family import FAMILIES
from rollouts.models.rows import CompiledRead
from rollouts.selectors.approvals import approvals_waiting_count
from rollouts.selectors.freezes import banner_freezes
from rollouts.selectors.pages import overview_context, run_timeline_context

log = logging.getLogger(__name__)

OVERVIEW_GROUP = "fleet-overview"
APPROVALS_GROUP = "fleet-approvals"  # every page's socket: the nav's count
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

_server_loop: asyncio.AbstractEventLoop | None = None  # where in-memory sockets live


# Names --------------------------------------------------------------------------------


def audience_of(user) -> str | None:
    """The audience of a signed-in user, or None when they may not view the fleet."""
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
NAV_SOCKET_PATH = "/ws/nav/"  # pages without a live partial of their own: only the nav's count


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


# Reacting to what changed (after commit) -----------------------------------------------------

_RUN_KIND_OF_REQUEST = {family.approval_request.KIND: family.run.KIND for family in FAMILIES}
_RUN_KIND_OF_PLACEMENT = {family.placement.KIND: family.run.KIND for family in FAMILIES}


def on_changes(events: list) -> None:
    """The changes subscriber: push every run and overview a batch changed;
    close the sockets of ended sessions, and make those of changed accounts
    check their access again.
    The live-push latency counts from here, right after the commit, to the
    last message handed to the channel layer."""
    started = time.perf_counter()
    _sockets_revoke([e.session_key for e in events if isinstance(e, changes.SessionEnded)])
    _sockets_recheck(list(dict.fromkeys(pk for e in events if isinstance(e, changes.AccountChanged)
                                        for pk in e.user_pks)))
    keys = {}
    for event in events:
        if isinstance(event, changes.RunChanged):
            keys[("run", event.kind, event.pk)] = None
        elif isinstance(event, changes.ApprovalRequestChanged):
            keys[("run-named", _RUN_KIND_OF_REQUEST[event.kind], event.namespace, event.run_name)] = None
        elif isinstance(event, changes.ClusterFailing):
            keys[("runs-of", _RUN_KIND_OF_PLACEMENT[event.placement_kind], event.namespace, event.name)] = None
        elif isinstance(event, changes.FreezeChanged):  # the banner, on the overview
            keys[("freeze-banner",)] = None
        elif not isinstance(event, changes.HubConnectionChanged):  # a hub failing or recovered: the overview
            continue
        keys[("overview",)] = None
        if isinstance(event, changes.RunChanged | changes.ApprovalRequestChanged):
            keys[("approvals",)] = None  # a gate reached, decided or waiting again
    if keys and push(list(keys)):
        layer = "memory" if isinstance(get_channel_layer(), InMemoryChannelLayer) else "redis"
        metrics.live_push_sent(seconds=time.perf_counter() - started, layer=layer)


def _sockets_revoke(session_keys: list[str]) -> None:
    """Close every socket of these sessions now (a logout)."""
    _send_to_groups([session_group(key) for key in session_keys], {"type": REVOKE_TYPE})


def _sockets_recheck(user_pks: list) -> None:
    """Make every socket of these users check its session and audience again
    (a deactivation, a changed role or password). A socket that may no
    longer listen, or would now see another audience, is closed; the page
    reconnects if it still may."""
    _send_to_groups([user_group(pk) for pk in user_pks], {"type": RECHECK_TYPE})


def _send_to_groups(groups: list[str], message: dict) -> None:
    """Send one message to each group, through whichever layer; never raises
    (a socket that misses it re-checks on its next push anyway)."""
    if not groups:
        return
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


# Rendering: the pages' own context builders and partials --------------------------------


# A push reads its run on every transition: its SQL compiled once (models.rows.CompiledRead).
_RUN_READS = {f.run.KIND: CompiledRead(lambda pk, model=f.run: model.objects.filter(pk=pk)) for f in FAMILIES}


def render_run(kind: str, pk: int, audiences) -> dict[str, str]:
    """{audience: the run's timeline partial, out of band}; {} when the run is gone.
    The timeline is read once, whatever the number of audiences."""
    run = _RUN_READS[kind].first(pk) if kind in _RUN_READS else None
    if run is None:
        return {}
    context = {**run_timeline_context(run), "oob": True}
    return {audience: render_to_string("rollouts/run_detail.html#timeline",
                                       {**context, "perms": {"rollouts": AUDIENCES[audience]}})
            for audience in audiences}


def render_run_push(kind: str, pk: int, audiences) -> dict[str, str]:
    """{audience: what a push sends that audience's group}: only the fragments
    of the page that changed since the last push to that group (rollouts.fragments),
    or the whole timeline when the page's shape changed or nothing is
    remembered; {} when the run is gone. Remembers what it sent."""
    run = _RUN_READS[kind].first(pk) if kind in _RUN_READS else None
    if run is None:
        return {}
    model = fragments.run_model(run_timeline_context(run))
    memory, out = fragment_memory.memory(), {}
    for audience in audiences:
        group, perms = run_group(kind, pk, audience), {"rollouts": AUDIENCES[audience]}
        parts = fragments.render_parts(model, perms)
        html = fragments.delta(memory.load(group), model, parts, perms)
        if html is None:
            html = render_to_string("rollouts/run_detail.html#timeline", {**model.context, "oob": True,
                                                                          "perms": perms})
        memory.save(group, fragments.page_state(model, parts))
        out[audience] = html
    return out


def render_overview() -> str:
    return render_to_string("rollouts/overview.html#live", {**overview_context(), "oob": True})


def count_version() -> int:
    """When a count is counted (ms): a count's data-version."""
    return time.time_ns() // 1_000_000


def render_approvals_count(count: int | None = None) -> str:
    """The nav's count of waiting gates, out of band (counted now unless given)."""
    if count is None:
        count = approvals_waiting_count()
    return render_to_string("_approvals_count.html", {"approvals_count": count, "oob": True,
                                                      "approvals_version": count_version()})


def render_freeze_banner() -> str:
    """The freeze banner (empty when nothing holds), out of band: a freeze
    declared, ended, or a window opening shows on the overview at once."""
    return render_to_string("rollouts/_freeze_banner.html", {"freezes": banner_freezes(), "oob": True})


# Pushing ------------------------------------------------------------------------------------


def push(keys: list[tuple]) -> int:
    """Render each key for the groups that listen and send it; returns the
    number of messages sent. Never raises: the write has committed, and a
    missed push is repaired on reconnect."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return 0
        if isinstance(layer, InMemoryChannelLayer):
            return _push_in_memory(layer, keys)
        keys = _resolve(keys)
        listening = _on_sender_loop(_listening(layer, [g for key in keys for g in _groups(key)]))
        sent = 0
        for batch in _run_pages_first(keys):
            messages = _render(batch, listening)
            if messages:
                _on_sender_loop(_send_all(layer, messages))
            sent += len(messages)
        return sent
    except Exception as exc:  # a template, the database or Redis: none may fail the committed write
        if outages.is_connection_error(exc):
            outages.REDIS.failed(exc, outages.CHANGE_SAVED, logger=log)
            return 0
        log.warning("live update not sent; pages catch up on their next push, resync or reconnect",
                    exc_info=True)
        return 0


def _resolve(keys: list[tuple]) -> list[tuple]:
    """Run names (an approval names its run) and placements (their active
    runs) to ("run", kind, pk), deduplicated."""
    out = {}
    for key in keys:
        if key[0] == "runs-of":
            _, kind, namespace, name = key
            family = next(f for f in FAMILIES if f.run.KIND == kind)
            for pk in family.run.objects.filter(active=True, namespace=namespace,
                                                spec__placementName=name).values_list("pk", flat=True):
                out[("run", kind, pk)] = None
            continue
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
    if key[0] in ("overview", "freeze-banner"):
        return [OVERVIEW_GROUP]
    if key[0] == "approvals":
        return [APPROVALS_GROUP]
    return [run_group(key[1], key[2], audience) for audience in AUDIENCES]


def _render(keys: list[tuple], listening: set[str]) -> list[tuple[str, str]]:
    """(group, html) for every group someone listens to."""
    messages = []
    for key in keys:
        if key[0] in ("overview", "freeze-banner"):
            if OVERVIEW_GROUP in listening:
                messages.append((OVERVIEW_GROUP, render_overview() if key[0] == "overview" else render_freeze_banner()))
            continue
        if key[0] == "approvals":
            if APPROVALS_GROUP in listening:
                messages.append((APPROVALS_GROUP, render_approvals_count()))
            continue
        _, kind, pk = key
        audiences = [a for a in AUDIENCES if run_group(kind, pk, a) in listening]
        if audiences:
            messages += [(run_group(kind, pk, a), html) for a, html in render_run_push(kind, pk, audiences).items()]
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


def _push_in_memory(layer: InMemoryChannelLayer, keys: list[tuple]) -> int:
    loop = _server_loop
    if loop is None or loop.is_closed():
        return 0  # no socket ever connected to this process: nobody to tell
    keys = _resolve(keys)
    listening = {g for key in keys for g in _groups(key) if layer.groups.get(g)}
    sent = 0
    for batch in _run_pages_first(keys):
        messages = _render(batch, listening)
        if messages and _on_server_loop(lambda messages=messages: _send_all(layer, messages)):
            sent += len(messages)
    return sent


def _run_pages_first(keys: list[tuple]) -> list[list[tuple]]:
    """The run pages' keys, then the rest (the overview, the nav's count):
    a run page's push is sent before the others are rendered, so a person
    watching the run does not wait for the overview's render."""
    runs = [key for key in keys if key[0] == "run"]
    return [batch for batch in (runs, [key for key in keys if key[0] != "run"]) if batch]


def _on_server_loop(make_coroutine) -> bool:
    """Run make_coroutine() on the loop the in-memory sockets live on: from
    that loop, scheduled; from another thread, handed over and waited for.
    Returns whether it was handed over in time."""
    loop = _server_loop
    if loop is None or loop.is_closed():
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:  # already on the sockets' loop: just schedule the sends
        loop.create_task(make_coroutine())
        return True
    future = asyncio.run_coroutine_threadsafe(make_coroutine(), loop)
    try:
        future.result(timeout=SEND_TIMEOUT)
    except FutureTimeout:
        log.warning("live update still queued after %.0f s; the server's loop is busy", SEND_TIMEOUT)
        return False
    return True


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
