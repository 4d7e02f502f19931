"""The theme toggle (the nav's button, static/fleetui.js) and the theme every
page is rendered with."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from rollouts.selectors.preferences import THEME_COOKIE, THEME_SESSION_KEY
from rollouts.services.preferences import preference_theme_set

COOKIE_SECONDS = 365 * 24 * 3600
EXPLICIT = ("light", "dark")


@require_POST
@login_required
def theme_set(request):
    """Remember the posted `theme` (light, dark or auto) for the signed-in
    person, in this session and in a cookie (so the login page matches too).
    The toggle's script gets 204; without JavaScript the form redirects back."""
    try:
        theme = preference_theme_set(user=request.user, theme=request.POST.get("theme", ""))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    request.session[THEME_SESSION_KEY] = theme
    back = request.POST.get("next", "")
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
    elif url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        response = HttpResponseRedirect(back)
    else:
        response = HttpResponseRedirect(reverse("rollouts:overview"))
    response.set_cookie(THEME_COOKIE, theme, max_age=COOKIE_SECONDS, httponly=True, samesite="Lax",
                        secure=settings.SESSION_COOKIE_SECURE)
    return response


def theme(request) -> dict:
    """Context processor: `theme`, light or dark when the person chose one,
    "" to follow the browser (prefers-color-scheme). No query: the session
    or the cookie."""
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and session is not None:
        chosen = session.get(THEME_SESSION_KEY)
    else:
        chosen = request.COOKIES.get(THEME_COOKIE)
    return {"theme": chosen if chosen in EXPLICIT else ""}
