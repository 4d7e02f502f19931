"""The request being served, for code that runs below the view without it:
the audit receivers of rollouts/signals.py, which record account changes
made through the admin (or any view) and need to know who made them.

Set by the `remember_request` middleware for the duration of one request (a
context variable: each thread and each async task sees its own).
"""

from contextvars import ContextVar

from .roles import client_address

_current = ContextVar("fleet_current_request", default=None)

SYSTEM_ACTOR = "system"


def remember_request(get_response):
    """Middleware: make the request known to request_actor() while it is served."""

    def middleware(request):
        token = _current.set(request)
        try:
            return get_response(request)
        finally:
            _current.reset(token)

    return middleware


def request_actor() -> tuple[str, dict]:
    """(actor, details) for an audit row written while a request is served:
    the signed-in person and their address; `system` and no address outside
    a request (a shell, a migration) or before sign-in completes (the
    groups an OIDC sign-in assigns)."""
    request = _current.get()
    if request is None:
        return SYSTEM_ACTOR, {}
    user = getattr(request, "user", None)
    actor = user.get_username() if user is not None and user.is_authenticated else SYSTEM_ACTOR
    return actor, {"client_address": client_address(request)}
