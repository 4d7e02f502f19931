"""Logins in the audit log, and the failed-login rate limit: vera logs in
and out, mallory guesses passwords from one address and is refused after
FLEET_LOGIN_MAX_FAILURES tries, whatever user names he tries."""

import pytest
from django.test import Client

from rollouts import models as m
from rollouts.roles import ADMINS, VIEWERS, user_create

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
MALLORY = "10.9.8.7"


@pytest.fixture(autouse=True)
def accounts(settings, frozen_clock):
    """vera and ada; returns how many events creating their accounts wrote
    (account changes are audited too), so tests see only their own."""
    settings.FLEET_LOGIN_MAX_FAILURES = 3
    settings.FLEET_LOGIN_WINDOW_MINUTES = 15
    user_create(username="vera", role=VIEWERS, password="s3cret-pass")
    user_create(username="ada", role=ADMINS, password="ada-pass")
    return m.Event.objects.count()


@pytest.fixture
def since_setup(accounts):
    return m.Event.objects.order_by("id").values_list("id", flat=True)[accounts - 1] if accounts else 0


def from_address(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def attempt(client: Client, username: str, password: str = "wrong", url: str = LOGIN):
    return client.post(url, {"username": username, "password": password})


def login_events(after: int = 0) -> list[tuple]:
    return list(m.Event.objects.filter(id__gt=after).order_by("id").values_list("action", "actor", "object_kind", "details"))


def test_a_login_and_a_logout_are_recorded_with_the_client_address(since_setup):
    client = from_address("192.0.2.10")
    assert attempt(client, "vera", "s3cret-pass").status_code == 302
    client.post("/accounts/logout/")
    assert login_events(since_setup) == [("login", "vera", "User", {"client_address": "192.0.2.10"}),
                              ("logout", "vera", "User", {"client_address": "192.0.2.10"})]


def test_a_failed_login_is_recorded_with_the_name_tried_and_never_the_password(since_setup):
    assert attempt(from_address(MALLORY), "vera", "hunter2").status_code == 200
    event = m.Event.objects.get(id__gt=since_setup)
    assert (event.action, event.actor, event.reason) == ("login-failed", "vera", "InvalidCredentials")
    assert event.details == {"client_address": MALLORY}
    assert "hunter2" not in str(list(m.Event.objects.values()))


def test_the_limit_refuses_even_the_right_password_and_records_the_denial():
    mallory = from_address(MALLORY)
    for _ in range(3):
        attempt(mallory, "vera")
    response = attempt(mallory, "vera", "s3cret-pass")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content and b"Try again in 15 minutes" in response.content
    assert "_auth_user_id" not in mallory.session
    denied = m.Event.objects.filter(action=m.Event.Action.DENIED).get()
    assert (denied.actor, denied.reason, denied.details) == ("vera", "TooManyFailedLogins",
                                                             {"client_address": MALLORY})
    # The refused attempt checks no password: no further login-failed row.
    assert m.Event.objects.filter(action="login-failed").count() == 3


def test_the_limit_counts_every_name_tried_from_one_address():
    mallory = from_address(MALLORY)
    for name in ("root", "admin", "ada"):
        attempt(mallory, name)
    assert attempt(mallory, "vera", "s3cret-pass").status_code == 429
    assert attempt(from_address("192.0.2.10"), "vera", "s3cret-pass").status_code == 302


def test_the_limit_counts_one_name_tried_from_many_addresses():
    for i in range(3):
        attempt(from_address(f"10.0.0.{i}"), "vera")
    response = attempt(from_address("192.0.2.10"), "vera", "s3cret-pass")
    assert response.status_code == 429 and b"for this user name" in response.content


def test_the_limit_lifts_after_the_window(frozen_clock):
    mallory = from_address(MALLORY)
    for _ in range(3):
        attempt(mallory, "vera")
    frozen_clock.advance(15 * 60 + 1)
    assert attempt(mallory, "vera", "s3cret-pass").status_code == 302


def test_a_success_resets_the_count_of_the_name_but_not_of_the_address():
    office = from_address("192.0.2.10")
    attempt(office, "vera")
    attempt(office, "vera")
    assert attempt(office, "vera", "s3cret-pass").status_code == 302
    office.post("/accounts/logout/")
    other = from_address("192.0.2.11")
    attempt(other, "vera")
    attempt(other, "vera")
    assert attempt(other, "vera", "s3cret-pass").status_code == 302  # 2 failures for vera since her login
    attempt(office, "ada")  # the office address's third failure: its success did not reset it
    assert attempt(office, "ada", "ada-pass").status_code == 429


def test_the_admin_login_is_under_the_same_limit():
    mallory = from_address(MALLORY)
    for _ in range(3):
        attempt(mallory, "ada", url="/admin/login/")
    response = attempt(mallory, "ada", "ada-pass", url="/admin/login/")
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in mallory.session
    assert m.Event.objects.filter(action="denied", actor="ada").count() == 1


def test_login_events_join_the_audit_chain(fleet, accounts):
    attempt(from_address(MALLORY), "vera")
    attempt(from_address("192.0.2.10"), "vera", "s3cret-pass")
    code, out, _err = fleet("audit", "verify")
    assert (code, out.split(",")[0]) == (0, f"audit log intact: {accounts + 2} events")


def test_an_action_refused_for_want_of_a_role_is_recorded_as_denied():
    vera = from_address("192.0.2.10")
    vera.force_login(_user("vera"))
    assert vera.post("/runs/example-run/stop/").status_code == 403
    assert vera.get("/audit/").status_code == 200
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.object_name, denied.reason) == ("vera", "/runs/example-run/stop/",
                                                                 "MissingPermission")
    assert denied.message == "you need the rollouts.operate_run permission"
    assert denied.details == {"client_address": "192.0.2.10", "method": "POST"}


def _user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


# Hostile text and floods from the login form and forged posts -----------------------------------

ANSI_NAME = "\x1b[2J\x1b[31mroot\nadmin\u202e\x7f" + "x" * 120  # the form takes 150 characters


def test_control_characters_in_a_failed_login_name_are_stored_as_visible_escapes():
    attempt(from_address(MALLORY), ANSI_NAME)
    event = m.Event.objects.get(action="login-failed")
    assert event.actor.startswith("\\x1b[2J\\x1b[31mroot\\x0aadmin\\u202e\\x7fxxx")
    assert len(event.actor) == 150 and len(event.object_name) <= 253
    assert not any(ord(c) < 32 or c == "\u202e" for c in event.actor + event.object_name)


def test_a_backslash_is_doubled_so_an_escape_cannot_be_faked():
    from rollouts.services.events import untrusted_text

    assert untrusted_text("a\\x1b\x1b", 50) == "a\\\\x1b\\x1b"
    assert untrusted_text("ab\x1b", 5) == "ab", "an escape is never cut in half"


def test_control_characters_in_a_forged_posts_path_are_stored_as_visible_escapes():
    vera = from_address("192.0.2.10")
    vera.force_login(_user("vera"))
    assert vera.post("/runs/%1B%5B31mrun%0A/stop/").status_code == 403
    denied = m.Event.objects.get(action="denied")
    assert denied.object_name == "/runs/\\x1b[31mrun\\x0a/stop/"


def test_refused_logins_write_one_denied_row_a_minute_and_count_the_rest(frozen_clock):
    mallory = from_address(MALLORY)
    for _ in range(3):
        attempt(mallory, "vera")
    for _ in range(10):
        assert attempt(mallory, "vera").status_code == 429
    assert m.Event.objects.filter(action="denied").count() == 1
    frozen_clock.advance(61)
    assert attempt(mallory, "vera").status_code == 429
    rows = list(m.Event.objects.filter(action="denied").order_by("id").values_list("details", flat=True))
    assert rows == [{"client_address": MALLORY}, {"client_address": MALLORY, "suppressed_before": 9}]


def test_forged_posts_write_one_denied_row_a_minute(frozen_clock):
    vera = from_address("192.0.2.10")
    vera.force_login(_user("vera"))
    for _ in range(20):
        assert vera.post("/runs/example-run/stop/").status_code == 403
    assert m.Event.objects.filter(action="denied").count() == 1
    frozen_clock.advance(60)
    vera.post("/runs/example-run/stop/")
    assert m.Event.objects.filter(action="denied").last().details["suppressed_before"] == 19


def test_the_exports_show_control_characters_as_escapes_and_never_start_a_formula(fleet):
    from rollouts.services.events import record

    record(actor="=cmd|' /C calc'!A0", action="patched", kind_name="ConfigMap", name="app",
           message="line one\nline two \x1b[31mred\u202e")
    client = from_address("192.0.2.10")
    client.force_login(_user("vera"))
    csv_text = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    assert "\x1b" not in csv_text and "\u202e" not in csv_text
    assert "line one\\x0aline two \\x1b[31mred\\u202e" in csv_text
    assert "'=cmd|" in csv_text
    json_text = b"".join(client.get("/audit/export.json").streaming_content).decode()
    assert "\x1b" not in json_text and "\u202e" not in json_text
    import json

    assert [r["message"] for r in json.loads(json_text) if r["actor"].startswith("=")] == ["line one\nline two \x1b[31mred\u202e"]
