"""Single sign-on pages: the redirect to the provider and its callback
(mozilla-django-oidc's views), answering 404 while OIDC is not configured.

Every way the callback can end is audited: a sign-in through the
`user_logged_in` receiver (via `oidc`), a refusal here with its reason
(rollouts.sso.Refusal), and the person lands on the login page with one
line saying what happened, never a 400 or a traceback.
"""

import logging

import requests
from django.conf import settings
from django.contrib import auth, messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from rollouts.roles import client_address
from rollouts.services.sso import SignInRefused, oidc_refusal_record
from rollouts.sso import Refusal

log = logging.getLogger(__name__)


def _require_oidc() -> None:
    if not settings.FLEET_OIDC_ENABLED:
        raise Http404("single sign-on is not configured")


class AuthenticateView(OIDCAuthenticationRequestView):
    """GET: remember state, nonce and PKCE verifier in the session, then
    redirect to the provider's authorization endpoint."""

    def get(self, request):
        _require_oidc()
        return super().get(request)


class CallbackView(OIDCAuthenticationCallbackView):
    """GET from the provider with `code` and `state` (or `error`)."""

    def get(self, request):
        _require_oidc()
        refused = self._precheck(request)
        if refused is None:
            try:
                response = super().get(request)
            except SignInRefused as exc:
                refused = exc
            except SuspiciousOperation as exc:  # signature, nonce, issuer, audience
                refused = SignInRefused(Refusal.TOKEN_INVALID, str(exc))
            except requests.RequestException as exc:
                log.warning("OIDC provider unreachable: %s", exc)
                refused = SignInRefused(Refusal.PROVIDER_UNREACHABLE, f"{type(exc).__name__} talking to the provider")
            else:
                if getattr(self, "user", None) is not None:
                    return response
                refused = SignInRefused(Refusal.TOKEN_INVALID, "the provider's answer did not verify")
        return self._refuse(request, refused)

    def _precheck(self, request) -> SignInRefused | None:
        """Refusals decided from the callback's parameters alone."""
        if request.GET.get("error"):
            super().get(request)  # forgets the state, so the answer cannot be replayed
            error = request.GET["error"][:100]
            return SignInRefused(Refusal.PROVIDER_ERROR, f"the provider answered {error}: "
                                 f"{request.GET.get('error_description', '')[:200]}".rstrip(": "))
        state = request.GET.get("state")
        if not request.GET.get("code") or not state or state not in request.session.get("oidc_states", {}):
            return SignInRefused(Refusal.STATE_MISMATCH)
        return None

    def login_success(self):
        # Always log in (mozilla skips it when the same person is signed in
        # already), so every sign-in is one audited `login` row.
        auth.login(self.request, self.user)
        return HttpResponseRedirect(self.success_url)

    def _refuse(self, request, refused: SignInRefused):
        extra = {"error": request.GET["error"][:100]} if refused.reason == Refusal.PROVIDER_ERROR else None
        oidc_refusal_record(refused, client_address=client_address(request), extra=extra)
        messages.error(request, f"Sign-in with {settings.FLEET_OIDC_PROVIDER_NAME} failed: {refused.message}.")
        return HttpResponseRedirect(reverse("rollouts:login"))
