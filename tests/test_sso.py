"""Single sign-on: the claim -> group decision as a matrix, the group map's
syntax and the start-up checks, and the sign-in service that writes users,
groups and audit rows (docs/sso.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from fleetui.settings import env_group_map
from rollouts import models as m
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, roles_ensure, user_create
from rollouts.services.sso import SignInRefused, oidc_sign_in
from rollouts.sso import Refusal, groups_decide, provider_groups

BASE_DIR = Path(__file__).resolve().parent.parent
MAP = {"fleet-admins": (ADMINS,), "fleet-rm": (RELEASE_MANAGERS,), "fleet-view": (VIEWERS,), "sre": ("sre",),
       "platform": (RELEASE_MANAGERS, "sre")}


# The decision ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "current", "wanted", "add", "remove", "mapped"), [
    pytest.param([], [], set(), set(), set(), False, id="no-groups-anywhere"),
    pytest.param(["fleet-rm"], [], {RELEASE_MANAGERS}, {RELEASE_MANAGERS}, set(), True, id="first-sign-in"),
    pytest.param(["fleet-rm"], [RELEASE_MANAGERS], {RELEASE_MANAGERS}, set(), set(), True, id="unchanged"),
    pytest.param(["sre"], [RELEASE_MANAGERS], {"sre"}, {"sre"}, {RELEASE_MANAGERS}, True,
                 id="moved-from-release-managers-to-sre"),
    pytest.param(["unrelated"], [VIEWERS], set(), set(), {VIEWERS}, False, id="every-mapped-group-lost"),
    pytest.param(["fleet-view"], [VIEWERS, "auditors"], {VIEWERS}, set(), set(), True,
                 id="unmanaged-group-kept"),
    pytest.param(["fleet-view", "auditors"], ["auditors"], {VIEWERS}, {VIEWERS}, set(), True,
                 id="unmapped-provider-group-ignored"),
    pytest.param(["platform"], [], {RELEASE_MANAGERS, "sre"}, {RELEASE_MANAGERS, "sre"}, set(), True,
                 id="one-provider-group-grants-two"),
    pytest.param(["platform", "fleet-rm"], ["sre"], {RELEASE_MANAGERS, "sre"}, {RELEASE_MANAGERS}, set(), True,
                 id="two-provider-groups-grant-one"),
    pytest.param(["Fleet-RM"], [RELEASE_MANAGERS], set(), set(), {RELEASE_MANAGERS}, False,
                 id="names-compare-exactly"),
])
def test_the_decision_adds_wanted_groups_and_removes_only_managed_ones(provider, current, wanted, add, remove,
                                                                        mapped):
    decision = groups_decide(provider=provider, current=current, group_map=MAP)
    assert (decision.wanted, decision.add, decision.remove, decision.mapped) == (wanted, add, remove, mapped)


@pytest.mark.parametrize(("claims", "path", "groups"), [
    pytest.param({"groups": ["a", "b"]}, "groups", ["a", "b"], id="list"),
    pytest.param({"groups": "a"}, "groups", ["a"], id="one-string"),
    pytest.param({}, "groups", [], id="missing"),
    pytest.param({"groups": None}, "groups", [], id="null"),
    pytest.param({"groups": {"a": 1}}, "groups", [], id="object"),
    pytest.param({"realm_access": {"roles": ["fleet-rm"]}}, "realm_access.roles", ["fleet-rm"], id="dotted-path"),
    pytest.param({"realm_access": ["x"]}, "realm_access.roles", [], id="dotted-path-through-a-list"),
])
def test_provider_groups_are_read_from_the_configured_claim(claims, path, groups):
    assert provider_groups(claims, path) == groups


# The group map's syntax and the start-up checks ---------------------------------------------------------------

def test_the_group_map_reads_pairs_and_keeps_names_as_written(monkeypatch):
    monkeypatch.setenv("FLEET_OIDC_GROUP_MAP", " fleet-admins=admins , fleet-rm=release managers,platform=sre,"
                                               "platform=release managers,cn=ops=sre,")
    assert env_group_map("FLEET_OIDC_GROUP_MAP") == {
        "fleet-admins": ("admins",), "fleet-rm": ("release managers",), "platform": ("sre", "release managers"),
        "cn=ops": ("sre",)}


@pytest.mark.parametrize("raw", ["fleet-admins", "=admins", "fleet-admins=", "a=admins,b", "x=" + "g" * 151])
def test_a_malformed_group_map_names_the_variable_and_the_item(monkeypatch, raw):
    monkeypatch.setenv("FLEET_OIDC_GROUP_MAP", raw)
    with pytest.raises(ImproperlyConfigured, match=r"^FLEET_OIDC_GROUP_MAP: item \d .* is not provider-group="):
        env_group_map("FLEET_OIDC_GROUP_MAP")


READ_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({name: getattr(settings, name) for name in (
    "AUTHENTICATION_BACKENDS", "FLEET_OIDC_ENABLED", "FLEET_LOCAL_LOGIN", "FLEET_OIDC_GROUP_MAP")}))
"""
PROVIDER = {"FLEET_OIDC_CLIENT_ID": "fleet", "FLEET_OIDC_CLIENT_SECRET": "s3cret",
            "FLEET_OIDC_ISSUER": "https://id.example.com",
            "FLEET_OIDC_AUTHORIZATION_ENDPOINT": "https://id.example.com/auth",
            "FLEET_OIDC_TOKEN_ENDPOINT": "https://id.example.com/token",
            "FLEET_OIDC_USERINFO_ENDPOINT": "https://id.example.com/userinfo",
            "FLEET_OIDC_JWKS_ENDPOINT": "https://id.example.com/jwks"}


def start_up(**env) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_OIDC_", "FLEET_LOCAL_LOGIN"))}
    environment = {**keep, "DJANGO_SETTINGS_MODULE": "fleetui.settings", "DEBUG": "true", **env}
    return subprocess.run([sys.executable, "-c", READ_SETTINGS], env=environment, cwd=BASE_DIR,
                          capture_output=True, text=True, timeout=60)


def test_by_default_only_local_passwords_sign_in():
    values = json.loads(start_up().stdout.strip().splitlines()[-1])
    assert values["AUTHENTICATION_BACKENDS"] == ["django.contrib.auth.backends.ModelBackend"]
    assert (values["FLEET_OIDC_ENABLED"], values["FLEET_LOCAL_LOGIN"]) == (False, True)


def test_a_configured_provider_adds_the_oidc_backend_and_local_login_can_go():
    values = json.loads(start_up(**PROVIDER, FLEET_LOCAL_LOGIN="false",
                                 FLEET_OIDC_GROUP_MAP="fleet-rm=release managers").stdout.strip().splitlines()[-1])
    assert values["AUTHENTICATION_BACKENDS"] == ["rollouts.auth_backends.OIDCBackend"]
    assert values["FLEET_OIDC_GROUP_MAP"] == {"fleet-rm": ["release managers"]}


@pytest.mark.parametrize(("env", "message"), [
    pytest.param({"FLEET_OIDC_CLIENT_ID": "fleet"},
                 "FLEET_OIDC_CLIENT_ID is set, so single sign-on needs FLEET_OIDC_CLIENT_SECRET, FLEET_OIDC_ISSUER, "
                 "FLEET_OIDC_AUTHORIZATION_ENDPOINT, FLEET_OIDC_TOKEN_ENDPOINT, FLEET_OIDC_USERINFO_ENDPOINT, "
                 "FLEET_OIDC_JWKS_ENDPOINT", id="half-configured-provider"),
    pytest.param({"FLEET_LOCAL_LOGIN": "false"}, "FLEET_LOCAL_LOGIN=false needs single sign-on",
                 id="no-way-to-sign-in"),
    pytest.param({**PROVIDER, "FLEET_OIDC_GROUP_MAP": "fleet-rm:release managers"},
                 "FLEET_OIDC_GROUP_MAP: item 1 'fleet-rm:release managers' is not provider-group=Fleet UI group",
                 id="bad-group-map"),
    pytest.param({**PROVIDER, "FLEET_OIDC_UNMAPPED_USERS": "viewers"},
                 "FLEET_OIDC_UNMAPPED_USERS must be one of refuse, allow, got 'viewers'", id="bad-unmapped-choice"),
])
def test_start_up_stops_with_a_message_naming_the_variable(env, message):
    done = start_up(**env)
    assert done.returncode != 0
    assert f"ImproperlyConfigured: {message}" in done.stderr


# The sign-in service ----------------------------------------------------------------------------------------

@pytest.fixture
def sso(settings):
    settings.FLEET_OIDC_GROUP_MAP = MAP
    settings.FLEET_OIDC_USERNAME_CLAIM = "preferred_username"
    settings.FLEET_OIDC_GROUPS_CLAIM = "groups"
    settings.FLEET_OIDC_UNMAPPED_USERS = "refuse"
    roles_ensure()
    return settings


def sign_in(username: str, *groups: str, **claims):
    return oidc_sign_in(claims={"sub": f"id-{username}", "preferred_username": username, "groups": list(groups),
                                **claims}, client_address="192.0.2.7")


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def group_events() -> list[m.Event]:
    return list(m.Event.objects.filter(reason="GroupsFromProvider").order_by("id"))


@pytest.mark.django_db
def test_a_first_sign_in_creates_the_person_in_the_mapped_groups(sso):
    rita = sign_in("rita", "fleet-rm", "sre", "lunch-club", email="rita@example.com")
    assert (rita.email, rita.has_usable_password(), rita.is_staff) == ("rita@example.com", False, False)
    assert group_names(rita) == {RELEASE_MANAGERS, "sre"}
    assert rita.has_perm("rollouts.approve_stage")
    [event] = group_events()
    assert (event.action, event.actor, event.object_kind, event.object_name) == ("configured", "rita", "User", "rita")
    assert event.details == {"added": [RELEASE_MANAGERS, "sre"], "removed": [], "groups": [RELEASE_MANAGERS, "sre"],
                             "created": True, "client_address": "192.0.2.7", "via": "oidc"}
    assert event.message == "groups set from the identity provider at sign-in: new account; added release managers, sre"


@pytest.mark.django_db
def test_the_next_sign_in_follows_the_provider_and_keeps_groups_the_map_does_not_manage(sso):
    rita = sign_in("rita", "fleet-rm")
    rita.groups.add(Group.objects.create(name="auditors"))  # given by hand in the admin
    rita = sign_in("rita", "sre")
    assert group_names(rita) == {"sre", "auditors"}
    assert not get_user_model().objects.get(username="rita").has_perm("rollouts.approve_stage")
    event = group_events()[-1]
    assert (event.details["added"], event.details["removed"], event.details["created"]) == (["sre"],
                                                                                            [RELEASE_MANAGERS], False)
    assert event.message == "groups set from the identity provider at sign-in: added sre; removed release managers"


@pytest.mark.django_db
def test_a_sign_in_that_changes_nothing_records_no_group_event(sso):
    sign_in("rita", "fleet-rm")
    sign_in("rita", "fleet-rm")
    assert len(group_events()) == 1


@pytest.mark.django_db
def test_admins_from_the_provider_are_staff_and_lose_it_with_the_group(sso):
    ada = sign_in("ada", "fleet-admins")
    assert (ada.is_staff, ada.is_superuser) == (True, True)
    ada = sign_in("ada", "fleet-view")
    ada.refresh_from_db()
    assert (ada.is_staff, ada.is_superuser, group_names(ada)) == (False, False, {VIEWERS})
    assert not ada.has_perm("rollouts.administer_fleet")


@pytest.mark.django_db
def test_someone_with_no_mapped_group_is_refused_and_no_account_is_made(sso):
    with pytest.raises(SignInRefused) as refused:
        sign_in("mallory", "lunch-club")
    assert (refused.value.reason, refused.value.username) == (Refusal.NO_MAPPED_GROUP, "mallory")
    assert not get_user_model().objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_someone_who_lost_every_mapped_group_loses_their_groups_and_is_refused(sso):
    sign_in("rita", "fleet-rm")
    with pytest.raises(SignInRefused, match="none of the person's provider groups is mapped"):
        sign_in("rita")
    assert group_names(get_user_model().objects.get(username="rita")) == set()
    assert group_events()[-1].details["removed"] == [RELEASE_MANAGERS]


@pytest.mark.django_db
def test_with_unmapped_users_allowed_they_sign_in_with_no_role(sso):
    sso.FLEET_OIDC_UNMAPPED_USERS = "allow"
    nora = sign_in("nora", "lunch-club")
    assert group_names(nora) == set() and not nora.has_perm("rollouts.view_fleet")
    assert group_events()[-1].details["created"] is True


@pytest.mark.django_db
def test_a_local_account_with_a_password_is_not_taken_over_by_the_same_name(sso):
    user_create(username="ada", role=ADMINS, password="local-pass")
    with pytest.raises(SignInRefused) as refused:
        sign_in("ada", "fleet-view")
    assert refused.value.reason == Refusal.LOCAL_ACCOUNT
    ada = get_user_model().objects.get(username="ada")
    assert group_names(ada) == {ADMINS} and ada.is_superuser


@pytest.mark.django_db
def test_a_deactivated_account_is_refused_and_left_alone(sso):
    rita = sign_in("rita", "fleet-rm")
    rita.is_active = False
    rita.save()
    with pytest.raises(SignInRefused) as refused:
        sign_in("rita", "fleet-admins")
    assert refused.value.reason == Refusal.INACTIVE and group_names(rita) == {RELEASE_MANAGERS}


@pytest.mark.django_db
@pytest.mark.parametrize("claims", [{"preferred_username": None}, {"preferred_username": ""},
                                    {"preferred_username": "no spaces allowed"}])
def test_a_missing_or_invalid_user_name_claim_is_refused(sso, claims):
    with pytest.raises(SignInRefused) as refused:
        oidc_sign_in(claims={"sub": "x", "groups": ["fleet-rm"], **claims}, client_address="192.0.2.7")
    assert refused.value.reason == Refusal.MISSING_USERNAME
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_the_user_name_and_groups_claims_are_configurable(sso):
    sso.FLEET_OIDC_USERNAME_CLAIM, sso.FLEET_OIDC_GROUPS_CLAIM = "email", "realm_access.roles"
    user = oidc_sign_in(claims={"sub": "x", "email": "rita@example.com", "realm_access": {"roles": ["fleet-rm"]}},
                        client_address="")
    assert (user.username, group_names(user)) == ("rita@example.com", {RELEASE_MANAGERS})
