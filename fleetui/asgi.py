"""ASGI entry point: HTTP to Django, WebSockets to the live-update consumers.

Django's app is built first, so that the app registry is ready before
rollouts.routing imports models. A WebSocket must come from a page of this
very site, scheme and port included (fleetui/origins.py: a cross-site page
cannot open one with the person's cookie), and carries the session of the
signed-in person.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from fleetui.origins import SameOriginValidator  # noqa: E402
from rollouts.routing import websocket_urlpatterns  # noqa: E402

# `daphne fleetui.asgi:application` in development serves /static/ as
# runserver does; in production a proxy or CDN serves `collectstatic`'s output.
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app

application = ProtocolTypeRouter({
    "http": http_app,
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
