"""Freezes in the browser: the banner on every page (a context processor),
the Freezes page where admins declare and end them, and break-glass in the
Approve dialog. The same services as `fleet freeze` (rollouts.services.freezes)."""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.views.decorators.http import require_POST

from rollouts import freeze_windows, roles
from rollouts.api.errors import ApiError
from rollouts.selectors.common import kind_of
from rollouts.selectors.freezes import banner_freezes, freeze_rows
from rollouts.services import freezes as freeze_services
from rollouts.services.approvals import approval_break_glass
from rollouts.services.freezes import may_declare

from .approvals import _back_to_run, _request_or_404
from .helpers import notify_or_redirect, page


def freeze_banner(request) -> dict:
    """Context processor: `freeze_banner`, the freezes holding now, for
    signed-in people (one query, only when a page shows it)."""

    def holding() -> list:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return []
        return banner_freezes()

    return {"freeze_banner": holding}


def _require_declarer(request) -> None:
    if not may_declare(request.user):
        roles.access_denied_record(request, reason="you may not declare or end freezes")
        raise PermissionDenied("declaring and ending freezes needs the admin role")


@roles.requires(roles.VIEW)
def freeze_list(request, *, form: dict | None = None, error: str = "", status: int = 200):
    """Every freeze not over (and the last ended ones); the form to declare one for those who may."""
    context = {"rows": freeze_rows(include_ended=True, limit=50), "may_declare": may_declare(request.user),
               "form": form or {"time_zone": "UTC"}, "error": error}
    return page(request, "rollouts/freeze_list.html", context, status=status)


def _moment(field: str, text: str, time_zone: str) -> datetime | None:
    """A `datetime-local` value (wall clock in the form's time zone)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise freeze_services.FreezeInvalid(field, f"{text!r} is not a date and time") from None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=freeze_windows.zone(time_zone or "UTC"))
        except freeze_windows.WindowError as exc:
            raise freeze_services.FreezeInvalid("time_zone", str(exc)) from None
    return moment


@require_POST
@roles.requires(roles.VIEW)
def freeze_create(request):
    """Declare a freeze from the form; a bad field re-renders the form saying which (400)."""
    _require_declarer(request)
    form = {key: request.POST.get(key, "").strip() for key in
            ("name", "reason", "starts_at", "ends_at", "windows", "time_zone", "selector")}
    try:
        freeze = freeze_services.freeze_create(
            name=form["name"], reason=form["reason"], actor=request.user.get_username(),
            starts_at=_moment("starts_at", form["starts_at"], form["time_zone"]),
            ends_at=_moment("ends_at", form["ends_at"], form["time_zone"]),
            windows=form["windows"], time_zone=form["time_zone"] or "UTC", selector=form["selector"],
            client_address=roles.client_address(request), via="web")
    except ApiError as exc:
        return freeze_list(request, form=form, error=str(exc), status=400)
    text = f"Freeze {freeze.name} declared" + (": runs stop at their next stage or cluster." if freeze.active
                                              else ": it holds from its start or window.")
    return notify_or_redirect(request, "warning", text, reverse("rollouts:freezes"), lambda extra: freeze_list(request))


@require_POST
@roles.requires(roles.VIEW)
def freeze_end(request, name: str):
    _require_declarer(request)
    try:
        freeze_services.freeze_end(name=name, actor=request.user.get_username(),
                                   client_address=roles.client_address(request), via="web")
        level, text = "success", f"Freeze {name} ended: runs resume within one engine pass."
    except ApiError as exc:
        level, text = "error", str(exc)
    return notify_or_redirect(request, level, text, reverse("rollouts:freezes"), lambda extra: freeze_list(request))


@require_POST
@roles.requires(roles.APPROVE)
def approval_break_glass_view(request, name: str, namespace: str = ""):
    """Ask for a break-glass approval (with a reason), or confirm one as a second person."""
    request_obj = _request_or_404(name, namespace)
    try:
        _, outcome = approval_break_glass(
            kind=kind_of(request_obj), name=name, namespace=namespace, actor=request.user.get_username(),
            reason=request.POST.get("reason", "").strip(), client_address=roles.client_address(request), via="web")
        if outcome == "requested":
            level, text = "warning", f"Break-glass for {name} asked: a second, different approver must confirm it."
        else:
            level, text = "success", f"{name} approved by break-glass during the freeze."
    except ApiError as exc:
        level, text = "error", str(exc)
    return _back_to_run(request, request_obj, namespace, level, text)


