"""Logs with LOG_FORMAT=json: one JSON object per line, carrying the request
id and the person of a request, the task id (and the run) of a Celery task."""

import io
import json
import logging
import signal
import types
import urllib.error
import urllib.request

import pytest
from celery import shared_task
from cryptography.fernet import Fernet

from fleetui.logging import JsonFormatter, current_request_id, current_task_id
from rollouts.roles import VIEWERS
from tests import fleet_builders as fb
from tests.real_services import Hub, free_port, migrated_sqlite

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Everything logged while the test runs, formatted as production's JSON
    handler formats it; call it for the parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_a_request_logs_one_access_line_with_its_request_id_and_user(json_lines):
    vera = fb.signed_in("vera", VIEWERS)
    response = vera.get("/runs/", HTTP_X_REQUEST_ID="req-7f3a")
    assert response["X-Request-ID"] == "req-7f3a"
    [line] = [line for line in json_lines() if line["logger"] == "fleetui.requests"]
    assert line | {"time": "", "duration_ms": 0} == {
        "time": "", "level": "INFO", "logger": "fleetui.requests", "message": "GET /runs/ 200",
        "request_id": "req-7f3a", "user": "vera", "method": "GET", "path": "/runs/", "status": 200, "duration_ms": 0}
    assert current_request_id.get() == ""  # nothing leaks into what follows


@pytest.mark.parametrize("incoming", ["", "a b", "x" * 129, "id\nforged line", "<script>"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_fresh_one(client, incoming):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID=incoming)
    assert len(response["X-Request-ID"]) == 32 and response["X-Request-ID"] != incoming


def test_djangos_line_about_a_404_carries_the_request_id_and_user(json_lines):
    vera = fb.signed_in("vera", VIEWERS)
    vera.get("/runs/no-such-run/", HTTP_X_REQUEST_ID="req-404")
    [line] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert (line["message"], line["request_id"], line["user"]) == ("Not Found: /runs/no-such-run/", "req-404", "vera")


@shared_task(name="tests.test_logging.advance_logging", run_from_args=True)
def advance_logging(run_kind: str, pk: int) -> None:
    logging.getLogger("rollouts.engine").warning("advancing")


def test_a_celery_task_logs_with_its_task_id_and_run(json_lines):
    advance_logging.apply(args=("ClusterStagedUpdateRun", 7), task_id="5b0e-task")
    [line] = [line for line in json_lines() if line["message"] == "advancing"]
    assert (line["task_id"], line["task"], line["run"]) == ("5b0e-task", "tests.test_logging.advance_logging",
                                                            "ClusterStagedUpdateRun/7")
    assert current_task_id.get() == ""


def test_an_exception_is_one_line_with_its_traceback_inside(json_lines):
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("rollouts").exception("it failed")
    [line] = [line for line in json_lines() if line["message"] == "it failed"]
    assert line["exception"].startswith("Traceback") and "ValueError: bad value" in line["exception"]


def production_env(tmp_path) -> dict:
    return {"DEBUG": "false", "SECRET_KEY": "json-logs-test-" + "x" * 40,
            "FLEET_CREDENTIALS_KEY": Fernet.generate_key().decode(), "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_COOKIES": "false", "STATIC_ROOT": str(tmp_path / "static"), "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO"}


def get(url: str, **headers) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_daphne_with_json_logs_writes_nothing_but_json_lines(tmp_path):
    hub = Hub(migrated_sqlite(tmp_path / "fleet.sqlite3"), types.SimpleNamespace(url=""), tmp_path)
    hub.env.update(production_env(tmp_path))
    hub.manage("collectstatic", "--noinput", "-v0")
    port = free_port()
    daphne = hub.daphne(port, "-v", "0")  # as the Procfile: no access log of daphne's own on stdout
    try:
        base = f"http://127.0.0.1:{port}"
        assert get(f"{base}/accounts/login/", **{"X-Request-ID": "from-the-proxy"}) == 200
        assert get(f"{base}/static/nothing.css") == 404
        assert get(f"{base}/runs/") == 200  # the login page, after a redirect
        assert get(f"{base}/readyz") == 503  # no engine in this test
    finally:
        hub.kill(daphne, signal.SIGTERM)
    err = (tmp_path / "daphne.err").read_text()
    lines = [json.loads(line) for line in err.splitlines()]  # every line parses
    access = [line for line in lines if line["logger"] == "fleetui.requests"]
    assert [a["message"] for a in access] == ["GET /accounts/login/ 200", "GET /static/nothing.css 404",
                                              "GET /runs/ 302", "GET /accounts/login/ 200"]
    assert access[0]["request_id"] == "from-the-proxy"
    assert not [line for line in lines if "/readyz" in line["message"]]  # probes, every second: not logged
    assert (tmp_path / "daphne.out").read_text() == ""
