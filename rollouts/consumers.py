"""WebSocket consumers: they only listen. A page's socket joins the group of
what the page shows, sends the current state of it first (so a page that
reconnects after missing pushes is whole again), then forwards each push of
rollouts.broadcast. What the browser sends is ignored.

Signed-in people with the viewer role only: anyone else's socket is closed
before it is accepted (the origin is checked in fleetui/asgi.py).
"""

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from rollouts import broadcast
from rollouts.controllers.family import FAMILIES

log = logging.getLogger(__name__)
UNAUTHENTICATED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404
# Channel layers drop a group member a day after it joined (group_expiry):
# a page left open overnight would stop hearing pushes without knowing.
REJOIN_SECONDS = 3600


class LiveConsumer(AsyncWebsocketConsumer):
    """Join the groups of subscribe(), send render() first, then every push."""

    joined: list[str]
    rejoining: asyncio.Task | None = None

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
        broadcast.note_server_loop()
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        self.rejoining = asyncio.create_task(self.rejoin_now_and_then())
        # Rendered after joining: a change committed from here on is pushed
        # too, so nothing falls between this state and the next push.
        current = await database_sync_to_async(self.render)(audience)
        if current:
            await self.send(text_data=current)

    async def rejoin_now_and_then(self):
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                for group in self.joined:
                    await self.channel_layer.group_add(group, self.channel_name)
            except Exception:  # Redis away: the socket closes and the page reconnects anyway
                log.info("could not renew the groups of %s", self.channel_name, exc_info=True)

    async def disconnect(self, code):
        if self.rejoining is not None:
            self.rejoining.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Listen-only: nothing a browser sends changes anything."""

    async def live_html(self, event):
        """A push (broadcast.MESSAGE_TYPE): already rendered for this group."""
        await self.send(text_data=event["html"])


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
