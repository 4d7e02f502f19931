"""`fleet` with Redis or the database down: one line that says what is down
and what happened to the action, and a documented exit code (docs/cli.md);
beat says the same once per outage instead of a traceback per tick.

Real processes: the CLI as people run it, a real beat against a Redis of
the test's own that the test kills."""

import json
import os
import subprocess
import sys
import time

import pytest
import redis
from cryptography.fernet import Fernet

from .real_services import ROOT, celery_hub, free_port, migrated_sqlite, wait_for

pytestmark = [pytest.mark.slow]

APPROVAL_REQUEST = json.dumps({
    "apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterApprovalRequest",
    "metadata": {"name": "example-run-canary"},
    "spec": {"parentStageRollout": "example-run", "targetStage": "canary"},
})


def production_env(**env: str) -> dict:
    """DEBUG off, as in production, with the secrets that then must be set."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "fleetui.settings", "DEBUG": "false",
            "SECRET_KEY": "test-" + "x" * 50, "FLEET_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "LOG_LEVEL": "WARNING", **env}


def fleet(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "fleet", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def sqlite_env(tmp_path):
    """A migrated SQLite database; REDIS_URL points at a port nobody listens on."""
    return production_env(DATABASE_URL=migrated_sqlite(tmp_path / "db.sqlite3"),
                          REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")


def test_fleet_approve_with_redis_down_saves_the_approval_and_says_so_in_one_line(sqlite_env):
    port = sqlite_env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    applied = fleet(sqlite_env, "apply", "-f", "-", stdin=APPROVAL_REQUEST)
    assert applied.returncode == 0, applied.stderr

    approved = fleet(sqlite_env, "--as", "alice", "approve", "example-run-canary")

    assert approved.returncode == 0
    assert approved.stdout.strip() == \
        "clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary approved"
    [line] = approved.stderr.strip().splitlines()
    assert f"Redis unavailable at 127.0.0.1:{port} (Connection refused): the change is saved" in line
    again = fleet(sqlite_env, "get", "careq", "example-run-canary", "-o", "json")
    conditions = json.loads(again.stdout)["status"]["conditions"]
    assert [(c["type"], c["status"]) for c in conditions] == [("Approved", "True")]


@pytest.mark.parametrize("args, stdin", [
    pytest.param(("apply", "-f", "-"), APPROVAL_REQUEST, id="apply"),
    pytest.param(("approve", "example-run-canary"), None, id="approve"),
    pytest.param(("get", "crp"), None, id="get"),
])
def test_fleet_with_the_database_down_says_nothing_was_saved_in_one_line_and_exits_3(args, stdin):
    port = free_port()
    env = production_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/fleet")

    done = fleet(env, *args, stdin=stdin)

    assert done.returncode == 3
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line == f"error: database unavailable at 127.0.0.1:{port} (Connection refused): nothing was saved"


def queued(port: int, queue: str = "celery") -> int:
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        return client.llen(queue)
    finally:
        client.close()


@pytest.mark.celery
@pytest.mark.soak  # beat ticks with Redis down and back: mostly waiting
def test_beat_logs_one_warning_when_redis_goes_away_and_one_when_it_is_back(tmp_path):
    with celery_hub(tmp_path) as hub:
        hub.env.update(LOG_LEVEL="WARNING")
        beat = hub.beat()
        log = tmp_path / "beat.log"
        # Beat has sent entries (its first ticks) before Redis goes away.
        wait_for(lambda: queued(hub.redis.port) > 0, timeout=60, what="beat to send its first entries")
        hub.redis.kill()
        wait_for(lambda: "Redis unavailable" in log.read_text(), timeout=30, what="beat to notice Redis is gone")
        time.sleep(5)  # several ticks (entries are due every 1 s) with Redis down
        hub.redis.start()
        wait_for(lambda: "is back" in log.read_text(), timeout=30, what="beat to notice Redis is back")
        assert beat.poll() is None
        lines = log.read_text().splitlines()
        assert not [line for line in lines if "Traceback" in line], "\n".join(lines)
        down = [line for line in lines if "Redis unavailable" in line]
        back = [line for line in lines if "is back" in line]
        assert len(down) == 1 and len(back) == 1, "\n".join(lines)
        assert f"Redis unavailable at 127.0.0.1:{hub.redis.port} (" in down[0]
        assert "beat skips its schedule until Redis is back" in down[0]
        assert "WARNING" in down[0] and "WARNING" in back[0]
