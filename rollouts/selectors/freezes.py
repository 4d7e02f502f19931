"""Reads of freezes: what holds now (the engine, one query per tick), the
banner on every page, and the freezes page."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.family import family_of
from rollouts.engine.freezes import FreezeInfo, holding
from rollouts.models import Freeze


def _candidates(now: datetime):
    """Freezes that may hold at `now`: not ended, started, not past their end (one query)."""
    return Freeze.objects.filter(Q(ends_at=None) | Q(ends_at__gt=now), ended_at=None, starts_at__lte=now)


def info_of(freeze: Freeze, now: datetime) -> FreezeInfo:
    return FreezeInfo(name=freeze.name, reason=freeze.reason, declared_by=freeze.declared_by,
                      until=freeze.next_change(now), selector=freeze.selector_object or None,
                      selector_text=freeze.selector)


def freezes_holding(now: datetime | None = None) -> list[FreezeInfo]:
    """The freezes holding the line at `now`, newest first, in one query:
    the engine reads this once per tick and hands it to every run's world."""
    now = now or clock.now()
    return [info_of(f, now) for f in _candidates(now) if f.holds_at(now)]


@dataclass(frozen=True)
class FreezeRow:
    """A freeze as the freezes page and `fleet freeze list` show it."""

    freeze: Freeze
    holding: bool
    state: str  # holding | scheduled | waiting for its window | ended | expired
    until: datetime | None


def freeze_rows(*, include_ended: bool = False, limit: int | None = None, now: datetime | None = None) -> list[FreezeRow]:
    """Every freeze that is not over (or all of them), newest first, at most `limit`; one query."""
    now = now or clock.now()
    queryset = Freeze.objects.all()
    if not include_ended:
        queryset = queryset.filter(Q(ends_at=None) | Q(ends_at__gt=now), ended_at=None)
    return [_row(f, now) for f in (queryset[:limit] if limit else queryset)]


def _row(freeze: Freeze, now: datetime) -> FreezeRow:
    holding = freeze.holds_at(now)
    if freeze.ended_at is not None:
        state = "ended"
    elif freeze.ends_at is not None and now >= freeze.ends_at:
        state = "expired"
    elif holding:
        state = "holding"
    elif now < freeze.starts_at:
        state = "scheduled"
    else:
        state = "waiting for its window"
    return FreezeRow(freeze, holding, state, freeze.next_change(now))


def freeze_holding_run(run, now: datetime | None = None) -> FreezeInfo | None:
    """The freeze holding `run` now, or None (two queries: the freezes, its placement's labels)."""
    if run is None:
        return None
    freezes = freezes_holding(now)
    if not freezes:
        return None
    placement = (family_of(run).placement.objects.filter(namespace=run.namespace,
                                                         name=(run.spec or {}).get("placementName", ""))
                 .values_list("labels", flat=True).first())
    return holding(freezes, placement or {})


def break_glass_of(request) -> m.BreakGlass | None:
    """The latest break-glass asked for this approval request (pending or confirmed), or None."""
    return m.BreakGlass.objects.filter(request_kind=request.KIND, request_namespace=request.namespace,
                                       request_name=request.name).first()


def break_glass_confirmed(request) -> bool:
    """Whether a second person confirmed a break-glass for this approval request."""
    return m.BreakGlass.objects.filter(request_kind=request.KIND, request_namespace=request.namespace,
                                       request_name=request.name).exclude(confirmed_at=None).exists()


def banner_freezes(now: datetime | None = None) -> list[FreezeInfo]:
    """What every page's banner shows: the freezes holding now (one query)."""
    return freezes_holding(now)
