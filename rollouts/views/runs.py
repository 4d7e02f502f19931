"""The runs list, the run timeline, and Stop / Resume."""

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from rollouts import broadcast, mirror, roles, selectors
from rollouts.api.errors import ApiError
from rollouts.selectors.pages import run_timeline_context
from rollouts.services import runs as run_services

from .helpers import live_context, notify_or_redirect, page


@roles.requires(roles.VIEW)
def run_list(request):
    placement, state = request.GET.get("placement", ""), request.GET.get("state", "")
    context = {
        "page_obj": selectors.run_list(placement=placement, state=state, page=request.GET.get("page", 1)),
        "placements": selectors.run_placements(),
        "states": selectors.RunState.choices,
        "placement": placement,
        "state": state,
    }
    return page(request, "rollouts/run_list.html", context, partial="results")


def run_url(name: str, namespace: str = "") -> str:
    if namespace:
        return reverse("rollouts:ns-run-detail", args=[namespace, name])
    return reverse("rollouts:run-detail", args=[name])


def _run_or_404(name: str, namespace: str):
    run = selectors.run_get(name=name, namespace=namespace)
    if run is None:
        raise Http404(f"no update run {name}")
    return run


@roles.requires(roles.VIEW)
def run_detail(request, name: str, namespace: str = ""):
    """The timeline; an htmx refresh gets only its `timeline` partial. An
    active run's page also listens for live pushes of that partial."""
    run = _run_or_404(name, namespace)
    table = request.GET.get("table", "")
    context = run_timeline_context(run, {"open_table": int(table) if table.isdigit() else None})
    if context["open_table"] and getattr(request, "htmx", False):
        return _stage_table(request, context)
    live = live_context(broadcast.run_socket_path(run)) if run.active else None
    hub = mirror.mirror_sources([run]).get((run.KIND, run.namespace, run.name), "")
    return page(request, "rollouts/run_detail.html", {**context, "live": live, "hub": hub}, partial="timeline")


def _stage_table(request, context: dict):
    """The cluster table of stage `?table=N` (1-based), which a big stage
    loads when someone opens it; without script `?table=N` opens it in the page."""
    stages = context["tl"].stages
    if context["open_table"] > len(stages):
        raise Http404(f"no stage {context['open_table']} in this run")
    return render(request, "rollouts/run_detail.html#cluster-table", {"stage": stages[context["open_table"] - 1]})


def render_timeline(request, name: str, namespace: str):
    """A callable that renders the run's timeline partial with extra context."""

    def render_partial(extra: dict):
        run = _run_or_404(name, namespace)
        return page(request, "rollouts/run_detail.html", run_timeline_context(run, extra), partial="timeline")

    return render_partial


def _state_action(request, name: str, namespace: str, service, done: str, level: str = "success"):
    _run_or_404(name, namespace)
    try:
        service(name=name, namespace=namespace, actor=request.user.get_username())
        text = done
    except ApiError as exc:
        level, text = "error", str(exc)
    return notify_or_redirect(request, level, text, run_url(name, namespace),
                              render_timeline(request, name, namespace))


@require_http_methods(["GET", "POST"])
@roles.requires(roles.OPERATE)
def run_stop(request, name: str, namespace: str = ""):
    """GET: the confirmation (from the run page, htmx loads it into the
    dialog; otherwise a page of its own) saying which clusters still finish.
    POST: stop, as `fleet stop` does."""
    if request.method == "GET":
        context = run_timeline_context(_run_or_404(name, namespace), {"in_dialog": bool(getattr(request, "htmx", False))})
        return page(request, "rollouts/run_stop.html", context, partial="confirm")
    return _state_action(request, name, namespace, run_services.run_stop,
                         f"Stop requested for {name}: clusters already updating finish, nothing new starts.",
                         level="warning")


@require_POST
@roles.requires(roles.OPERATE)
def run_resume(request, name: str, namespace: str = ""):
    return _state_action(request, name, namespace, run_services.run_resume,
                         f"{name} resumed: it goes on where it stopped.")
