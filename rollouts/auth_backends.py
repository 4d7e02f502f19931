"""The OpenID Connect authentication backend (mozilla-django-oidc), fitted
to Fleet UI: users are named by a claim rather than matched by e-mail, the
ID token's issuer and audience are checked, and groups come from the claims
(rollouts.services.sso). Configured by the FLEET_OIDC_* variables
(fleetui.settings, docs/sso.md).

The backend is listed in AUTHENTICATION_BACKENDS only when OIDC is
configured. Being a ModelBackend, it also answers permission checks, so it
can be the only backend when local passwords are switched off.
"""

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from rollouts.roles import client_address
from rollouts.services.sso import oidc_sign_in


class OIDCBackend(OIDCAuthenticationBackend):
    """Authenticates the authorization-code callback; raises
    rollouts.services.sso.SignInRefused for a person who may not come in,
    and SuspiciousOperation for a token that does not verify."""

    def authenticate(self, request, **kwargs):
        if "username" in kwargs or "password" in kwargs:
            return None  # the password form: not ours (and never a trip to the provider)
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        """mozilla-django-oidc checks the signature and nonce; OIDC Core
        3.1.3.7 also requires the issuer and our client id as audience."""
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if payload.get("iss") != settings.FLEET_OIDC_ISSUER:
            raise SuspiciousOperation(f"ID token issuer {payload.get('iss')!r} is not FLEET_OIDC_ISSUER")
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token audience does not include FLEET_OIDC_CLIENT_ID")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        """The verified ID token's claims, updated by the userinfo endpoint's:
        some providers (Entra ID) put groups only in the ID token. Both must
        be about the same subject (OIDC Core 5.3.4)."""
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo is about another subject than the ID token")
        return {**payload, **userinfo}

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        return oidc_sign_in(claims=claims, client_address=client_address(self.request))
