"""Static files as production serves them: `collectstatic` with the manifest
storage, pages linking the hashed names, whitenoise answering with long cache
headers and gzip, and streaming asynchronously under ASGI (daphne)."""

import gzip
import re
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import AsyncClient

from rollouts.roles import VIEWERS
from tests import fleet_builders as fb

pytestmark = pytest.mark.django_db
ONE_YEAR = 365 * 24 * 3600


@pytest.fixture
def collected(settings, tmp_path):
    """Production's storage and `collectstatic` into a STATIC_ROOT of the test's own."""
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
    settings.STATIC_ROOT = tmp_path / "static"
    settings.WHITENOISE_USE_FINDERS = False
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def assets(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_pages_link_every_script_and_stylesheet_by_its_hashed_name(collected):
    html = fb.signed_in("vera", VIEWERS).get("/").content.decode()
    names = assets(html)
    assert len(names) == 6  # the icon, fleetui.css, htmx, its ws extension, fleetui.js, live.js
    for name in names:
        assert re.search(r"\.[0-9a-f]{12}\.(svg|css|js)$", name), name
        assert (collected / name.removeprefix("/static/")).exists()
        assert (collected / (name.removeprefix("/static/") + ".gz")).exists()


def test_hashed_files_are_served_gzipped_and_cacheable_for_a_year(client, collected):
    for name in assets(client.get("/accounts/login/").content.decode()):
        response = client.get(name, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200, name
        assert response["Content-Encoding"] == "gzip"
        assert f"max-age={10 * ONE_YEAR}" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
        body = gzip.decompress(b"".join(response.streaming_content))
        assert body == (collected / name.removeprefix("/static/")).read_bytes()


def test_an_unknown_static_file_is_a_404(client, collected):
    assert client.get("/static/nothing-here.js").status_code == 404


def test_under_asgi_files_stream_asynchronously_without_a_warning(collected):
    name = "/static/" + _hashed(collected, "live", "js")

    async def fetch():
        response = await AsyncClient().get(name)
        return response, b"".join([chunk async for chunk in response.streaming_content])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django warns when it must read a sync iterator under ASGI
        response, body = async_to_sync(fetch)()
    assert (response.status_code, response.is_async) == (200, True)
    assert body == (collected / name.removeprefix("/static/")).read_bytes()


def _hashed(root, stem: str, ext: str) -> str:
    return next(p.name for p in root.iterdir() if re.fullmatch(rf"{stem}\.[0-9a-f]{{12}}\.{ext}", p.name))


def test_a_browser_asking_for_favicon_ico_is_sent_to_the_hashed_icon(client, collected):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert re.fullmatch(r"/static/favicon\.[0-9a-f]{12}\.svg", response["Location"])
