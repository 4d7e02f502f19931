"""Sessions and the browser's copy of pages: the idle timeout, no-store,
password validators, and the embedded database kept owner-only. Persona:
vera, a viewer."""

import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from fleetui.settings import private_directory, private_sqlite_file
from rollouts.demo_users import demo_users_create
from rollouts.roles import VIEWERS, user_create
from rollouts.sessions import SEEN_KEY

pytestmark = pytest.mark.django_db
ROOT = Path(settings.BASE_DIR)


@pytest.fixture
def vera() -> Client:
    user_create(username="vera", role=VIEWERS, password="s3cret-pass-long")
    client = Client()
    assert client.login(username="vera", password="s3cret-pass-long")
    client.get("/")
    return client


def expiry(client: Client):
    return Session.objects.get(session_key=client.session.session_key).expire_date


def age_session(client: Client, seconds: int) -> None:
    """Pretend the session was last renewed `seconds` ago."""
    session = client.session
    session[SEEN_KEY] = session[SEEN_KEY] - seconds
    session.save()
    Session.objects.filter(session_key=session.session_key).update(
        expire_date=timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - seconds))


def test_a_session_lives_the_idle_timeout_from_the_last_activity(vera):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    remaining = expiry(vera) - timezone.now()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)


def test_activity_renews_the_session_at_most_once_a_minute(vera):
    age_session(vera, 10)
    before = expiry(vera)
    vera.get("/runs/")
    assert expiry(vera) == before, "renewed again within the minute"
    age_session(vera, 120)
    vera.get("/runs/")
    assert expiry(vera) - timezone.now() > timedelta(minutes=29)


def test_a_pages_automatic_refresh_does_not_keep_a_session_alive(vera):
    age_session(vera, 120)
    before = expiry(vera)
    vera.get("/", headers={"X-Fleet-Poll": "true", "HX-Request": "true"})
    assert expiry(vera) == before


def test_an_idle_session_is_signed_out(vera):
    Session.objects.filter(session_key=vera.session.session_key).update(expire_date=timezone.now() - timedelta(1))
    response = vera.get("/runs/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("url", ["/", "/runs/", "/audit/", "/audit/export.csv", "/audit/export.json",
                                 "/accounts/login/"])
def test_pages_and_exports_are_not_stored_by_the_browser(vera, url):
    assert "no-store" in vera.get(url)["Cache-Control"]


def test_static_files_stay_cacheable():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from fleetui.middleware import no_store

    response = no_store(lambda request: HttpResponse("css"))(RequestFactory().get("/static/fleetui.css"))
    assert "Cache-Control" not in response


@pytest.mark.parametrize("password", ["password", "12345678901", "short", "valentina-k"])
def test_weak_passwords_are_refused(password):
    user = user_create(username="valentina-k", role=VIEWERS)[0]
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_demo_and_generated_passwords_pass_the_validators():
    for demo in demo_users_create():
        validate_password(demo.password)
    user, password = user_create(username="vera", role=VIEWERS)
    validate_password(password, user)


def test_the_admin_refuses_a_weak_password_for_a_new_user():
    user_create(username="ada", role="admins", password="ada-long-pass-1")
    admin = Client()
    assert admin.login(username="ada", password="ada-long-pass-1")
    response = admin.post("/admin/auth/user/add/", {"username": "newbie", "password1": "password",
                                                   "password2": "password", "usable_password": "true"})
    assert response.status_code == 200 and b"This password is too common" in response.content


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_var_and_the_sqlite_file_are_created_owner_only(tmp_path):
    var = private_directory(tmp_path / "var")
    private_sqlite_file(var / "fleetui.sqlite3")
    assert (mode(var), mode(var / "fleetui.sqlite3")) == (0o700, 0o600)


def test_existing_ones_are_tightened(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    (var / "db").write_text("")
    (var / "db").chmod(0o644)
    private_directory(var)
    private_sqlite_file(var / "db")
    assert (mode(var), mode(var / "db")) == (0o700, 0o600)


def test_a_fresh_embedded_database_and_its_wal_are_owner_only(tmp_path):
    database = tmp_path / "var" / "fleetui.sqlite3"
    database.parent.mkdir(mode=0o700)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DEBUG": "true",
           "DJANGO_SETTINGS_MODULE": "fleetui.settings"}
    done = subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert done.returncode == 0, done.stderr[-2000:]
    files = [p for p in database.parent.iterdir() if p.name.startswith("fleetui.sqlite3")]
    assert files and all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}
    assert mode(ROOT / "var") == 0o700
