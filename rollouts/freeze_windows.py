"""Weekly freeze windows, time zone aware: pure math, stdlib only.

A recurring freeze holds the line inside its weekly windows, written as

    Sat 00:00-Mon 06:00        (one window; it may wrap past Sunday)
    Fri 18:00-Mon 06:00, Wed 12:00-Wed 13:00   (several, comma separated)

in an IANA time zone (Europe/Berlin). Wall-clock times are what people mean
("no deploys before 06:00 Monday, Berlin"), so a window follows its zone
through daylight saving time: on a DST change the window is an hour longer
or shorter in UTC, never shifted. A wall time that does not exist (the hour
skipped in spring) is read with fold=0, i.e. as the time before the jump, so
the window opens at the jump; an ambiguous one (the hour repeated in autumn)
is its first occurrence.

Why not cron: a freeze is an interval, and a cron line names instants; a
cron-based freeze needs a second field (a duration) and a library (croniter's
maintenance is shaky). Weekly windows cover "weekends" and "Friday evening
to Monday morning", which is what change freezes are in practice; one-off
freezes (a holiday, an incident) are a start and an end. docs/freezes.md.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEK_MINUTES = 7 * 24 * 60
_WINDOW = re.compile(r"^\s*(?P<d1>[A-Za-z]{3})\s+(?P<t1>\d{1,2}:\d{2})\s*[-–]\s*(?P<d2>[A-Za-z]{3})\s+(?P<t2>\d{1,2}:\d{2})\s*$")


class WindowError(ValueError):
    """A window or time zone that cannot be read; the message names it."""


@dataclass(frozen=True)
class Window:
    """One weekly window: minutes since Monday 00:00 (wall clock), start and end."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_format(self.start)}-{_format(self.end)}"

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps past Sunday 24:00


def _format(minute: int) -> str:
    day, rest = divmod(minute, 24 * 60)
    return f"{DAYS[day]} {rest // 60:02d}:{rest % 60:02d}"


def _minute(day: str, hhmm: str, text: str) -> int:
    name = day[:1].upper() + day[1:].lower()
    if name not in DAYS:
        raise WindowError(f"{text!r}: {day!r} is not a day (one of {', '.join(DAYS)})")
    hours, minutes = (int(part) for part in hhmm.split(":"))
    if hours > 23 or minutes > 59:
        raise WindowError(f"{text!r}: {hhmm!r} is not a time of day (00:00 to 23:59)")
    return DAYS.index(name) * 24 * 60 + hours * 60 + minutes


def parse_windows(text: str) -> list[Window]:
    """`Sat 00:00-Mon 06:00, Wed 12:00-Wed 13:00` as Windows; WindowError names the bad part."""
    windows = []
    for part in (p for p in (text or "").split(",") if p.strip()):
        found = _WINDOW.match(part)
        if not found:
            raise WindowError(f"{part.strip()!r} is not a weekly window like 'Sat 00:00-Mon 06:00'")
        start, end = _minute(found["d1"], found["t1"], part.strip()), _minute(found["d2"], found["t2"], part.strip())
        if start == end:
            raise WindowError(f"{part.strip()!r} is empty: its start and end are the same time")
        windows.append(Window(start, end))
    return windows


def format_windows(windows: list[Window]) -> str:
    return ", ".join(str(w) for w in windows)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; WindowError when there is none by that name."""
    try:
        if name:
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise WindowError(f"{name!r} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)")


def _week_minute(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return local.weekday() * 24 * 60 + local.hour * 60 + local.minute


def in_windows(windows: list[Window], tz: ZoneInfo, moment: datetime) -> bool:
    """Whether `moment` (aware) falls inside one of the weekly windows, in `tz`."""
    minute = _week_minute(moment, tz)
    return any(w.contains(minute) for w in windows)


def next_change(windows: list[Window], tz: ZoneInfo, moment: datetime) -> datetime | None:
    """The first instant after `moment` at which `in_windows` changes, or
    None when it never does (no windows, or windows covering the week).

    The candidates are every window edge as a wall time in the eight days
    from `moment`'s local date, each converted to UTC (so DST is honoured);
    the earliest one after `moment` where the answer differs is returned."""
    if not windows:
        return None
    now_in = in_windows(windows, tz, moment)
    local = moment.astimezone(tz)
    monday = datetime(local.year, local.month, local.day, tzinfo=tz) - timedelta(days=local.weekday())
    candidates = []
    for week in (0, 1):
        for edge in {w.start for w in windows} | {w.end for w in windows}:
            day, rest = divmod(edge, 24 * 60)
            wall = (monday + timedelta(days=7 * week + day)).replace(hour=rest // 60, minute=rest % 60)
            at = _resolve(wall, tz)
            if at > moment and in_windows(windows, tz, at) != now_in:
                candidates.append(at)
    return min(candidates) if candidates else None


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall time in `tz` as UTC. One that DST skips (02:30 on a spring
    night) becomes the jump itself, the first instant whose wall time is
    past it; an ambiguous one (autumn) is its first occurrence."""
    naive = wall.replace(tzinfo=None)
    at = naive.replace(tzinfo=tz).astimezone(UTC)
    if at.astimezone(tz).replace(tzinfo=None) == naive:
        return at
    while (at - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None) >= naive:
        at -= timedelta(minutes=1)  # at most the size of the jump (an hour; 30 min on Lord Howe)
    return at
