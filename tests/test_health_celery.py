"""/readyz on real processes: Daphne, PostgreSQL and Redis, then a Celery
worker and beat. Not ready (and saying why) until both have shown signs of
life; ready once they have. Every process logs JSON (LOG_FORMAT=json)."""

import json
import signal
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet

from tests.real_services import celery_hub, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.celery]


def readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def complete_json_lines(path) -> list[dict]:
    """Every line written so far, parsed (a line still being written is left out)."""
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def test_readyz_goes_ready_once_beat_and_a_worker_run(tmp_path):
    env = {"DEBUG": "false", "SECRET_KEY": "health-celery-test-" + "x" * 40, "ALLOWED_HOSTS": "fleet.example.com",
           "FLEET_CREDENTIALS_KEY": Fernet.generate_key().decode(), "FLEET_HEARTBEAT_SECONDS": "1",
           "LOG_FORMAT": "json"}
    with celery_hub(tmp_path, **env) as hub:
        port = free_port()
        hub.daphne(port, "-v", "0")
        assert readyz(port) == (503, {"ready": False, "failing": ["beat", "workers"], "checks": {
            "database": "ok", "redis": "ok", "beat": "never seen", "workers": "never seen"}})

        worker = hub.start("--quiet", "worker", "--concurrency", "1", "-n", "w1@%h", "--without-gossip",
                           "--without-mingle", "--loglevel", "INFO", name="w1")
        beat = hub.start("--quiet", "beat", "--loglevel", "INFO", name="beat")
        status, body = wait_for(lambda: (result := readyz(port))[0] == 200 and result, timeout=90,
                                what="/readyz to answer 200")
        assert body == {"ready": True, "checks": {"database": "ok", "redis": "ok", "beat": "ok", "workers": "ok"}}
        assert hub.sql("SELECT by FROM rollouts_heartbeat WHERE source = 'worker'")[0][0].startswith("w1@")

        # Everything the processes wrote (stdout and stderr, with --quiet) is JSON,
        # up to the worker's shutdown notice, which Celery prints to stdout.
        logs = {name: complete_json_lines(tmp_path / name) for name in ("w1.log", "beat.log", "daphne.err")}
        assert all(logs.values()), logs
        assert any(line.get("task") == "rollouts.tasks.heartbeat" and line.get("task_id") for line in logs["w1.log"])
        for proc in (worker, beat):
            hub.kill(proc, signal.SIGTERM)
