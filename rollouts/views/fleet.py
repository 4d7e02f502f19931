"""Placements (with snapshot diffs, new runs and rollbacks), strategies and
member clusters."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from rollouts import mirror, roles, selectors
from rollouts.api.errors import ApiError
from rollouts.api.numbers import parse_unsigned
from rollouts.selectors.preflight import run_plan
from rollouts.services import runs as run_services
from rollouts.services.logins import access_denied_record

from .helpers import page
from .runs import run_url


@roles.requires(roles.VIEW)
def placement_list(request):
    return page(request, "rollouts/placement_list.html", {"placements": selectors.placements_list()})


def _detail_or_404(name: str, namespace: str):
    detail = selectors.placement_detail(name=name, namespace=namespace)
    if detail is None:
        raise Http404(f"no placement {name}")
    return detail


@roles.requires(roles.VIEW)
def placement_detail(request, name: str, namespace: str = ""):
    """Scheduled clusters, snapshot history, runs, and the diff of any two
    snapshots chosen with ?a=&b= (default: the two newest)."""
    detail = _detail_or_404(name, namespace)
    indices = [s.index for s in detail.snapshots]
    a = request.GET.get("a", str(indices[1] if len(indices) > 1 else (indices[0] if indices else "")))
    b = request.GET.get("b", str(indices[0]) if indices else "")
    diff = selectors.snapshot_diff(placement=name, namespace=namespace, a=a, b=b) if a and b else None
    context = {"detail": detail, "a": a, "b": b, "diff": diff, "indices": indices}
    return page(request, "rollouts/placement_detail.html", context, partial="diff")


def _rollout_context(detail, index: str, strategy: str, error: str = "") -> dict:
    latest, indices = detail.latest_index, [str(s.index) for s in detail.snapshots]
    if index not in indices:
        error = error or f"There is no snapshot with index {index or '(none)'}: choose one of the list."
    # The pre-flight: stages in order, clusters in no stage, what
    # initialization would refuse, and the clusters by the snapshot they run.
    plan = run_plan(placement=detail.placement.name, namespace=detail.placement.namespace, strategy=strategy,
                    snapshot_index=index) if index in indices else None
    number = parse_unsigned(index)
    is_rollback = latest is not None and number is not None and number < latest
    return {"detail": detail, "index": index, "strategy": strategy, "groups": plan.groups if plan else [],
            "plan": plan, "error": error, "is_rollback": is_rollback,
            "indices": [s.index for s in detail.snapshots]}


@require_http_methods(["GET", "POST"])
@roles.requires(roles.VIEW)
def placement_rollout(request, name: str, namespace: str = ""):
    """Start a run of a strategy at a chosen snapshot; an earlier snapshot
    makes it a rollback. GET shows the pre-flight first (the strategy this
    placement last used by default); POST (release managers) creates the run,
    named as the person asks or numbered, and goes to its page. A strategy
    whose pre-flight finds a problem is refused (run_services.RunRefused)."""
    detail = _detail_or_404(name, namespace)
    params = request.POST if request.method == "POST" else request.GET
    default = detail.snapshots[1].index if len(detail.snapshots) > 1 else detail.latest_index
    index = str(params.get("index", "" if default is None else default))
    strategy = params.get("strategy") or detail.default_strategy
    if request.method == "GET":  # htmx (another strategy chosen): just the pre-flight
        return page(request, "rollouts/rollout.html", _rollout_context(detail, index, strategy), partial="preflight")
    if not request.user.has_perm(roles.OPERATE):
        reason = "starting a run needs the release manager role"
        access_denied_record(request, reason=reason)
        raise PermissionDenied(reason)
    start = run_services.run_rollback if _rollout_context(detail, index, strategy)["is_rollback"] else \
        run_services.run_start
    try:
        run = start(placement=name, strategy=strategy, index=index, actor=request.user.get_username(),
                    namespace=namespace, name=params.get("name", "").strip(),
                    client_address=roles.client_address(request), via="web")
    except ApiError as exc:
        return page(request, "rollouts/rollout.html", _rollout_context(detail, index, strategy, str(exc)), status=400)
    return redirect(run_url(run.name, namespace))


@roles.requires(roles.VIEW)
def strategy_list(request):
    return page(request, "rollouts/strategy_list.html", {"strategies": selectors.strategies_list()})


@roles.requires(roles.VIEW)
def member_list(request):
    return page(request, "rollouts/member_list.html", {"members": selectors.members_list()})


@roles.requires(roles.VIEW)
def hub_list(request):
    """KubeFleet hubs mirrored here: whether each answers, its last error and
    backoff. Connections are added in the admin (kubeconfigs are write-only)."""
    return page(request, "rollouts/hub_list.html", {"hubs": mirror.hub_connection_rows()})
