"""The overview: active runs, the approval inbox and recent events."""

from rollouts import models as m
from rollouts import roles, selectors

from .helpers import page, poll_seconds

RECENT_EVENTS = 15


@roles.requires(roles.VIEW)
def overview(request):
    """Queries: active runs and pending approvals (per family), recent events."""
    context = {
        "runs": selectors.runs_active(),
        "approvals": selectors.approvals_pending(),
        "events": list(m.Event.objects.order_by("-id")[:RECENT_EVENTS]),
        "poll": poll_seconds(),
    }
    return page(request, "rollouts/overview.html", context, partial="live")
