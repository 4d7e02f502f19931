"""Logins in the audit log, the login rate limit, and the throttle of
repeated `denied` rows.

Every login, logout and failed login is an Event (actor: the user name
given, details: the client address). Text taken from the request (a user
name tried, a path) is stored through `untrusted_text`: control characters
become visible escapes.

The rate limit is a pair of RateCounter rows per attempt (the client
address, the user name), checked and incremented in one transaction under a
row lock *before* the password is checked, so N processes taking 30 attempts
at once still check at most FLEET_LOGIN_MAX_FAILURES passwords. The database
is the shared place on purpose: the embedded mode has no Redis, and
production runs several web processes (a per-process cache would multiply
the limit by their number). An attempt holds its slot until it ends: a
failure keeps it (it is one of the failures), a success gives the address's
slot back and clears the user name's count.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from rollouts import clock
from rollouts import models as m

from .events import record, untrusted_text

USER_KIND = "User"
REQUEST_KIND = "Request"
_ACTOR = m.Event._meta.get_field("actor").max_length
_NAME = m.Event._meta.get_field("object_name").max_length
_KEY = m.RateCounter._meta.get_field("key").max_length
Scope = m.RateCounter.Scope

# Repeated denials of one kind for one actor and address: one row per window.
DENIED_WINDOW = timedelta(minutes=1)
# Counters idle this long are deleted (at least the login window).
_FORGET_AFTER = timedelta(days=1)


def client_address(request) -> str:
    """The address the request came from, as the server saw it. Behind a
    proxy this is the proxy; X-Forwarded-For is not trusted on purpose."""
    return request.META.get("REMOTE_ADDR", "")


def login_record(*, action: str, username: str, client_address: str, reason: str = "",
                 message: str = "", via: str = "", details: dict | None = None) -> m.Event:
    """Append a login, logout, failed-login or denied-login Event. The user
    name is whatever was typed: stored with its control characters escaped.
    `via` names a sign-in other than the password form (`oidc`); `details`
    adds to the client address (a provider's error code)."""
    actor = untrusted_text(username, _ACTOR)
    details = {"client_address": client_address, **({"via": via} if via else {}), **(details or {})}
    return record(actor=actor or "anonymous", action=action, kind_name=USER_KIND, name=actor,
                  reason=reason, message=message, details=details)


def access_denied_record(request, *, reason: str) -> m.Event | None:
    """Append a `denied` Event for a signed-in person's refused action (a
    POST without the role it needs): who, from where, what, and why. At
    most one row per person and address a minute (denied_throttle); None
    when this one was only counted."""
    actor, address = request.user.get_username(), client_address(request)
    suppressed = denied_throttle(reason="MissingPermission", actor=actor, client_address=address)
    if suppressed is None:
        return None
    return record(actor=untrusted_text(actor, _ACTOR), action=m.Event.Action.DENIED, kind_name=REQUEST_KIND,
                  name=untrusted_text(request.path, _NAME), reason="MissingPermission", message=reason,
                  details={"client_address": address, "method": untrusted_text(request.method, 16),
                           **_suppressed(suppressed)})


def login_denied_record(*, username: str, client_address: str, message: str) -> m.Event | None:
    """Append the `denied` Event of a login refused by the rate limit, at
    most once a minute per user name and address (denied_throttle)."""
    suppressed = denied_throttle(reason="TooManyFailedLogins", actor=username, client_address=client_address)
    if suppressed is None:
        return None
    return login_record(action=m.Event.Action.DENIED, username=username, client_address=client_address,
                        reason="TooManyFailedLogins", message=message, details=_suppressed(suppressed))


def _suppressed(count: int) -> dict:
    return {"suppressed_before": count} if count else {}


def denied_throttle(*, reason: str, actor: str, client_address: str) -> int | None:
    """Whether to write a `denied` row now. The first denial of (reason,
    actor, address) in a DENIED_WINDOW is written; the rest are only
    counted. Returns None when this one is only counted, else how many were
    counted and not written in the previous window (0 usually), for the row
    to carry as `suppressed_before`."""
    key = "\x1f".join((reason, actor, client_address))[:_KEY]
    now = clock.now()
    with transaction.atomic():
        row, created = _locked(Scope.DENIED, key, now)
        if created:
            row.count = 1
            suppressed = 0
        elif row.window_start <= now - DENIED_WINDOW:
            suppressed = max(row.count - 1, 0)
            row.window_start, row.count = now, 1
        else:
            row.count += 1
            suppressed = None
        row.save(update_fields=["window_start", "count"])
    return suppressed


def _locked(scope: str, key: str, now):
    """The counter row of (scope, key), created if missing, locked until the
    caller's transaction ends. Two processes creating it at once: one insert
    wins, the other's IntegrityError is caught by get_or_create, which then
    waits for the winner's lock and reads its row."""
    return m.RateCounter.objects.select_for_update().get_or_create(
        scope=scope, key=key, defaults={"window_start": now, "count": 0})


def _login_keys(username: str, client_address: str) -> list[tuple[str, str]]:
    keys = [(Scope.LOGIN_USER, username[:_KEY])]
    if client_address:
        keys.append((Scope.LOGIN_ADDRESS, client_address[:_KEY]))
    return sorted(keys)  # always locked in the same order: no deadlock between two attempts


def login_attempt_begin(*, username: str, client_address: str) -> str:
    """Take a slot for one login attempt, before its password is checked.
    Returns why it must be refused ('' when it may go ahead; the slot is then
    taken and must be ended with login_attempt_end on success).

    Refused once FLEET_LOGIN_MAX_FAILURES attempts are failed or being
    checked within FLEET_LOGIN_WINDOW_MINUTES (the window starts with the
    first of them), counted per client address (whatever user names it
    tried, and not reset by a success: a guesser who owns one account must
    not reset its count) and per user name (cleared by that user's
    successful login, so one forgotten password does not lock a person out
    for long). Check and increment are one transaction under the rows'
    locks: concurrent attempts cannot all pass the check."""
    limit, minutes = settings.FLEET_LOGIN_MAX_FAILURES, settings.FLEET_LOGIN_WINDOW_MINUTES
    now, window = clock.now(), timedelta(minutes=minutes)
    wait = f"Try again in {minutes:g} minutes."
    with transaction.atomic():
        rows = {scope: _locked(scope, key, now)[0] for scope, key in _login_keys(username, client_address)}
        for row in rows.values():
            if row.window_start <= now - window:
                row.window_start, row.count = now, 0
        if Scope.LOGIN_ADDRESS in rows and rows[Scope.LOGIN_ADDRESS].count >= limit:
            refusal = f"Too many failed logins from your address. {wait}"
        elif rows[Scope.LOGIN_USER].count >= limit:
            refusal = f"Too many failed logins for this user name. {wait}"
        else:
            refusal = ""
            for row in rows.values():
                row.count += 1
        for row in rows.values():
            row.save(update_fields=["window_start", "count"])
    m.RateCounter.objects.filter(window_start__lt=now - max(window, _FORGET_AFTER)).delete()
    return refusal


def login_attempt_end(*, username: str, client_address: str) -> None:
    """A successful attempt gives its slot back: the address's count goes
    down by one (its failures still count), the user name's count is
    cleared. A failed attempt is not ended: its slot is the failure."""
    counters = m.RateCounter.objects
    if client_address:
        counters.filter(scope=Scope.LOGIN_ADDRESS, key=client_address[:_KEY], count__gt=0).update(
            count=F("count") - 1)
    counters.filter(scope=Scope.LOGIN_USER, key=username[:_KEY]).update(count=0)
