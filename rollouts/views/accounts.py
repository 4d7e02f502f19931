"""Logging in: the password form with the failed-login rate limit
(rollouts.services.logins), the single sign-on button (rollouts.views.sso),
and FLEET_LOCAL_LOGIN=false, which hides the password form and refuses
password POSTs here and at the Django admin's login."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from rollouts import models as m
from rollouts import roles
from rollouts.services.logins import (
    login_attempt_begin,
    login_attempt_end,
    login_denied_record,
    login_record,
)
from rollouts.sso import Refusal

LOCAL_LOGIN_OFF = "Password sign-in is switched off here: sign in with single sign-on."


class RateLimitedMixin:
    """Take a slot of the rate limit before checking the password, and refuse
    the attempt when the user name or the client address has none left;
    record the refusal (denied, throttled). A success gives the slot back."""

    def clean(self):
        username = str(self.cleaned_data.get("username") or "")
        address = roles.client_address(self.request) if self.request else ""
        refusal = login_attempt_begin(username=username, client_address=address)
        if refusal:
            login_denied_record(username=username, client_address=address, message=refusal)
            raise ValidationError(refusal, code="rate_limited")
        cleaned = super().clean()  # checks the password; raises if it is wrong
        login_attempt_end(username=username, client_address=address)
        return cleaned

    @property
    def rate_limited(self) -> bool:
        return self.has_error(NON_FIELD_ERRORS, "rate_limited")


class LoginForm(RateLimitedMixin, AuthenticationForm):
    """The dashboard's login form."""


class AdminLoginForm(RateLimitedMixin, AdminAuthenticationForm):
    """The Django admin's login form, under the same limit."""


class LoginView(auth_views.LoginView):
    """Django's LoginView with the rate limit (a refused attempt gets 429),
    the sign-on button, and no password form while local login is off."""

    form_class = LoginForm
    redirect_authenticated_user = True
    next_page = "/"

    def post(self, request, *args, **kwargs):
        if not settings.FLEET_LOCAL_LOGIN:
            return local_login_refused(request)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **login_options()}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.rate_limited:
            response.status_code = 429
        return response


def local_login_refused(request):
    """A password POST while FLEET_LOCAL_LOGIN is false: audited as denied
    and answered 403 with the login page; no password is checked."""
    login_record(action=m.Event.Action.DENIED, username=str(request.POST.get("username") or ""),
                 client_address=roles.client_address(request), reason=Refusal.LOCAL_LOGIN_DISABLED.value,
                 message=Refusal.LOCAL_LOGIN_DISABLED.label)
    return render(request, "registration/login.html", {**login_options(), "refusal": LOCAL_LOGIN_OFF}, status=403)


def login_options() -> dict:
    """What the login page offers: the password form, the sign-on button."""
    return {"local_login": settings.FLEET_LOCAL_LOGIN,
            "sso_name": settings.FLEET_OIDC_PROVIDER_NAME if settings.FLEET_OIDC_ENABLED else ""}


def admin_login(site_login):
    """The Django admin's login view `site_login`, wrapped. With local login
    off the admin has no password form of its own: a GET goes to the
    dashboard's login page (the sign-on button), a POST is refused, and a
    signed-in person without staff rights gets 403 rather than a redirect
    loop between the two login pages."""

    def view(request, extra_context=None):
        if settings.FLEET_LOCAL_LOGIN:
            return site_login(request, extra_context)
        if request.method == "POST":
            return local_login_refused(request)
        if request.user.is_authenticated:
            raise PermissionDenied("your account cannot use the admin")
        next_url = request.GET.get("next") or reverse("admin:index")
        return HttpResponseRedirect(f"{reverse('rollouts:login')}?{urlencode({'next': next_url})}")

    return view
