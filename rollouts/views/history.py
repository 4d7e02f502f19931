"""A run on a time axis (with its stages against earlier runs) and a
placement's history of runs."""

from django.http import Http404

from rollouts import roles, selectors
from rollouts.selectors.history import placement_history as history_of
from rollouts.selectors.pages import poll_seconds
from rollouts.selectors.timeview import run_time_view

from .helpers import page


@roles.requires(roles.VIEW)
def run_time(request, name: str, namespace: str = ""):
    """The time view; an htmx refresh gets only its `timeview` partial. While
    the run moves the partial refreshes every poll seconds, so the now line
    moves even when nothing changes (a push only comes with a change)."""
    run = selectors.run_get(name=name, namespace=namespace)
    if run is None:
        raise Http404(f"no update run {name}")
    context = {"run": run, "view": run_time_view(run), "poll": poll_seconds() if run.active else 0,
               "placement": (run.spec or {}).get("placementName", "")}
    return page(request, "rollouts/run_time.html", context, partial="timeview")


@roles.requires(roles.VIEW)
def placement_history(request, name: str, namespace: str = ""):
    """The placement's runs over time: snapshot, outcome, duration, who
    approved each gate, rollbacks and stages slower than usual marked."""
    history = history_of(name=name, namespace=namespace)
    if history is None:
        raise Http404(f"no placement {name}")
    return page(request, "rollouts/placement_history.html", {"history": history})
