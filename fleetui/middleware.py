"""Security headers Django does not set by itself, and the session's idle timeout."""

import time

from django.conf import settings
from django.utils.cache import add_never_cache_headers

# Pages carry no inline script or style: everything comes from static/.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
# A page's automatic refresh (static/live.js sets it on htmx polling): not activity.
POLL_HEADER = "X-Fleet-Poll"
SEEN_KEY = "fleet_seen"
TOUCH_SECONDS = 60


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return middleware


def no_store(get_response):
    """Dashboard pages, fragments and audit exports are never kept by the
    browser or a proxy (`Cache-Control: no-store`): after a logout, Back or a
    shared machine's cache must not show them. /static/ is left cacheable."""

    def middleware(request):
        response = get_response(request)
        if not request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            add_never_cache_headers(response)
        return response

    return middleware


def session_activity(get_response):
    """Renew a signed-in session on a person's request, at most once a
    minute: the session row is written only then, not on every request
    (SESSION_SAVE_EVERY_REQUEST stays off). Renewing moves its expiry to
    SESSION_COOKIE_AGE (FLEET_SESSION_IDLE_MINUTES) from now; a session not
    renewed for that long is gone, and the next request signs in again.
    A page's automatic refreshes (the POLL_HEADER) do not renew it."""

    def middleware(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and POLL_HEADER not in request.headers:
            now = int(time.time())
            if now - request.session.get(SEEN_KEY, 0) >= TOUCH_SECONDS:
                request.session[SEEN_KEY] = now  # marks it modified: saved with a new expiry
        return get_response(request)

    return middleware
