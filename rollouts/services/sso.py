"""Single sign-on writes: the person an OIDC sign-in names, their groups
from the provider's claims, and the audit rows (docs/sso.md)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from rollouts import models as m
from rollouts.roles import ADMINS
from rollouts.sso import VIA, GroupDecision, Refusal, groups_decide, managed_groups, provider_groups

from .events import record
from .logins import USER_KIND, login_record


class SignInRefused(Exception):
    """An OIDC sign-in that signs no one in; `username` is who the
    provider named, when it got that far."""

    def __init__(self, reason: Refusal, message: str = "", *, username: str = ""):
        super().__init__(message or reason.label)
        self.reason, self.username = reason, username

    @property
    def message(self) -> str:
        return str(self)


def oidc_sign_in(*, claims: dict, client_address: str):
    """The user the verified claims name, with their managed groups set
    from the claims. Raises SignInRefused (nothing created) when the claims
    name no valid user, the name belongs to a local account with a password,
    the account is inactive, or no provider group is mapped and
    FLEET_OIDC_UNMAPPED_USERS is `refuse`.

    Side effects, in one transaction: creates the user on first sign-in
    (no usable password), adds and removes managed groups through the ORM
    (`user.groups`, so m2m_changed receivers see them), sets is_staff and
    is_superuser from `admins` when the map manages it, and appends one
    `configured` Event naming the changes. A returning person whose groups
    are all gone loses them before being refused."""
    username = _username(claims)
    decision, user = _apply(username=username, claims=claims, client_address=client_address)
    if not decision.mapped and settings.FLEET_OIDC_UNMAPPED_USERS == "refuse":
        raise SignInRefused(Refusal.NO_MAPPED_GROUP, username=username)
    return user


def _username(claims: dict) -> str:
    claim = settings.FLEET_OIDC_USERNAME_CLAIM
    username = claims.get(claim)
    if not isinstance(username, str) or not username:
        raise SignInRefused(Refusal.MISSING_USERNAME, f"the provider sent no {claim!r} claim")
    field = get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD)
    try:
        field.run_validators(username)
    except ValidationError:
        raise SignInRefused(Refusal.MISSING_USERNAME, f"the {claim!r} claim {username[:60]!r} is not a valid "
                            "user name", username=username[: field.max_length]) from None
    return username


@transaction.atomic
def _apply(*, username: str, claims: dict, client_address: str) -> tuple[GroupDecision, object]:
    user = get_user_model().objects.select_for_update().filter(username=username).first()
    if user is not None and user.has_usable_password():
        raise SignInRefused(Refusal.LOCAL_ACCOUNT, username=username)
    if user is not None and not user.is_active:
        raise SignInRefused(Refusal.INACTIVE, username=username)
    group_map = settings.FLEET_OIDC_GROUP_MAP
    current = set(user.groups.values_list("name", flat=True)) if user else set()
    decision = groups_decide(provider=provider_groups(claims, settings.FLEET_OIDC_GROUPS_CLAIM),
                             current=current, group_map=group_map)
    if user is None and not decision.mapped and settings.FLEET_OIDC_UNMAPPED_USERS == "refuse":
        return decision, None  # refused by the caller; no account for someone who may not come in
    # get_or_create: two first sign-ins of one person at once make one account.
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": str(claims.get("email") or ""), "password": make_password(None)})
    _write_groups(user, decision, manage_admin=ADMINS in managed_groups(group_map))
    if created or decision.add or decision.remove:
        _record_groups(user, decision, held=current, created=created, client_address=client_address)
    return decision, user


def _write_groups(user, decision: GroupDecision, *, manage_admin: bool) -> None:
    if decision.add:
        user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in sorted(decision.add)))
    if decision.remove:
        user.groups.remove(*Group.objects.filter(name__in=decision.remove))
    if manage_admin:
        # Admins are staff and superusers (roles.user_create); a superuser
        # passes every permission check whatever their groups, so losing
        # `admins` at the provider must clear the flags too.
        is_admin = ADMINS in decision.wanted
        if (user.is_staff, user.is_superuser) != (is_admin, is_admin):
            user.is_staff = user.is_superuser = is_admin
            user.save(update_fields=["is_staff", "is_superuser"])


def _record_groups(user, decision: GroupDecision, *, held: set[str], created: bool,
                   client_address: str) -> m.Event:
    after = sorted((held | decision.add) - decision.remove)
    parts = [f"added {', '.join(sorted(decision.add))}" if decision.add else "",
             f"removed {', '.join(sorted(decision.remove))}" if decision.remove else ""]
    summary = "; ".join(p for p in parts if p) or "no groups"
    if created:
        summary = f"new account; {summary}"
    return record(actor=user.get_username(), action=m.Event.Action.CONFIGURED, kind_name=USER_KIND,
                  name=user.get_username(), reason="GroupsFromProvider",
                  message=f"groups set from the identity provider at sign-in: {summary}",
                  details={"added": sorted(decision.add), "removed": sorted(decision.remove), "groups": after,
                           "created": created, "client_address": client_address, "via": VIA})


def oidc_refusal_record(refused: SignInRefused, *, client_address: str, extra: dict | None = None) -> m.Event:
    """Append the audit row for a refused OIDC sign-in: `login-failed` when
    no one was authenticated, `denied` when someone was but may not come in."""
    action = m.Event.Action.LOGIN_FAILED if refused.reason.failed else m.Event.Action.DENIED
    return login_record(action=action, username=refused.username, client_address=client_address,
                        reason=refused.reason.value, message=refused.message, via=VIA, details=extra)
