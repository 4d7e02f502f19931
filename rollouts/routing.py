"""WebSocket routes (fleetui/asgi.py wraps them in the origin check and the
session auth). The paths are built by rollouts.broadcast for the pages."""

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/overview/", consumers.OverviewConsumer.as_asgi()),
    path("ws/nav/", consumers.NavConsumer.as_asgi()),
    path("ws/runs/<str:kind>/<int:pk>/", consumers.RunConsumer.as_asgi()),
]
