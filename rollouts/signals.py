"""Django's auth signals, recorded in the audit log.

Auth signals are the one hook for logins made by any view (ours and the
admin's); they carry no business logic beyond appending the Event.
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from rollouts import models as m
from rollouts.roles import client_address
from rollouts.services.logins import login_record
from rollouts.sso import OIDC_BACKEND, VIA


def _address(request) -> str:
    return client_address(request) if request is not None else ""


def _via(user) -> str:
    """`oidc` for a single sign-on (authenticate() names the backend on the
    user); '' for the password form, whose rows stay as they were."""
    return VIA if getattr(user, "backend", "") == OIDC_BACKEND else ""


@receiver(user_logged_in, dispatch_uid="rollouts-audit-login")
def _logged_in(sender, request, user, **kwargs):
    login_record(action=m.Event.Action.LOGIN, username=user.get_username(), client_address=_address(request),
                 via=_via(user))


@receiver(user_logged_out, dispatch_uid="rollouts-audit-logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:  # logging out with no session changes nothing
        login_record(action=m.Event.Action.LOGOUT, username=user.get_username(), client_address=_address(request))


@receiver(user_login_failed, dispatch_uid="rollouts-audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    if "username" not in credentials:
        return  # an OIDC callback: rollouts.views.sso records it with the precise reason
    login_record(action=m.Event.Action.LOGIN_FAILED, username=str(credentials.get("username") or ""),
                 client_address=_address(request), reason="InvalidCredentials")
