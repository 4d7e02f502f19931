"""`fleet history PLACEMENT`: the placement's runs over time, as its history
page shows them (selectors/history.py; docs/eta.md)."""

from rollouts.api.durations import human_duration
from rollouts.api.errors import NotFound
from rollouts.selectors.history import placement_history

from . import printers

COLUMNS = ["RUN", "SNAPSHOT", "OUTCOME", "STARTED", "DURATION", "APPROVED-BY", "SLOWER-THAN-USUAL"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else human_duration(value)


def _approval(gate) -> str:
    if gate.open:
        return f"{','.join(gate.approvers)} (not accepted yet)" if gate.approvers else "waiting"
    return ",".join(gate.approvers) or "approved"


def _row(h) -> list[str]:
    snapshot = (h.run.snapshot_index or "-") + (" (rollback)" if h.rollback else "")
    if h.record.seconds is not None:
        duration = _seconds(h.record.seconds)
    else:  # an active run: its time so far, and what it has left
        duration = f"{h.run.age} so far" + (f", {h.run.eta.text}" if h.run.eta else "")
    approvals = "; ".join(f"{g.stage}: {_approval(g)}" for g in h.gates) or "-"
    slow = "; ".join(f"{s.stage} {_seconds(s.took)} (usually {_seconds(s.usual)})" for s in h.slow) or "-"
    started = f"{h.record.started:%Y-%m-%dT%H:%M:%SZ}" if h.record.started else "-"
    return [h.run.name, snapshot, h.run.state.label, started, duration, approvals, slow]


def history_command(ctx) -> None:
    """Print the placement's runs, newest first, or `No runs of placement P.`"""
    name, namespace = ctx.options["placement"], ctx.options.get("namespace") or ""
    history = placement_history(name=name, namespace=namespace)
    if history is None:
        raise NotFound("placement", name)
    if not history.rows:
        ctx.out.write(f"No runs of placement {name}.")
        return
    ctx.out.write(printers.format_table([COLUMNS, *(_row(h) for h in history.rows)]))
