"""The overview: active runs, the approval inbox and recent events."""

from rollouts import broadcast, roles, selectors
from rollouts import models as m

from .helpers import live_context, page, poll_seconds

RECENT_EVENTS = 15
# Sign-ins are in the audit log, not in what happened to the fleet.
ACCOUNT_ACTIONS = (m.Event.Action.LOGIN, m.Event.Action.LOGOUT, m.Event.Action.LOGIN_FAILED)


def overview_context() -> dict:
    """What the `live` partial shows; live pushes (rollouts.broadcast) render it from here too.
    Queries: active runs and pending approvals (per family), recent events."""
    return {
        "runs": selectors.runs_active(),
        "approvals": selectors.approvals_pending(),
        "events": list(m.Event.objects.exclude(action__in=ACCOUNT_ACTIONS).order_by("-id")[:RECENT_EVENTS]),
        "poll": poll_seconds(),
    }


@roles.requires(roles.VIEW)
def overview(request):
    context = {**overview_context(), "live": live_context(broadcast.OVERVIEW_SOCKET_PATH)}
    return page(request, "rollouts/overview.html", context, partial="live")
