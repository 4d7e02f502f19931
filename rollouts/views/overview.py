"""The overview: active runs, the approval inbox and recent events."""

from rollouts import broadcast, roles
from rollouts.selectors.pages import overview_context

from .helpers import live_context, page


@roles.requires(roles.VIEW)
def overview(request):
    context = {**overview_context(), "live": live_context(broadcast.OVERVIEW_SOCKET_PATH)}
    context["approvals_count"] = len(context["approvals"])  # the nav's count: the inbox is already read
    return page(request, "rollouts/overview.html", context, partial="live")
