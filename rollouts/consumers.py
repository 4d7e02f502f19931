"""WebSocket consumers: they only listen. A page's socket joins the group of
what the page shows, sends the current state of it first (so a page that
reconnects after missing pushes is whole again), then forwards each push of
rollouts.broadcast. What the browser sends is ignored. Every socket also
hears the nav's "Approvals (n)" (broadcast.APPROVALS_GROUP); pages with no
live partial of their own open NavConsumer's socket for that alone.

Signed-in people with the viewer role only: anyone else's socket is closed
before it is accepted (the origin is checked in fleetui/origins.py). Access
is checked again while the socket is open, because a socket outlives the
request that opened it:

- a logout closes the sockets of that session at once (broadcast.sockets_revoke);
- a deactivation, a lost or changed role, a new password make the user's
  sockets check again (broadcast.sockets_recheck, from rollouts/signals.py);
- before forwarding a push, and before re-joining its groups, a socket checks
  its session and audience again if its last check is older than
  RECHECK_SECONDS (what the signals cannot see: a session that expired, a
  change made by SQL or in another process without Redis); after forwarding
  one it renews a check older than RENEW_SECONDS in the background, so while
  pushes keep coming none waits for a check.

A socket that may no longer listen is closed (4401 signed out, 4403 no role);
one whose audience changed is closed with 4409, and the page reconnects to
get the buttons of its new role.
"""

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from rollouts import broadcast
from rollouts.controllers.family import FAMILIES

log = logging.getLogger(__name__)
UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, AUDIENCE_CHANGED = 4401, 4403, 4404, 4409
# A push is forwarded on a check at most this old (one session and user read
# per socket every RENEW_SECONDS or so, only while pushes arrive).
RECHECK_SECONDS = 5.0
# Renewed ahead, after a push, once this old: the sockets that opened a page
# together fall due together, and a push waiting for its socket's check waited
# for all of theirs in the server's one sync thread (~100 ms for 50 sockets).
RENEW_SECONDS = 3.0
# Channel layers drop a group member a day after it joined (group_expiry):
# a page left open overnight would stop hearing pushes without knowing.
REJOIN_SECONDS = 3600


@dataclass
class _Page:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: int = 0  # renders begun
    rendered_by: int = 0  # which of them made `html`
    html: str = ""
    waiting: int = 0  # sockets in SharedRenders.render() for this page


class SharedRenders:
    """The first message of the sockets that open one page at once, rendered
    once for all of them, one render at a time. Fifty viewers opening a
    1,000-cluster run's page rendered its whole timeline fifty times (~50 ms
    each) on the server's one thread-sensitive thread; now two or three.

    A socket takes a ticket once it has joined its groups and uses only a
    render begun after that: one read before it joined could miss a change
    whose push went out before it joined, and nothing would repair it until
    the next push. A page's entry lives only while sockets wait for it."""

    def __init__(self):
        self.pages: dict[tuple, _Page] = {}

    async def render(self, key: tuple, render) -> str:
        """render() in the sync thread, or its result for another socket of
        `key` if that render began after this call."""
        page = self.pages.setdefault(key, _Page())
        ticket = page.started
        page.waiting += 1
        try:
            async with page.lock:
                if page.rendered_by > ticket:
                    return page.html
                page.started += 1
                number = page.started
                page.html, page.rendered_by = await database_sync_to_async(render)(), number
                return page.html
        finally:
            page.waiting -= 1
            if not page.waiting:
                del self.pages[key]


FIRST_MESSAGES = SharedRenders()


class LiveConsumer(AsyncWebsocketConsumer):
    """Join the groups of subscribe(), send render() first, then every push."""

    joined: list[str]
    rejoining: asyncio.Task | None = None
    renewing: asyncio.Task | None = None
    audience: str | None = None
    session_key: str | None = None
    checked_at: float = 0.0
    closing: bool = False

    async def dispatch(self, message):
        """Hand a message to its handler, without Channels' close_old_connections()
        first. Channels runs that in the process's one thread-sensitive thread
        before every message, so each push to each socket waited in line
        behind whatever sync work that thread had queued: 49 sockets opening a
        1,000-cluster run's page, each rendering its whole timeline there,
        held every push to every socket of this server for seconds. These
        handlers reach the database only through database_sync_to_async,
        which closes stale connections itself, before and after each call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def subscribe(self, audience: str) -> list[str]:
        """The groups to join for this person's audience; [] if there is nothing to show."""
        raise NotImplementedError

    def render(self, audience: str) -> str:
        """The page's partials as they are now, out of band."""
        raise NotImplementedError

    async def connect(self):
        self.joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        audience = await database_sync_to_async(broadcast.audience_of)(user)
        if audience is None:
            await self.close(code=FORBIDDEN)
            return
        groups = await database_sync_to_async(self.subscribe)(audience)
        if not groups:
            await self.close(code=NOT_FOUND)
            return
        page = (type(self).__name__, audience, *groups)  # what the first message shows
        broadcast.note_server_loop()
        self.audience, self.checked_at = audience, time.monotonic()
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        groups = list(dict.fromkeys([*groups, broadcast.APPROVALS_GROUP, broadcast.user_group(user.pk)]))
        if self.session_key:
            groups.append(broadcast.session_group(self.session_key))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        self.rejoining = asyncio.create_task(self.rejoin_now_and_then())
        # Rendered after joining: a change committed from here on is pushed
        # too, so nothing falls between this state and the next push.
        current = await FIRST_MESSAGES.render(page, functools.partial(self.render_with_count, audience))
        if current:
            await self.send(text_data=current)

    def render_with_count(self, audience: str) -> str:
        return self.render(audience) + broadcast.render_approvals_count()

    async def still_allowed(self, *, force: bool = False) -> bool:
        """Whether this socket may still hear what it joined; closes it if not.
        Reads the session and the user again unless the last check is younger
        than RECHECK_SECONDS (or force)."""
        if self.closing:
            return False
        if not force and time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        signed_in, audience = await database_sync_to_async(broadcast.session_audience)(self.session_key)
        self.checked_at = time.monotonic()
        if signed_in and audience == self.audience:
            return True
        await self.close_for(UNAUTHENTICATED if not signed_in else FORBIDDEN if audience is None
                             else AUDIENCE_CHANGED)
        return False

    async def close_for(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    async def rejoin_now_and_then(self):
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            if not await self.still_allowed(force=True):
                return
            try:
                for group in self.joined:
                    await self.channel_layer.group_add(group, self.channel_name)
            except Exception:  # Redis away: the socket closes and the page reconnects anyway
                log.info("could not renew the groups of %s", self.channel_name, exc_info=True)

    def renew_check_ahead(self) -> None:
        """Check the session and audience again in the background if the last
        check is older than RENEW_SECONDS (one at a time), so the next push
        finds it fresh; a check that fails is left to that push."""
        if self.renewing is not None and not self.renewing.done():
            return
        if time.monotonic() - self.checked_at >= RENEW_SECONDS:
            self.renewing = asyncio.create_task(self.renew_check())

    async def renew_check(self):
        try:
            await self.still_allowed(force=True)
        except Exception:  # the database away: the next push checks, and fails, itself
            log.info("could not check the session of %s again", self.channel_name, exc_info=True)

    async def disconnect(self, code):
        for task in (self.rejoining, self.renewing):
            if task is not None:
                task.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Listen-only: nothing a browser sends changes anything."""

    async def live_html(self, event):
        """A push (broadcast.MESSAGE_TYPE): already rendered for this group;
        forwarded only while this socket may still hear it."""
        if await self.still_allowed():
            await self.send(text_data=event["html"])
            self.renew_check_ahead()

    async def access_revoked(self, event):
        """broadcast.REVOKE_TYPE: the session logged out."""
        await self.close_for(UNAUTHENTICATED)

    async def access_recheck(self, event):
        """broadcast.RECHECK_TYPE: the account changed; check again now."""
        await self.still_allowed(force=True)


class RunConsumer(LiveConsumer):
    """A run's page (/ws/runs/<kind>/<pk>/): its timeline partial."""

    def subscribe(self, audience: str) -> list[str]:
        route = self.scope["url_route"]["kwargs"]
        family = next((f for f in FAMILIES if f.run.KIND.lower() == route["kind"]), None)
        if family is None or not family.run.objects.filter(pk=route["pk"]).exists():
            return []
        self.run_key = (family.run.KIND, route["pk"])
        return [broadcast.run_group(*self.run_key, audience)]

    def render(self, audience: str) -> str:
        return broadcast.render_run(*self.run_key, [audience]).get(audience, "")


class OverviewConsumer(LiveConsumer):
    """The overview (/ws/overview/): its live partial."""

    def subscribe(self, audience: str) -> list[str]:
        return [broadcast.OVERVIEW_GROUP]

    def render(self, audience: str) -> str:
        return broadcast.render_overview()


class NavConsumer(LiveConsumer):
    """Any other page (/ws/nav/): only the nav's count of waiting gates."""

    def subscribe(self, audience: str) -> list[str]:
        return [broadcast.APPROVALS_GROUP]

    def render(self, audience: str) -> str:
        return ""
