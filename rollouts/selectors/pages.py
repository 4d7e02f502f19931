"""What a live page's partials show: the one context builder per partial,
used by the page's view, its htmx refresh and its live push
(rollouts.broadcast), so the three can never drift apart."""

from django.conf import settings

from rollouts import clock
from rollouts import models as m

from .approvals import approvals_pending
from .attention import needs_attention
from .history import run_eta, runs_active_with_eta
from .pipeline import failing_by_placement, rejected_gates, status_pipeline, timeline_pipeline
from .timeline import run_timeline

RECENT_EVENTS = 15
# Sign-ins and account changes are in the audit log, not in what happened to the fleet.
ACCOUNT_ACTIONS = (m.Event.Action.LOGIN, m.Event.Action.LOGOUT, m.Event.Action.LOGIN_FAILED)
ACCOUNT_KINDS = ("User", "Group")


def poll_seconds() -> int:
    """Seconds between htmx refreshes of a live page (0: no polling). While the
    page's WebSocket is open the refreshes pause, but for a resync once a
    minute (static/live.js); they take over when it is down."""
    return int(getattr(settings, "FLEET_DASHBOARD_POLL_SECONDS", 5))


def run_timeline_context(run, extra: dict | None = None) -> dict:
    """What a run page's `timeline` partial shows: the Timeline, its pipeline
    strip, and for an active run its ETA (selectors.history.run_eta: one query more)."""
    timeline = run_timeline(run)
    return {"tl": timeline, "pipeline": timeline_pipeline(timeline), "poll": poll_seconds() if run.active else 0,
            "eta": run_eta(run, timeline.spans) if run.active else None, **(extra or {})}


def overview_context() -> dict:
    """What the overview's `live` partial shows. Queries: active runs and
    pending approvals (per family), recent events, and "Needs attention"
    (selectors.attention.needs_attention: four fixed queries at most), and
    the active runs' placements' past runs for their ETAs (one per family),
    and the latest decisions on the gates of stopped runs (one, when a run is stopped)."""
    runs, approvals = runs_active_with_eta(), approvals_pending()
    attention = needs_attention(active=runs, approvals=approvals)
    failing, rejected, now = failing_by_placement(attention), rejected_gates(runs), clock.now()
    for run in runs:  # each row's strip, from its status and the failures "Needs attention" read: no query
        run.pipeline = status_pipeline(run.status, now, failing.get((run.namespace, run.placement), set()),
                                       rejected.get((run.namespace, run.name), set()))
    return {
        "attention": attention,
        "runs": runs,
        "approvals": approvals,
        "events": list(m.Event.objects.exclude(action__in=ACCOUNT_ACTIONS).exclude(object_kind__in=ACCOUNT_KINDS)
                   .order_by("-id")[:RECENT_EVENTS]),
        "poll": poll_seconds(),
    }
