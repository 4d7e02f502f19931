"""Screenshots of the dashboard's main pages into docs/screenshots/, for the README.

Builds the tutorial's fleet in a throw-away SQLite database (the clock frozen
at the tutorial's time, so the pictures do not change from run to run),
serves it on a free loopback port from a thread, and photographs each page
with Debian's Chromium through Playwright, at desktop and at phone width, and
in the dark theme.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-gpu"]
PASSWORD = "screenshots-only"


def setup_django(db_path: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["FLEET_SIMULATED_APPLY_SECONDS"] = "0"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop shares this thread
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    os.environ.setdefault("DEBUG", "true")  # the demo, served on plain http
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.FLEET_DASHBOARD_POLL_SECONDS = 0
    # Served from static/ by StaticFilesHandler (below), without `collectstatic`.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    call_command("migrate", verbosity=0)


def build_fleet() -> None:
    """The tutorial: example-run done and approved, a rollback run waiting
    at its canary gate, a third run counting down its TimedWait."""
    from tests import fleet_builders as fb

    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.settle()
    fb.advance(61)
    fb.settle()
    fb.approve("example-run-canary", actor="alice", message="canary healthy for 10 minutes")
    fb.settle()
    fb.tutorial_run("example-run-2", index="0")
    fb.settle()
    fb.advance(61)
    fb.settle()
    fb.tutorial_run("example-run-3", index="1")
    fb.settle()
    fb.advance(20)


def serve() -> str:
    """Start the app on a free loopback port in a daemon thread; its URL."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, StaticFilesHandler(get_wsgi_application()), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


PAGES = [
    ("overview", "/"),
    ("run-timeline", "/runs/example-run-2/"),
    ("run-timed-wait", "/runs/example-run-3/"),
    ("runs", "/runs/"),
    ("placement", "/placements/example-placement/"),
    ("rollback", "/placements/example-placement/rollout/?index=0"),
    ("strategies", "/strategies/"),
    ("members", "/members/"),
    ("approvals", "/approvals/"),
    ("audit-log", "/audit/"),
]


def photograph(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from rollouts.roles import RELEASE_MANAGERS, user_create

    user_create(username="rita", role=RELEASE_MANAGERS, password=PASSWORD)
    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for suffix, viewport, scheme in (("", {"width": 1280, "height": 900}, "light"),
                                         ("-phone", {"width": 390, "height": 844}, "light"),
                                         ("-dark", {"width": 1280, "height": 900}, "dark")):
            page = browser.new_context(base_url=url, viewport=viewport, color_scheme=scheme).new_page()
            page.goto("/accounts/login/")
            page.get_by_label("User name").fill("rita")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/")
            for name, path in PAGES if not suffix else PAGES[:2]:
                page.goto(path)
                shots.append(out / f"{name}{suffix}.png")
                page.screenshot(path=str(shots[-1]), full_page=True)
            page.goto("/runs/example-run-2/")
            page.get_by_role("link", name="Approve…").click()
            page.locator("#dialog").wait_for(state="visible")
            shots.append(out / f"approve-dialog{suffix}.png")
            page.screenshot(path=str(shots[-1]))
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "screenshots.sqlite3")
        from rollouts import clock
        from tests.conftest import TUTORIAL_START

        with clock.frozen(TUTORIAL_START):
            build_fleet()
            for path in photograph(serve(), out):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
