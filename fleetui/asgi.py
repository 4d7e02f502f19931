"""ASGI entry point: HTTP to Django, WebSockets to the live-update consumers.

Django's app is built first, so that the app registry is ready before
rollouts.routing imports models. A WebSocket must come from a page of this
very site, scheme and port included (fleetui/origins.py: a cross-site page
cannot open one with the person's cookie), and carries the session of the
signed-in person. Static files are Django's too
(fleetui.middleware.StaticFilesMiddleware), with or without DEBUG.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from fleetui.origins import SameOriginValidator  # noqa: E402
from rollouts.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
