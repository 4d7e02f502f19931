"""Single sign-on through the pages: the login page's button, the redirect
to the provider, and every way the callback ends (signed in, refused,
failed), each audited with `via: oidc`; and password sign-in switched off.

The provider here is a fake token and userinfo endpoint answering in this
process with RS256-signed ID tokens (tests/browser/test_sso.py runs a real
one). Clients enforce CSRF checks, as browsers do."""

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.test import Client

from rollouts import models as m
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, roles_ensure, user_create
from tests.test_security import assert_security_headers

pytestmark = pytest.mark.django_db

ISSUER = "https://id.example.test"
BROWSER = "192.0.2.44"


class FakeResponse:
    def __init__(self, payload: dict, status_code: int = 200):
        self.payload, self.status_code, self.url, self.text = payload, status_code, "", ""
        self.headers = {"content-type": "application/json"}

    def json(self) -> dict:
        return self.payload

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code}", response=self)


class FakeProvider:
    """Answers the token and userinfo requests mozilla-django-oidc makes,
    for the person whose claims the test sets; `id_token` overrides claims
    of the ID token only (a wrong issuer, audience or nonce)."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claims: dict = {}
        self.id_token: dict = {}
        self.nonce = ""
        self.down = False

    @property
    def public_pem(self) -> str:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def post(self, url, data=None, **kwargs):
        if self.down:
            raise requests.ConnectionError("connection refused")
        assert url == f"{ISSUER}/token" and data["code"] == "the-code" and data["code_verifier"]
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": "fleet-ui", "iat": now, "exp": now + 300, "nonce": self.nonce,
                  **self.claims, **self.id_token}
        token = jwt.encode(claims, self.key, algorithm="RS256")
        return FakeResponse({"id_token": token, "access_token": "the-access-token", "token_type": "Bearer"})

    def get(self, url, headers=None, **kwargs):
        assert url == f"{ISSUER}/userinfo" and headers["Authorization"] == "Bearer the-access-token"
        return FakeResponse(dict(self.claims))


@pytest.fixture
def provider(settings, monkeypatch):
    fake = FakeProvider()
    settings.FLEET_OIDC_ENABLED = True
    settings.FLEET_OIDC_PROVIDER_NAME = "Example ID"
    settings.FLEET_OIDC_ISSUER = ISSUER
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "fleet-ui", "client-secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT, settings.OIDC_OP_USER_ENDPOINT = f"{ISSUER}/token", f"{ISSUER}/userinfo"
    settings.OIDC_RP_IDP_SIGN_KEY = fake.public_pem
    settings.FLEET_OIDC_GROUP_MAP = {"fleet-admins": (ADMINS,), "fleet-rm": (RELEASE_MANAGERS,), "sre": ("sre",)}
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend",
                                        "rollouts.auth_backends.OIDCBackend"]
    monkeypatch.setattr("mozilla_django_oidc.auth.requests.post", fake.post)
    monkeypatch.setattr("mozilla_django_oidc.auth.requests.get", fake.get)
    roles_ensure()
    return fake


def browser() -> Client:
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=BROWSER)


def start(client: Client, provider: FakeProvider, next_url: str = "/runs/") -> str:
    """Follow the sign-on button to the provider; returns the state."""
    response = client.get(f"/accounts/oidc/authenticate/?next={next_url}")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize"
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["redirect_uri"] == "http://testserver/accounts/oidc/callback/"
    assert query["code_challenge_method"] == "S256" and query["client_id"] == "fleet-ui"
    provider.nonce = query["nonce"]
    return query["state"]


def sign_in(provider: FakeProvider, username: str, *groups: str, client: Client | None = None, **id_token):
    client = client or browser()
    provider.claims = {"sub": f"sub-{username}", "preferred_username": username, "groups": list(groups)}
    provider.id_token = id_token
    state = start(client, provider)
    return client, client.get(f"/accounts/oidc/callback/?code=the-code&state={state}")


def oidc_events(action: str) -> list[m.Event]:
    return list(m.Event.objects.filter(action=action, details__via="oidc").order_by("id"))


def test_the_login_page_offers_the_provider_beside_the_password_form(provider):
    page = browser().get("/accounts/login/?next=/runs/").content.decode()
    assert 'href="/accounts/oidc/authenticate/?next=/runs/">Sign in with Example ID</a>' in page
    assert 'name="password"' in page


def test_without_a_provider_there_is_no_button_and_the_sso_pages_are_404(settings):
    settings.FLEET_OIDC_ENABLED = False
    assert b"Sign in with" not in browser().get("/accounts/login/").content
    assert browser().get("/accounts/oidc/authenticate/").status_code == 404
    assert browser().get("/accounts/oidc/callback/?code=x&state=y").status_code == 404


def test_a_sign_in_lands_on_the_page_asked_for_with_the_mapped_role_and_is_audited(provider):
    client, response = sign_in(provider, "rita", "fleet-rm", "lunch-club")
    assert (response.status_code, response["Location"]) == (302, "/runs/")
    assert client.get("/runs/").status_code == 200
    rita = get_user_model().objects.get(username="rita")
    assert rita.has_perm("rollouts.approve_stage") and not rita.has_usable_password()
    [login] = oidc_events("login")
    assert (login.actor, login.details) == ("rita", {"client_address": BROWSER, "via": "oidc"})
    [groups] = oidc_events("configured")
    assert (groups.actor, groups.reason, groups.details["added"]) == ("rita", "GroupsFromProvider", [RELEASE_MANAGERS])


def test_a_group_change_at_the_provider_reaches_the_next_sign_in(provider):
    sign_in(provider, "rita", "fleet-rm")
    client, _ = sign_in(provider, "rita", "sre")
    rita = get_user_model().objects.get(username="rita")
    assert set(rita.groups.values_list("name", flat=True)) == {"sre"}
    assert client.post("/runs/example-run/stop/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value).status_code == 403
    assert oidc_events("configured")[-1].details["removed"] == [RELEASE_MANAGERS]
    assert len(oidc_events("login")) == 2


def test_signing_in_again_in_the_same_browser_is_audited_again(provider):
    client, _ = sign_in(provider, "rita", "fleet-rm")
    sign_in(provider, "rita", "fleet-rm", client=client)
    assert len(oidc_events("login")) == 2


def refusal(client: Client, response) -> tuple[int, str, str]:
    """The callback's answer: status, where it sends the browser, and the
    one line the login page then shows."""
    page = client.get(response["Location"]).content.decode()
    line = next(line.strip() for line in page.splitlines() if "Sign-in with Example ID failed" in line)
    return response.status_code, response["Location"], line


def test_a_callback_whose_state_is_not_this_browsers_is_refused_and_audited(provider):
    client = browser()
    start(client, provider)
    response = client.get("/accounts/oidc/callback/?code=the-code&state=forged-state")
    status, location, line = refusal(client, response)
    assert (status, location) == (302, "/accounts/login/")
    assert "the sign-in answer does not belong to this browser session" in line
    [failed] = oidc_events("login-failed")
    assert (failed.actor, failed.reason, failed.details) == ("anonymous", "StateMismatch",
                                                             {"client_address": BROWSER, "via": "oidc"})
    assert "_auth_user_id" not in client.session


def test_a_provider_error_is_refused_and_audited_with_its_code(provider):
    client = browser()
    state = start(client, provider)
    response = client.get(f"/accounts/oidc/callback/?error=access_denied&error_description=User+said+no&state={state}")
    assert "the provider answered access_denied: User said no" in refusal(client, response)[2]
    [failed] = oidc_events("login-failed")
    assert (failed.reason, failed.details["error"]) == ("ProviderError", "access_denied")
    # The state is spent: replaying it with a code is a mismatch.
    client.get(f"/accounts/oidc/callback/?code=the-code&state={state}")
    assert oidc_events("login-failed")[-1].reason == "StateMismatch"


@pytest.mark.parametrize("id_token", [
    pytest.param({"iss": "https://evil.example.test"}, id="another-issuer"),
    pytest.param({"aud": "another-client"}, id="another-audience"),
    pytest.param({"nonce": "replayed-nonce"}, id="another-nonce"),
])
def test_an_id_token_that_does_not_verify_signs_no_one_in(provider, id_token):
    client, response = sign_in(provider, "rita", "fleet-rm", **id_token)
    assert response["Location"] == "/accounts/login/" and "_auth_user_id" not in client.session
    assert [e.reason for e in oidc_events("login-failed")] == ["TokenInvalid"]
    assert not get_user_model().objects.filter(username="rita").exists()


def test_an_unmapped_person_is_refused_and_audited_as_denied(provider):
    client, response = sign_in(provider, "mallory", "lunch-club")
    assert "none of the person&#x27;s provider groups is mapped" in refusal(client, response)[2]
    [denied] = oidc_events("denied")
    assert (denied.actor, denied.reason) == ("mallory", "NoMappedGroup")
    assert not oidc_events("login")


def test_a_provider_that_cannot_be_reached_is_one_line_not_a_500(provider):
    provider.down = True
    client, response = sign_in(provider, "rita", "fleet-rm")
    assert "ConnectionError talking to the provider" in refusal(client, response)[2]
    assert oidc_events("login-failed")[0].reason == "ProviderUnreachable"


def test_the_login_page_with_the_button_keeps_the_security_headers(provider):
    assert_security_headers(browser().get("/accounts/login/"), "/accounts/login/ with SSO")


# Password sign-in switched off ---------------------------------------------------------------------------------

@pytest.fixture
def sso_only(provider, settings):
    settings.FLEET_LOCAL_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = ["rollouts.auth_backends.OIDCBackend"]
    user_create(username="vera", role=VIEWERS, password="s3cret-pass")
    user_create(username="ada", role=ADMINS, password="ada-pass")
    return provider


def post_password(url: str, username: str, password: str):
    client = browser()
    client.get("/accounts/login/")
    return client, client.post(url, {"username": username, "password": password},
                               HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


def test_with_local_login_off_the_page_has_only_the_button(sso_only):
    page = browser().get("/accounts/login/").content.decode()
    assert "Sign in with Example ID" in page and 'name="password"' not in page


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_with_local_login_off_a_right_password_is_refused_and_audited(sso_only, url):
    client, response = post_password(url, "ada", "ada-pass")
    assert response.status_code == 403 and "_auth_user_id" not in client.session
    assert b"Password sign-in is switched off here" in response.content
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.reason, denied.details) == ("ada", "LocalLoginDisabled", {"client_address": BROWSER})
    assert not m.Event.objects.filter(action__in=["login", "login-failed"]).exists()


def test_with_local_login_off_the_admin_sends_people_to_the_sign_on_page(sso_only):
    response = browser().get("/admin/")
    assert response.status_code == 302
    response = browser().get(response["Location"])
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=%2Fadmin%2F")


def test_with_local_login_off_an_admin_signs_in_to_the_admin_through_the_provider(sso_only):
    client, _ = sign_in(sso_only, "olga", "fleet-admins")
    assert client.get("/admin/").status_code == 200
    viewer, _ = sign_in(sso_only, "sam", "sre")
    assert viewer.get("/admin/login/?next=/admin/").status_code == 403  # no redirect loop
