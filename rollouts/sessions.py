"""The session's idle timeout: a signed-in session lives SESSION_COOKIE_AGE
(FLEET_SESSION_IDLE_MINUTES) from a person's last request, renewed at most
once a minute so that the session row is not written on every request."""

import time

# A page's automatic refresh (static/live.js sets it on htmx polling): not activity.
POLL_HEADER = "X-Fleet-Poll"
SEEN_KEY = "fleet_seen"
TOUCH_SECONDS = 60


def session_touch(session) -> None:
    """Mark the session as used now: it is saved (when the response goes out)
    with a new expiry, SESSION_COOKIE_AGE from now."""
    session[SEEN_KEY] = int(time.time())


def session_activity(get_response):
    """Middleware: renew a signed-in session on a person's request, at most
    once a minute (SESSION_SAVE_EVERY_REQUEST stays off). A session not
    renewed for SESSION_COOKIE_AGE is gone, and the next request signs in
    again. A page's automatic refreshes (POLL_HEADER) do not renew it; a
    login does (rollouts/signals.py), so its first page writes nothing."""

    def middleware(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and POLL_HEADER not in request.headers:
            if time.time() - request.session.get(SEEN_KEY, 0) >= TOUCH_SECONDS:
                session_touch(request.session)
        return get_response(request)

    return middleware
