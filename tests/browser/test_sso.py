"""Single sign-on end to end: Chromium, Fleet UI (live_server, on
localhost) and a real OpenID Connect provider in its own process on
127.0.0.1 (django-oauth-toolkit, tests/oidc_provider: RS256 ID tokens
checked against its JWKS, PKCE, userinfo).

Rita signs in through the provider's own login form and lands on the
dashboard as a release manager; the provider then moves her from fleet-rm
to fleet-view and sre, and at her next sign-in Fleet UI's groups follow.
Password sign-in is switched off throughout."""

import pytest
from playwright.sync_api import expect

from rollouts import models as m
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, roles_ensure
from tests.fleet_builders import approval_request, run_obj, tutorial_waiting_at_canary
from tests.oidc_provider.server import OidcProvider

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROVIDER_PASSWORD = "provider-pass-1234"
CLIENT_SECRET = "fleet-ui-client-secret"


@pytest.fixture
def provider(tmp_path):
    server = OidcProvider(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def sso(settings, provider, live_server):
    """Fleet UI configured as FLEET_OIDC_* would, for this provider, SSO only."""
    for name, value in provider.endpoints().items():
        setattr(settings, name, value)
    settings.FLEET_OIDC_ENABLED, settings.FLEET_OIDC_PROVIDER_NAME = True, "Test ID"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "fleet-ui", CLIENT_SECRET
    settings.FLEET_OIDC_GROUP_MAP = {"fleet-rm": (RELEASE_MANAGERS,), "fleet-view": (VIEWERS,), "sre": ("sre",)}
    settings.FLEET_LOCAL_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = ["rollouts.auth_backends.OIDCBackend"]
    provider.client("fleet-ui", CLIENT_SECRET, f"{live_server.url}/accounts/oidc/callback/")
    roles_ensure()
    return provider


@pytest.fixture
def waiting_at_canary(frozen_clock):
    tutorial_waiting_at_canary()
    assert run_obj().condition("Progressing")["reason"] == "UpdateRunWaiting"
    return approval_request("example-run-canary")


def sign_in(page, base_url: str, *, username: str = "", password: str = "") -> None:
    """Press the sign-on button; fill the provider's form when it asks
    (it does not while it still has a session of its own)."""
    page.goto("/accounts/login/")
    expect(page.get_by_label("Password")).to_have_count(0)  # local passwords are off
    page.get_by_role("link", name="Sign in with Test ID").click()
    if username:
        page.get_by_label("Provider user name").fill(username)
        page.get_by_label("Provider password").fill(password)
        page.get_by_role("button", name="Sign in to Test ID").click()
    page.wait_for_url(f"{base_url}/")


def test_a_person_signs_in_at_the_provider_and_their_groups_follow_it_at_the_next_sign_in(
        page, sso, live_server, waiting_at_canary):
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    sso.user("rita", "fleet-rm", "lunch-club", password=PROVIDER_PASSWORD)

    sign_in(page, live_server.url, username="rita", password=PROVIDER_PASSWORD)
    expect(page.locator(".who")).to_contain_text("rita · release managers")
    page.goto("/runs/example-run/")
    expect(page.get_by_role("link", name="Approve…")).to_have_count(1)

    sso.user("rita", "fleet-view", "sre")  # at the provider: out of fleet-rm, into fleet-view and sre
    page.get_by_role("button", name="Log out").click()
    sign_in(page, live_server.url)
    for group in ("viewers", "sre"):
        expect(page.locator(".who")).to_contain_text(f" · {group}")
    expect(page.locator(".who")).not_to_contain_text("release managers")
    page.goto("/runs/example-run/")
    expect(page.locator("#run-sentence")).to_contain_text("waiting for approval")
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)

    logins = m.Event.objects.filter(action="login", actor="rita").order_by("id")
    assert [e.details["via"] for e in logins] == ["oidc", "oidc"]
    changes = [(e.details["added"], e.details["removed"])
               for e in m.Event.objects.filter(reason="GroupsFromProvider").order_by("id")]
    assert changes == [([RELEASE_MANAGERS], []), (["sre", VIEWERS], [RELEASE_MANAGERS])]
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
