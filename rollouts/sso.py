"""Single sign-on decisions, as pure functions (docs/sso.md).

Which Fleet UI groups a person's OpenID Connect claims put them in, and what
changes that makes to the groups they have now. No ORM, no HTTP: the service
(rollouts.services.sso) reads the user, asks here, and writes.

The group map comes from FLEET_OIDC_GROUP_MAP (parsed in fleetui.settings):
provider group name -> the Fleet UI groups it grants. Only groups that appear
on the right-hand side of the map are *managed*: sign-in adds and removes
those, and never touches a group given by hand in the admin that the map does
not mention.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import models

# The dotted path Django stores as user.backend after an OIDC sign-in.
OIDC_BACKEND = "rollouts.auth_backends.OIDCBackend"
VIA = "oidc"


class Refusal(models.TextChoices):
    """Why a single sign-on attempt did not sign anyone in: the audit row's
    reason. The first group failed to authenticate (`login-failed`); the
    second authenticated someone who may not come in (`denied`)."""

    STATE_MISMATCH = "StateMismatch", "the sign-in answer does not belong to this browser session"
    PROVIDER_ERROR = "ProviderError", "the provider reported an error"
    TOKEN_INVALID = "TokenInvalid", "the provider's ID token did not verify"
    PROVIDER_UNREACHABLE = "ProviderUnreachable", "the provider could not be reached"
    MISSING_USERNAME = "MissingUsernameClaim", "the provider sent no usable user name"
    NO_MAPPED_GROUP = "NoMappedGroup", "none of the person's provider groups is mapped to Fleet UI"
    LOCAL_ACCOUNT = "LocalAccountExists", "a local account with a password has this user name"
    INACTIVE = "InactiveUser", "the account is deactivated"
    LOCAL_LOGIN_DISABLED = "LocalLoginDisabled", "password sign-in is switched off"

    @property
    def failed(self) -> bool:
        """True when no one was authenticated (audited as `login-failed`)."""
        return self in (Refusal.STATE_MISMATCH, Refusal.PROVIDER_ERROR, Refusal.TOKEN_INVALID,
                        Refusal.PROVIDER_UNREACHABLE)


@dataclass(frozen=True)
class GroupDecision:
    """What sign-in does to a person's groups.

    wanted:  the Fleet UI groups the claims map to
    add:     wanted groups the person is not in yet
    remove:  managed groups the person is in but the claims no longer grant
    mapped:  at least one provider group is in the map
    """

    wanted: frozenset[str]
    add: frozenset[str]
    remove: frozenset[str]
    mapped: bool


def claim_value(claims: Mapping, path: str):
    """The claim at a dotted path (`groups`, `realm_access.roles`), or None."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def provider_groups(claims: Mapping, path: str) -> list[str]:
    """The person's provider groups: a list claim as strings; a single
    string as one group; anything else (missing, null, a number) as none."""
    value = claim_value(claims, path)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []


def managed_groups(group_map: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Every Fleet UI group the map can grant: the ones sign-in manages."""
    return frozenset(group for targets in group_map.values() for group in targets)


def groups_decide(*, provider: Iterable[str], current: Iterable[str],
                  group_map: Mapping[str, Iterable[str]]) -> GroupDecision:
    """Decide the group changes for one sign-in.

    1. wanted = the union of the map's targets for each provider group;
    2. add what is wanted and missing;
    3. remove what is managed, held, and no longer wanted;
    4. leave every unmanaged group as it is.
    Names compare exactly (case and spaces), as the provider sends them."""
    matched = [name for name in provider if name in group_map]
    wanted = frozenset(group for name in matched for group in group_map[name])
    held = frozenset(current)
    return GroupDecision(wanted=wanted, add=wanted - held, remove=(held & managed_groups(group_map)) - wanted,
                         mapped=bool(matched))
