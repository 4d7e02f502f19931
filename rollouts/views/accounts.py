"""Logging in, with the failed-login rate limit (rollouts.services.logins)."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from rollouts import roles
from rollouts.services.logins import login_attempt_begin, login_attempt_end, login_denied_record


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
    """Django's LoginView with the rate limit: a refused attempt gets 429."""

    form_class = LoginForm
    redirect_authenticated_user = True
    next_page = "/"

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.rate_limited:
            response.status_code = 429
        return response
