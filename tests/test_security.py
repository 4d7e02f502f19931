"""Who may open a live socket, CSRF on every POST, the security headers of
every page, the cookie and HTTPS settings outside DEBUG, and the rules that
keep the pages free of inline code (docs/security.md).

Personas: vera, a viewer; ada, an admin; an anonymous visitor."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from fleetui.asgi import application
from rollouts import broadcast
from rollouts import urls as rollout_urls
from rollouts.roles import ADMINS, VIEWERS, user_create
from tests.fleet_builders import (
    approval_request,
    run_obj,
    tutorial_waiting_at_canary,
)
from tests.payloads import parse
from tests.test_consumers import asynchronously

BASE_DIR = Path(settings.BASE_DIR)
TIMEOUT = 5


@pytest.fixture
def waiting_at_canary(frozen_clock):
    tutorial_waiting_at_canary()
    return approval_request("example-run-canary")


# WebSockets, through the whole ASGI application -------------------------------------------------


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(path: str, *, origin: str | None = "http://localhost", session: str | None = None,
                 host: str = "localhost"):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if session is not None:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connects(path: str, **kwargs) -> tuple[bool, int | None]:
    socket = communicator(path, **kwargs)
    accepted, code = await socket.connect(timeout=TIMEOUT)
    if accepted:
        await socket.disconnect()
    return accepted, code


SOCKET_PATHS = [broadcast.OVERVIEW_SOCKET_PATH, "run"]


def socket_path(which: str) -> str:
    return broadcast.run_socket_path(run_obj()) if which == "run" else which


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("which", SOCKET_PATHS)
@asynchronously
async def test_a_signed_in_viewer_from_this_site_is_accepted(waiting_at_canary, which):
    vera = await database_sync_to_async(lambda: user_create(username="vera", role=VIEWERS)[0])()
    session = await database_sync_to_async(session_cookie)(vera)
    path = await database_sync_to_async(socket_path)(which)
    for host in ("localhost", "127.0.0.1:8000"):
        assert (await connects(path, origin=f"http://{host}", session=session, host=host))[0], host


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("which", SOCKET_PATHS)
@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null",
                                    "http://evil.example:8000", None])
@asynchronously
async def test_a_socket_from_another_origin_or_none_is_refused_even_with_a_session(waiting_at_canary, which, origin):
    vera = await database_sync_to_async(lambda: user_create(username="vera", role=VIEWERS)[0])()
    session = await database_sync_to_async(session_cookie)(vera)
    path = await database_sync_to_async(socket_path)(which)
    assert not (await connects(path, origin=origin, session=session))[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("host", "origin"), [
    pytest.param("127.0.0.1:8000", "http://localhost:9999", id="another-port-of-an-allowed-host"),
    pytest.param("127.0.0.1:8000", "http://127.0.0.1:9999", id="another-port-same-host"),
    pytest.param("127.0.0.1:8000", "https://127.0.0.1", id="https-default-port"),
    pytest.param("127.0.0.1", "https://127.0.0.1", id="https-for-an-http-site"),
    pytest.param("localhost", "http://127.0.0.1", id="another-allowed-host"),
    pytest.param("evil.example", "http://evil.example", id="a-host-not-allowed"),
    pytest.param("localhost", "http://localhost/path", id="not-an-origin"),
])
@asynchronously
async def test_a_socket_from_another_scheme_or_port_of_this_host_is_refused(waiting_at_canary, host, origin):
    vera = await database_sync_to_async(lambda: user_create(username="vera", role=VIEWERS)[0])()
    session = await database_sync_to_async(session_cookie)(vera)
    assert not (await connects(broadcast.OVERVIEW_SOCKET_PATH, origin=origin, session=session, host=host))[0]


def origin_scope(origin: str, host: str, scheme: str = "ws", **extra_headers) -> dict:
    headers = [(b"origin", origin.encode()), (b"host", host.encode())]
    headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in extra_headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": headers}


def test_a_secure_socket_is_accepted_only_from_the_https_page_of_its_host():
    from fleetui.origins import origin_allowed

    assert origin_allowed(origin_scope("https://localhost:8443", "localhost:8443", "wss"))
    assert not origin_allowed(origin_scope("http://localhost:8443", "localhost:8443", "wss"))
    assert not origin_allowed(origin_scope("https://localhost:8443", "localhost:8443", "ws"))


def test_behind_a_trusted_proxy_the_forwarded_scheme_counts(settings):
    from fleetui.origins import origin_allowed

    scope = origin_scope("https://localhost", "localhost", "ws", x_forwarded_proto="https")
    assert not origin_allowed(scope)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope)


def test_csrf_trusted_origins_may_open_sockets_exactly(settings):
    from fleetui.origins import origin_allowed

    settings.CSRF_TRUSTED_ORIGINS = ["https://fleet.example.com"]
    assert origin_allowed(origin_scope("https://fleet.example.com", "localhost"))
    assert not origin_allowed(origin_scope("https://fleet.example.com:444", "localhost"))
    assert not origin_allowed(origin_scope("http://fleet.example.com", "localhost"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("which", SOCKET_PATHS)
@asynchronously
async def test_a_socket_without_a_session_is_refused(waiting_at_canary, which):
    path = await database_sync_to_async(socket_path)(which)
    assert await connects(path) == (False, 4401)
    assert await connects(path, session="forged-" + "x" * 32) == (False, 4401)


@pytest.mark.django_db(transaction=True)
@asynchronously
async def test_a_socket_with_an_ended_session_or_a_deactivated_account_is_refused(waiting_at_canary):
    path = await database_sync_to_async(socket_path)("run")

    def logged_out_session() -> str:
        client = Client()
        client.force_login(user_create(username="vera", role=VIEWERS)[0])
        session = client.cookies["sessionid"].value
        client.post("/accounts/logout/")
        return session

    assert await connects(path, session=await database_sync_to_async(logged_out_session)()) == (False, 4401)

    def deactivated_session() -> str:
        user = user_create(username="dora", role=VIEWERS)[0]
        session = session_cookie(user)
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        return session

    assert await connects(path, session=await database_sync_to_async(deactivated_session)()) == (False, 4401)


def test_the_socket_stack_checks_the_origin_then_the_session():
    """fleetui/asgi.py: AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...)))."""
    from channels.auth import AuthMiddleware
    from channels.security.websocket import OriginValidator

    websocket = application.application_mapping["websocket"]
    assert isinstance(websocket, OriginValidator)
    inner, seen = websocket.application, []
    while inner is not None and not isinstance(inner, AuthMiddleware):
        seen.append(type(inner).__name__)
        inner = getattr(inner, "inner", None)
    assert isinstance(inner, AuthMiddleware), seen
    assert "*" not in settings.ALLOWED_HOSTS


# CSRF -----------------------------------------------------------------------------------------------


def all_patterns(resolver=None, prefix: str = ""):
    """(route, pattern) for every URL pattern, included ones too."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


# The Kubernetes API (docs/kube-api.md) is CSRF-exempt because it writes only for a bearer token,
# which a browser never sends by itself; a cookie session may only read it
# (tests/test_kube_api.py::test_a_browser_session_may_read_but_never_write).
KUBE_API_ROUTES = ["version", "api", "api/<path:rest>", "apis", "apis/<path:rest>", "openapi/v3",
                   "openapi/v3/<path:rest>"]


def test_no_view_is_csrf_exempt_but_the_token_only_kubernetes_api():
    exempt = [route for route, pattern in all_patterns() if getattr(pattern.callback, "csrf_exempt", False)]
    assert exempt == KUBE_API_ROUTES


SAMPLE_ARGUMENTS = {"name": "example-run-canary", "namespace": "test-namespace", "pk": "1"}
SAMPLE_NAMES = {"run": "example-run", "approval": "example-run-canary", "placement": "example-placement"}


def sample_url(pattern: URLPattern) -> str:
    """The pattern's path with sample names of the right kind filled in."""
    kind = next((k for k in SAMPLE_NAMES if (pattern.name or "").removeprefix("ns-").startswith(k)), None)
    arguments = {**SAMPLE_ARGUMENTS, **({"name": SAMPLE_NAMES[kind]} if kind else {})}
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: arguments[match.group(1)], str(pattern.pattern))
    return "/" + route


@pytest.mark.django_db
@pytest.mark.parametrize("url", [sample_url(p) for p in rollout_urls.urlpatterns] + ["/admin/login/",
                                                                                     "/admin/logout/"])
def test_a_post_without_the_csrf_token_is_refused_everywhere(waiting_at_canary, url):
    ada = Client(enforce_csrf_checks=True)
    ada.force_login(user_create(username="ada", role=ADMINS)[0])
    ada.get("/")  # a csrftoken cookie, as a browser would have: still no token in the request
    response = ada.post(url, {"comment": "forged", "strategy": "example-strategy", "index": "0"})
    assert response.status_code == 403, url
    assert approval_request("example-run-canary").condition("Approved") is None
    assert run_obj().spec.get("state") in (None, "", "Run")


@pytest.mark.django_db
def test_the_token_htmx_sends_in_its_header_is_accepted(waiting_at_canary):
    """_base.html puts the token in hx-headers: live pushes, which have no
    form token, post through that header."""
    ada = Client(enforce_csrf_checks=True)
    ada.force_login(user_create(username="ada", role=ADMINS)[0])
    page = ada.get("/runs/example-run/").content.decode()
    body = next(dict(attrs) for tag, attrs in parse(page).elements if tag == "body")
    token = json.loads(body["hx-headers"])["X-CSRFToken"]
    response = ada.post("/approvals/example-run-canary/approve/", {"comment": "ok"},
                        HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert approval_request("example-run-canary").condition("Approved")["status"] == "True"


# Headers ----------------------------------------------------------------------------------------------

PAGES = ["/", "/runs/", "/runs/example-run/", "/runs/example-run/time/", "/approvals/", "/approvals/example-run-canary/", "/placements/",
         "/placements/example-placement/", "/placements/example-placement/history/",
         "/placements/example-placement/rollout/", "/strategies/", "/members/",
         "/audit/", "/audit/export.csv", "/audit/export.json", "/runs/no-such-run/", "/admin/",
         "/admin/rollouts/event/"]


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_security_headers(response, url: str) -> None:
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"], url
    script_src = csp.get("script-src", csp["default-src"])
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(script_src), url
    assert not any("unsafe" in value for values in csp.values() for value in values), url
    assert csp["frame-ancestors"] == ["'none'"], url
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"], url
    assert response.headers["X-Content-Type-Options"] == "nosniff", url
    assert response.headers["Referrer-Policy"] == "same-origin", url
    assert response.headers["X-Frame-Options"] == "DENY", url


@pytest.mark.django_db
def test_every_page_sends_the_security_headers(waiting_at_canary, admin_client):
    ada = Client()
    ada.force_login(user_create(username="ada", role=ADMINS)[0])
    for url in PAGES:
        client = admin_client if url.startswith("/admin/") else ada
        assert_security_headers(client.get(url), url)
    anonymous = Client()
    for url in ("/accounts/login/", "/", "/admin/login/"):
        assert_security_headers(anonymous.get(url), url)
    nora = Client()
    nora.force_login(get_user_model().objects.create_user("nora"))
    assert_security_headers(nora.get("/runs/"), "403 page")


@pytest.mark.django_db
def test_exports_are_downloads_never_pages(waiting_at_canary):
    vera = Client()
    vera.force_login(user_create(username="vera", role=VIEWERS)[0])
    for url, content_type in (("/audit/export.csv", "text/csv"), ("/audit/export.json", "application/json")):
        response = vera.get(url)
        assert response.headers["Content-Type"].startswith(content_type)
        assert response.headers["Content-Disposition"].startswith("attachment;")


# Settings outside DEBUG (read in a fresh interpreter: settings are read once) -----------------------------

READ_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({name: getattr(settings, name, None) for name in (
    "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS")}))
"""


def settings_with(**env) -> dict:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "CSRF_", "DEBUG", "SECRET_KEY"))}
    environment = {**keep, "DJANGO_SETTINGS_MODULE": "fleetui.settings", **env}
    out = subprocess.run([sys.executable, "-c", READ_SETTINGS], env=environment, cwd=BASE_DIR, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_without_debug_cookies_are_secure_and_https_is_opt_in():
    values = settings_with(DEBUG="0", SECRET_KEY="test-" + "k" * 40)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert (values["SECURE_SSL_REDIRECT"], values["SECURE_HSTS_SECONDS"], values["SECURE_PROXY_SSL_HEADER"]) == \
        (False, 0, None)


def test_https_redirect_hsts_and_the_proxy_header_are_set_by_environment():
    values = settings_with(DEBUG="0", SECRET_KEY="test-" + "k" * 40, SECURE_SSL_REDIRECT="true",
                           SECURE_HSTS_SECONDS="31536000", SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
                           SECURE_HSTS_PRELOAD="yes", SECURE_PROXY_SSL="on",
                           CSRF_TRUSTED_ORIGINS="https://fleet.example.com")
    assert values["SECURE_SSL_REDIRECT"] is True and values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://fleet.example.com"]


def test_make_run_on_plain_http_keeps_working_in_debug():
    values = settings_with(DEBUG="1")
    assert not values["SESSION_COOKIE_SECURE"] and not values["CSRF_COOKIE_SECURE"]
    assert not values["SECURE_SSL_REDIRECT"]


# No inline code: what CSP would block, and what could turn pushed text into code ------------------------------

TEMPLATES = sorted((BASE_DIR / "templates").rglob("*.html")) + sorted((BASE_DIR / "rollouts").rglob("*.html"))
SCRIPTS = sorted((BASE_DIR / "static").glob("*.js"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_templates_have_no_inline_script_handler_style_or_unescaped_output(path):
    text = path.read_text()
    assert not re.search(r"<script(?![^>]*\ssrc=)", text), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
    assert not re.search(r"\sstyle\s*=|<style", text), "inline style"
    assert not re.search(r"\|\s*safe\b|{%\s*autoescape\s+off|\|\s*safeseq\b", text), "output marked safe"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_our_scripts_never_build_html_from_strings(path):
    code = path.read_text()
    assert not re.search(r"\.innerHTML\s*=(?!\s*\"\";)", code), "innerHTML set to something other than \"\""
    assert not re.search(r"insertAdjacentHTML|outerHTML\s*=|document\.write|\beval\(|new Function", code)


def test_python_marks_nothing_safe_but_format_html():
    offenders = [str(p.relative_to(BASE_DIR)) for p in sorted((BASE_DIR / "rollouts").rglob("*.py"))
                 if re.search(r"mark_safe|SafeString|SafeText|\|safe", p.read_text())]
    assert offenders == []


def test_htmx_runs_no_script_and_evaluates_nothing_it_is_sent():
    base = (BASE_DIR / "templates" / "_base.html").read_text()
    meta = next(dict(attrs) for tag, attrs in parse(base).elements
                if tag == "meta" and dict(attrs).get("name") == "htmx-config")
    config = json.loads(meta["content"])
    assert config["allowScriptTags"] is False and config["allowEval"] is False
    assert config.get("selfRequestsOnly", True) is True
