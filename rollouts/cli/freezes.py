"""`fleet freeze create|list|end`: what the admin's Freezes page does, from
the command line, through the same service (rollouts.services.freezes) and
so with the same audit events. docs/freezes.md."""

from datetime import datetime, timedelta

from rollouts import clock, freeze_windows
from rollouts.api.durations import parse_duration
from rollouts.api.errors import BadRequest
from rollouts.selectors.freezes import freeze_rows
from rollouts.services.freezes import freeze_create, freeze_end

from . import printers


def _moment(option: str, text: str | None, time_zone: str) -> datetime | None:
    """An RFC 3339 time, or `2026-12-27 06:00` in --time-zone; BadRequest names the option."""
    if not text:
        return None
    try:
        return clock.parse_rfc3339(text)
    except (ValueError, TypeError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{option}: {text!r} is not a time: use 2026-12-27T06:00:00Z, or "
                         "'2026-12-27 06:00' in --time-zone") from None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=freeze_windows.zone(time_zone))
        except freeze_windows.WindowError as exc:
            raise BadRequest(f"--time-zone: {exc}") from None
    return moment


def _ends_at(ctx, starts_at: datetime | None, time_zone: str) -> datetime | None:
    until, duration = ctx.options.get("until"), ctx.options.get("for_")
    if until and duration:
        raise BadRequest("--until and --for say the same thing: give one of them")
    if duration:
        try:
            seconds = parse_duration(duration)
        except (ValueError, BadRequest):
            raise BadRequest(f"--for: {duration!r} is not a duration (e.g. 8h, 3d is 72h, 90m)") from None
        return (starts_at or clock.now()) + timedelta(seconds=seconds)
    return _moment("--until", until, time_zone)


def _create(ctx) -> None:
    time_zone = ctx.options.get("time_zone") or "UTC"
    starts_at = _moment("--from", ctx.options.get("from_"), time_zone)
    freeze = freeze_create(name=ctx.options["name"], reason=ctx.options.get("reason") or "", actor=ctx.actor,
                           starts_at=starts_at, ends_at=_ends_at(ctx, starts_at, time_zone),
                           windows=ctx.options.get("windows") or "", time_zone=time_zone,
                           selector=ctx.options.get("selector") or "", via="cli")
    state = "holding now" if freeze.active else "not holding yet"
    ctx.out.write(f"freeze {freeze.name} created ({state})")


def _list(ctx) -> None:
    rows = [["NAME", "STATE", "BY", "SCOPE", "WINDOWS", "UNTIL", "REASON"]]
    for row in freeze_rows(include_ended=bool(ctx.options.get("all"))):
        f = row.freeze
        windows = f"{f.windows} {f.time_zone}" if f.windows else "-"
        until = clock.rfc3339(row.until) if row.until else ("-" if row.state in ("ended", "expired") else "ended by hand")
        rows.append([f.name, row.state, f.declared_by, f.selector or "all placements", windows, until, f.reason])
    ctx.out.write(printers.format_table(rows) if len(rows) > 1 else "No freezes.")


def _end(ctx) -> None:
    freeze = freeze_end(name=ctx.options["name"], actor=ctx.actor, via="cli")
    ctx.out.write(f"freeze {freeze.name} ended: runs resume within one engine pass")


def freeze_command(ctx) -> None:
    """freeze create|list|end."""
    action = ctx.options["action"]
    if action != "list" and not ctx.options.get("name"):
        raise BadRequest(f"freeze {action} needs a NAME")
    {"create": _create, "list": _list, "end": _end}[action](ctx)
