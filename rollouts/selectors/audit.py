"""The audit log: filtering Event rows and paging through them by id.

Paging is keyset ("older than event N", "newer than event N"), never OFFSET
or COUNT(*): a page costs the same on a million rows as on a hundred, because
every filter column is indexed (in SQLite an index also orders by rowid).
Rows come newest first by id, or by (time, id) when a time range is given.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from rollouts import models as m
from rollouts.api.kinds import KindRegistry

PAGE_SIZE = 50
EXPORT_COLUMNS = ("id", "time", "actor", "action", "object_kind", "object_namespace", "object_name", "run",
                  "reason", "message", "comment", "client_address", "details")


@dataclass(frozen=True, slots=True)
class EventRow:
    """An audit Event as an events table shows it (templatetags `event_rows`),
    read without building the model: a run page's push reads its latest events
    each time, and the model's hash-chain fields are not shown."""

    pk: int
    time: datetime
    actor: str
    action: str
    object_kind: str
    object_namespace: str
    object_name: str
    details: dict
    reason: str
    message: str


def event_rows(events, limit: int) -> list[EventRow]:
    """The newest `limit` of the Event queryset `events`, newest first."""
    return [EventRow(*row) for row in events.order_by("-id").values_list(*EventRow.__slots__)[:limit]]


def _parse_time(text: str) -> datetime:
    """`2026-03-02T21:27`, `2026-03-02 21:27:00` or a date; naive means UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class AuditFilter:
    """What a person filters the audit log by (all optional, all exact)."""

    actor: str = ""
    kind: str = ""
    name: str = ""
    action: str = ""
    run: str = ""
    since: str = ""
    until: str = ""
    errors: list[str] = field(default_factory=list)

    FIELDS = ("actor", "kind", "name", "action", "run", "since", "until")

    @classmethod
    def from_params(cls, params) -> "AuditFilter":
        return cls(**{f: str(params.get(f, "") or "").strip()[:253] for f in cls.FIELDS})

    def params(self) -> dict:
        """The non-empty filters, for links that keep them."""
        return {f: getattr(self, f) for f in self.FIELDS if getattr(self, f)}

    def queryset(self, kinds: list[str]):
        """The filtered rows; an unreadable time is reported, not applied."""
        qs = m.Event.objects.all()
        for column, value in (("actor", self.actor), ("action", self.action), ("run", self.run),
                              ("object_kind", self.kind), ("object_name", self.name)):
            if value:
                qs = qs.filter(**{column: value})
        if self.name and not self.kind:
            qs = qs.filter(object_kind__in=kinds)  # lets the (kind, name) index serve a name alone
        for label, value, lookup in (("since", self.since, "time__gte"), ("until", self.until, "time__lt")):
            if value:
                try:
                    qs = qs.filter(**{lookup: _parse_time(value)})
                except ValueError:
                    self.errors.append(f"{label}: {value!r} is not a date and time (use 2026-03-02T21:27)")
        return qs


@dataclass
class AuditPage:
    rows: list
    newer: int | None  # pass as ?after= for the newer page
    older: int | None  # pass as ?before= for the older page


def _cursor(text) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


def event_kinds() -> list[str]:
    """Every kind name the hub knows, for the filter's choices."""
    return sorted({k.kind for k in KindRegistry().kinds})


def _beyond(qs, cursor: int, *, newer: bool, by_time: bool):
    """Rows past the cursor row, in id order or, with a time filter, in
    (time, id) order: then the time index serves both the range and the
    order, instead of sorting every row of a long window."""
    if not by_time:
        return qs.filter(id__gt=cursor) if newer else qs.filter(id__lt=cursor)
    moment = m.Event.objects.filter(pk=cursor).values_list("time", flat=True).first()
    if moment is None:
        return qs.none()
    if newer:
        return qs.filter(time__gte=moment).exclude(time=moment, id__lte=cursor)
    return qs.filter(time__lte=moment).exclude(time=moment, id__gte=cursor)


def audit_page(flt: AuditFilter, *, kinds: list[str], before=None, after=None, size: int = PAGE_SIZE) -> AuditPage:
    """Newest first. One query (two with a time filter and a cursor): size+1
    rows tell whether another page exists."""
    qs = flt.queryset(kinds)
    by_time = bool(flt.since or flt.until)
    order = ("time", "id") if by_time else ("id",)
    before, after = _cursor(before), _cursor(after)
    if after is not None:
        rows = list(_beyond(qs, after, newer=True, by_time=by_time).order_by(*order)[: size + 1])
        more = len(rows) > size
        rows = rows[:size][::-1]
        return AuditPage(rows, rows[0].id if more and rows else None, rows[-1].id if rows else None)
    if before is not None:
        qs = _beyond(qs, before, newer=False, by_time=by_time)
    rows = list(qs.order_by(*(f"-{f}" for f in order))[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return AuditPage(rows, rows[0].id if before is not None and rows else None, rows[-1].id if more else None)


def audit_export_rows(flt: AuditFilter, *, kinds: list[str]):
    """Every filtered row as a dict of EXPORT_COLUMNS, oldest first, streamed."""
    for e in flt.queryset(kinds).order_by("id").iterator(chunk_size=2000):
        details = e.details or {}
        yield {"id": e.id, "time": e.time.isoformat(), "actor": e.actor, "action": e.action,
               "object_kind": e.object_kind, "object_namespace": e.object_namespace, "object_name": e.object_name,
               "run": e.run, "reason": e.reason, "message": e.message, "comment": details.get("comment", ""),
               "client_address": details.get("client_address", ""), "details": details}
