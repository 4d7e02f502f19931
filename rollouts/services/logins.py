"""Logins in the audit log, and the login rate limit.

Every login, logout and failed login is an Event (actor: the user name
given, details: the client address). The rate limit counts the failed-login
Events themselves, so it holds across processes with no store of its own.
"""

from datetime import timedelta

from django.conf import settings

from rollouts import clock
from rollouts import models as m

from .events import record

USER_KIND = "User"
_FIELD = m.Event._meta.get_field("actor").max_length


def client_address(request) -> str:
    """The address the request came from, as the server saw it. Behind a
    proxy this is the proxy; X-Forwarded-For is not trusted on purpose."""
    return request.META.get("REMOTE_ADDR", "")


def login_record(*, action: str, username: str, client_address: str, reason: str = "",
                 message: str = "", via: str = "", extra: dict | None = None) -> m.Event:
    """Append a login, logout, failed-login or denied-login Event. `via`
    names a sign-in other than the password form (`oidc`); `extra` adds
    details (a provider's error code)."""
    username = username[:_FIELD]
    details = {"client_address": client_address, **({"via": via} if via else {}), **(extra or {})}
    return record(actor=username or "anonymous", action=action, kind_name=USER_KIND, name=username,
                  reason=reason, message=message, details=details)


def access_denied_record(request, *, reason: str) -> m.Event:
    """Append a `denied` Event for a signed-in person's refused action (a
    POST without the role it needs): who, from where, what, and why."""
    return record(actor=request.user.get_username(), action=m.Event.Action.DENIED, kind_name="Request",
                  name=request.path[:253], reason="MissingPermission", message=reason,
                  details={"client_address": client_address(request), "method": request.method})


def login_refusal(*, username: str, client_address: str) -> str:
    """Why a login attempt must be refused now ('' when it may go ahead).

    Refused after FLEET_LOGIN_MAX_FAILURES failed logins within the last
    FLEET_LOGIN_WINDOW_MINUTES, counted per client address (whatever user
    names it tried, and not reset by a success: a guesser who owns one
    account must not reset its count) and per user name (since that user's
    last successful login, so one forgotten password does not lock a person
    out for long)."""
    limit, minutes = settings.FLEET_LOGIN_MAX_FAILURES, settings.FLEET_LOGIN_WINDOW_MINUTES
    failures = m.Event.objects.filter(action=m.Event.Action.LOGIN_FAILED,
                                      time__gte=clock.now() - timedelta(minutes=minutes))
    wait = f"Try again in {minutes:g} minutes."
    if client_address and failures.filter(details__client_address=client_address).count() >= limit:
        return f"Too many failed logins from your address. {wait}"
    last_login = (m.Event.objects.filter(action=m.Event.Action.LOGIN, actor=username[:_FIELD])
                  .order_by("-id").values_list("id", flat=True).first())
    if failures.filter(actor=username[:_FIELD], id__gt=last_login or 0).count() >= limit:
        return f"Too many failed logins for this user name. {wait}"
    return ""
