"""Declaring and ending freezes, noticing their windows open and close, and
break-glass approvals during one (docs/freezes.md).

Every write appends an audit Event and publishes FreezeChanged inside its
transaction: the wake-up then advances every run (a freeze that stops
holding resumes them within one engine pass), the live push redraws the
banner, notifications tell the subscribers.
"""

import re
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from rollouts import changes, clock, freeze_windows
from rollouts import models as m
from rollouts.api.errors import BadRequest, NotFound
from rollouts.api.labels import parse_selector

from .events import record

FREEZE_KIND = "Freeze"
BREAK_GLASS_KIND = "BreakGlass"
SYSTEM = "system:freeze"  # the actor of a window opening or closing
REASON_LIMIT = 1000
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class FreezeInvalid(BadRequest):
    """A freeze that cannot be declared; the message names the field."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")


def may_declare(user) -> bool:
    """Admins declare and end freezes; release managers too when
    FLEET_FREEZE_BY_RELEASE_MANAGERS is on."""
    if user.has_perm("rollouts.administer_fleet"):
        return True
    return bool(getattr(settings, "FLEET_FREEZE_BY_RELEASE_MANAGERS", False)) and user.has_perm("rollouts.operate_run")


def freeze_validate(*, name: str, reason: str, starts_at, ends_at, windows: str, time_zone: str, selector: str,
               now: datetime) -> dict:
    """The fields of a freeze, checked; FreezeInvalid names the first bad field."""
    if not _NAME.match(name or ""):
        raise FreezeInvalid("name", f"{name!r} must be lowercase letters, digits and '-', at most 63 characters")
    reason = (reason or "").strip()
    if not reason:
        raise FreezeInvalid("reason", "say why the line stops (it is shown on every page)")
    if len(reason) > REASON_LIMIT:
        raise FreezeInvalid("reason", f"{len(reason)} characters long: at most {REASON_LIMIT}")
    starts_at = starts_at or now
    if ends_at is not None and ends_at <= max(starts_at, now):
        raise FreezeInvalid("ends_at", "must be in the future and after the start")
    try:
        parsed = freeze_windows.parse_windows(windows)
        freeze_windows.zone(time_zone or "UTC")
    except freeze_windows.WindowError as exc:
        raise FreezeInvalid("time_zone" if "time zone" in str(exc) else "windows", str(exc)) from None
    try:
        selector_object = parse_selector(selector or "")
    except BadRequest as exc:
        raise FreezeInvalid("selector", str(exc)) from None
    return {"name": name, "reason": reason, "starts_at": starts_at, "ends_at": ends_at,
            "windows": freeze_windows.format_windows(parsed), "time_zone": time_zone or "UTC",
            "selector": (selector or "").strip(), "selector_object": selector_object}


def _details(freeze: m.Freeze, **extra) -> dict:
    details = {"reason": freeze.reason, "startsAt": clock.rfc3339(freeze.starts_at),
               "endsAt": clock.rfc3339(freeze.ends_at) if freeze.ends_at else None,
               "windows": freeze.windows, "timeZone": freeze.time_zone, "selector": freeze.selector, **extra}
    return {k: v for k, v in details.items() if v not in ("", None)}


@transaction.atomic
def freeze_create(*, name: str, reason: str, actor: str, starts_at: datetime | None = None,
                  ends_at: datetime | None = None, windows: str = "", time_zone: str = "UTC", selector: str = "",
                  client_address: str = "", via: str = "") -> m.Freeze:
    """Declare a freeze: from `starts_at` (now when None) until `ends_at`
    (None: until ended), inside weekly `windows` in `time_zone` when given,
    over the placements matching `selector` (all when blank). Appends a
    `created` Event and publishes FreezeChanged. FreezeInvalid names a bad field."""
    now = clock.now()
    fields = freeze_validate(name=name, reason=reason, starts_at=starts_at, ends_at=ends_at, windows=windows,
                        time_zone=time_zone, selector=selector, now=now)
    freeze = m.Freeze(**fields, declared_by=actor, created_at=now)
    freeze.active = freeze.holds_at(now)
    try:
        with transaction.atomic():
            freeze.save(force_insert=True)
    except IntegrityError:
        raise FreezeInvalid("name", f"a freeze named {name!r} exists already (names are never reused)") from None
    record(actor=actor, action=m.Event.Action.CREATED, kind_name=FREEZE_KIND, name=freeze.name, reason="FreezeDeclared",
           message=freeze.reason, details=_details(freeze, holding=freeze.active, client_address=client_address, via=via))
    changes.publish(changes.FreezeChanged(freeze.name, freeze.active))
    return freeze


@transaction.atomic
def freeze_update(*, freeze: m.Freeze, actor: str, reason: str, ends_at: datetime | None, windows: str,
                  time_zone: str, selector: str, client_address: str = "", via: str = "") -> m.Freeze:
    """Edit a freeze that has not ended (the Django admin); audited, publishes FreezeChanged."""
    locked = m.Freeze.objects.select_for_update().get(pk=freeze.pk)
    if locked.ended_at is not None:
        raise FreezeInvalid("name", f"freeze {locked.name} has ended and cannot be edited")
    now = clock.now()
    fields = freeze_validate(name=locked.name, reason=reason, starts_at=locked.starts_at, ends_at=ends_at,
                        windows=windows, time_zone=time_zone, selector=selector, now=now)
    for field, value in fields.items():
        setattr(locked, field, value)
    locked.active = locked.holds_at(now)
    locked.save()
    record(actor=actor, action=m.Event.Action.CONFIGURED, kind_name=FREEZE_KIND, name=locked.name,
           reason="FreezeEdited", message=locked.reason,
           details=_details(locked, holding=locked.active, client_address=client_address, via=via))
    changes.publish(changes.FreezeChanged(locked.name, locked.active))
    return locked


@transaction.atomic
def freeze_end(*, name: str, actor: str, client_address: str = "", via: str = "") -> m.Freeze:
    """End a freeze now: it never holds again. Every run it held resumes
    within one engine pass (FreezeChanged wakes them all); mirrored runs it
    stopped are resumed by the next mirror enforcement. NotFound, or
    BadRequest when it has ended already."""
    freeze = m.Freeze.objects.select_for_update().filter(name=name).first()
    if freeze is None:
        raise NotFound("freezes", name)
    if freeze.ended_at is not None:
        raise BadRequest(f"freeze {name} was ended already, by {freeze.ended_by} at {freeze.ended_at:%Y-%m-%d %H:%M} UTC")
    was_holding = freeze.active
    freeze.ended_at, freeze.ended_by, freeze.active = clock.now(), actor, False
    freeze.save(update_fields=["ended_at", "ended_by", "active"])
    record(actor=actor, action=m.Event.Action.STATE_CHANGED, kind_name=FREEZE_KIND, name=freeze.name,
           reason="FreezeEnded", message=f"ended by {actor}: {freeze.reason}",
           details=_details(freeze, wasHolding=was_holding, client_address=client_address, via=via))
    changes.publish(changes.FreezeChanged(freeze.name, False))
    return freeze


def freezes_sync(*, now: datetime | None = None) -> float | None:
    """Notice freezes that started or stopped holding by the clock (a start
    time reached, an end passed, a weekly window opening or closing): flip
    their `active` column with compare-and-set, so each transition is
    published once (FreezeChanged) and audited once, however many engine
    loops or beat workers look. Returns seconds until the next transition
    of any freeze, or None. One query when nothing changes."""
    now = now or clock.now()
    open_freezes = m.Freeze.objects.filter(Q(ended_at=None, ends_at=None) | Q(ended_at=None, ends_at__gt=now)
                                           | Q(active=True))
    next_at = None
    for freeze in open_freezes:
        holds = freeze.holds_at(now)
        if holds != freeze.active:
            _flip(freeze, holds, now)
        upcoming = freeze.next_change(now)
        if upcoming is not None and (next_at is None or upcoming < next_at):
            next_at = upcoming
    return None if next_at is None else max(0.0, (next_at - now).total_seconds())


def _flip(freeze: m.Freeze, holds: bool, now: datetime) -> None:
    with transaction.atomic():
        if not m.Freeze.objects.filter(pk=freeze.pk, active=freeze.active).update(active=holds):
            return  # another loop or worker saw it first and published it
        if freeze.recurring and (freeze.ends_at is None or now < freeze.ends_at) and now >= freeze.starts_at:
            reason = "FreezeWindowOpened" if holds else "FreezeWindowClosed"
        else:
            reason = "FreezeStarted" if holds else "FreezeExpired"
        record(actor=SYSTEM, action=m.Event.Action.STATE_CHANGED, kind_name=FREEZE_KIND, name=freeze.name,
               reason=reason, message=freeze.reason, details=_details(freeze, holding=holds))
        changes.publish(changes.FreezeChanged(freeze.name, holds))
