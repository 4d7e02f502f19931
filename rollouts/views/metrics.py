"""/metrics for Prometheus: no login, no session; a bearer token or an
allowlisted client address (docs/metrics.md)."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from rollouts import metrics


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """200 with the exposition text; 401 without the right token (when one is
    configured); 403 when no token is configured and the address is not allowed."""
    if not (_token_matches(request) or _address_allowed(request)):
        if settings.FLEET_METRICS_TOKEN:
            response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse("this address may not read the metrics\n", status=403, content_type="text/plain")
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)


def _token_matches(request: HttpRequest) -> bool:
    token = settings.FLEET_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _address_allowed(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:127.0.0.1 on a dual-stack socket
    return any(address in network for network in settings.FLEET_METRICS_ALLOW)
