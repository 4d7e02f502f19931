"""The theme toggle: remembered per person on the server, in the session
(pages read it without a query) and in a cookie (the login page); the page
is rendered in it, so the first paint is right without a script.

Personas: vera is a viewer."""

import pytest
from django.test import Client

from rollouts import models as m
from rollouts.roles import VIEWERS, user_create
from tests.fleet_builders import signed_in

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def html_tag(client, url="/runs/") -> str:
    return client.get(url).content.decode().split("\n")[1]


def test_without_a_choice_the_page_follows_the_browser():
    vera = signed_in("vera", VIEWERS)
    assert html_tag(vera) == '<html lang="en">'
    assert 'aria-pressed="false">Dark theme</button>' in vera.get("/runs/").content.decode()


def test_the_toggle_remembers_the_theme_for_the_person_and_this_browser():
    vera = signed_in("vera", VIEWERS)
    response = vera.post("/accounts/theme/", {"theme": "dark", "next": "/runs/"})
    assert response.status_code == 302 and response["Location"] == "/runs/"
    assert m.UserPreference.objects.get(user__username="vera").theme == "dark"
    assert response.cookies["fleet_theme"].value == "dark" and response.cookies["fleet_theme"]["httponly"]
    assert html_tag(vera) == '<html lang="en" data-theme="dark">'
    assert 'aria-pressed="true">Dark theme</button>' in vera.get("/runs/").content.decode()


def test_the_script_gets_no_content_and_the_page_stays():
    vera = signed_in("vera", VIEWERS)
    response = vera.post("/accounts/theme/", {"theme": "light"}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert html_tag(vera) == '<html lang="en" data-theme="light">'


def test_another_browser_signing_in_gets_the_persons_theme_and_the_login_page_keeps_this_ones():
    user_create(username="vera", role=VIEWERS, password=PASSWORD)
    first = Client()
    first.post("/accounts/login/", {"username": "vera", "password": PASSWORD})
    first.post("/accounts/theme/", {"theme": "dark"})
    second = Client()
    assert html_tag(second, "/accounts/login/") == '<html lang="en">'
    second.post("/accounts/login/", {"username": "vera", "password": PASSWORD})
    assert html_tag(second) == '<html lang="en" data-theme="dark">'
    first.post("/accounts/logout/")
    assert html_tag(first, "/accounts/login/") == '<html lang="en" data-theme="dark">'  # the cookie


@pytest.mark.parametrize("value", ["", "purple", "dark<script>"])
def test_an_unknown_theme_is_refused_naming_the_field(value):
    vera = signed_in("vera", VIEWERS)
    response = vera.post("/accounts/theme/", {"theme": value})
    assert response.status_code == 400
    assert response.content.decode().startswith("theme must be one of auto, light, dark")
    assert not m.UserPreference.objects.exists()


def test_a_forged_next_does_not_redirect_elsewhere():
    vera = signed_in("vera", VIEWERS)
    response = vera.post("/accounts/theme/", {"theme": "dark", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_signed_out_the_toggle_is_not_there_and_posting_asks_to_sign_in():
    client = Client()
    assert "theme-toggle" not in client.get("/accounts/login/").content.decode()
    response = client.post("/accounts/theme/", {"theme": "dark"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not m.UserPreference.objects.exists()


def test_a_page_reads_the_theme_without_a_query(django_assert_num_queries):
    vera = signed_in("vera", VIEWERS)
    vera.post("/accounts/theme/", {"theme": "dark"})
    with django_assert_num_queries(10):  # as tests/test_views_audit.py counts the audit page
        assert 'data-theme="dark"' in vera.get("/audit/").content.decode()


def test_following_the_system_theme_again_is_offered_once_a_theme_is_chosen_and_forgets_it():
    vera = signed_in("vera", VIEWERS)
    assert '<form method="post" action="/accounts/theme/" class="theme-form theme-reset" hidden>' in (
        vera.get("/runs/").content.decode())
    vera.post("/accounts/theme/", {"theme": "dark", "next": "/runs/"})
    page = vera.get("/runs/").content.decode()
    assert '<form method="post" action="/accounts/theme/" class="theme-form theme-reset">' in page
    assert ">Follow system theme</button>" in page
    vera.post("/accounts/theme/", {"theme": "auto", "next": "/runs/"})
    assert html_tag(vera) == '<html lang="en">'
    assert m.UserPreference.objects.get(user__username="vera").theme == "auto"
