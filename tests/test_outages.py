"""Redis and PostgreSQL going away under load, on real processes: two Celery
workers, beat and daphne ride the outage out with no supervisor to restart
them, every approval made meanwhile is accepted, and nothing is done twice.

Runs are kept busy while the service goes away (simulated members take
FLEET_SIMULATED_APPLY_SECONDS per apply, so workers hold acknowledged-late
and countdown tasks): an outage while every run waits at a gate cannot show
a worker dying as it restores its unacknowledged messages (pitfalls.md).
"""

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import redis

from .real_services import ROOT, Hub, celery_hub, free_port, wait_for
from .test_celery_workers import (
    assert_each_cluster_updated_once_per_run,
    fleet_yaml,
    unfinished_runs,
)

pytestmark = [pytest.mark.slow, pytest.mark.celery]

OUTAGE_SECONDS = 5
GATED_RUNS = 3


@pytest.fixture
def hub(tmp_path):
    with celery_hub(tmp_path, FLEET_SIMULATED_APPLY_SECONDS="0.4") as hub:
        yield hub


def procfile_worker(hub: Hub, name: str):
    """A worker as the Procfile starts one (gossip, mingle and remote control
    on) with more pool slots than it keeps busy: a BRPOP is then in flight
    while it holds tasks, and a fanout channel may notice Redis is gone
    first: the case that killed workers (fleetui/broker.py)."""
    return hub.start("worker", "--concurrency", "4", "-n", f"{name}@%h", "--loglevel", "WARNING", name=name)


def unacked_tasks(hub: Hub) -> int:
    """Tasks a worker holds without having acknowledged them (kombu's `unacked` hash)."""
    client = redis.Redis(port=hub.redis.port, socket_timeout=2)
    try:
        return client.hlen("unacked")
    finally:
        client.close()


def requests_for(hub: Hub, prefix: str, stage: str) -> list[str]:
    return [name for (name,) in hub.sql(
        "SELECT name FROM rollouts_clusterapprovalrequest WHERE name LIKE %s AND spec->>'targetStage' = %s "
        "ORDER BY name", f"{prefix}-%", stage)]


def accepted_approvals(hub: Hub, prefix: str) -> int:
    return hub.sql(
        "SELECT count(*) FROM rollouts_clusterapprovalrequest, jsonb_array_elements(status->'conditions') c "
        "WHERE name LIKE %s AND c->>'type' = 'ApprovalAccepted' AND c->>'status' = 'True'", f"{prefix}-%")[0][0]


def fleet_approve_each(hub: Hub, names: list[str]) -> list[tuple[int, str, str]]:
    """`fleet approve NAME` for every name at once, each in its own process:
    (exit code, stdout, stderr) per name."""
    procs = [subprocess.Popen([sys.executable, "manage.py", "fleet", "--as", "release-manager", "approve", name],
                              cwd=ROOT, env=hub.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in names]
    return [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]


def redis_outage_with_approvals(hub: Hub, names: list[str]) -> list[tuple[int, str, str]]:
    """SIGKILL Redis while tasks are in flight, approve `names` while it is
    down, start it again on the same port after OUTAGE_SECONDS."""
    wait_for(lambda: unacked_tasks(hub) > 0, timeout=60, what="a worker to hold unacknowledged tasks")
    hub.redis.kill()
    down_at = time.monotonic()
    results = fleet_approve_each(hub, names)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    hub.redis.start()
    return results


def assert_approved_with_one_line_each(results: list[tuple[int, str, str]]) -> None:
    for code, out, err in results:
        assert code == 0, err
        assert out.strip().endswith("approved"), out
        assert len(err.strip().splitlines()) <= 1, f"more than one line on stderr:\n{err}"
        assert "Traceback" not in err


def test_two_workers_ride_out_two_redis_outages_mid_run_and_accept_every_approval(hub):
    workers = [procfile_worker(hub, "w1"), procfile_worker(hub, "w2")]
    hub.beat()
    # Gated runs stop after ring0 and ring1 for an approval; the flow runs
    # keep the workers busy through each outage (flow2 through the second).
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(GATED_RUNS, "gate", gates=(0, 1)))
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(4, "flow1", max_concurrency="20%"))
    for stage, flow in (("ring0", "flow1"), ("ring1", "flow2")):
        gates = wait_for(lambda stage=stage: len(names := requests_for(hub, "gate", stage)) == GATED_RUNS and names,
                         timeout=120, what=f"the gated runs to wait for approval after {stage}")
        assert unfinished_runs(hub, flow) > 0, "the outage must come while runs are advancing"
        assert_approved_with_one_line_each(redis_outage_with_approvals(hub, gates))
        if flow == "flow1":
            hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(4, "flow2", max_concurrency="20%"))
    for prefix in ("gate", "flow1", "flow2"):
        wait_for(lambda prefix=prefix: unfinished_runs(hub, prefix) == 0, timeout=240,
                 what=f"the {prefix} runs to finish after the outages")
    assert [w.poll() for w in workers] == [None, None], "a worker died during the Redis outages"
    for name in ("w1", "w2"):
        assert "Unrecoverable error" not in (hub.tmp / f"{name}.log").read_text()
    assert accepted_approvals(hub, "gate") == 2 * GATED_RUNS
    assert_each_cluster_updated_once_per_run(hub, "gate", GATED_RUNS)
    assert_each_cluster_updated_once_per_run(hub, "flow1", 4)
    assert_each_cluster_updated_once_per_run(hub, "flow2", 4)


def start_daphne(hub: Hub) -> str:
    """A daphne process on the hub's database and Redis; returns its base URL."""
    port = free_port()
    log = open(hub.tmp / "daphne.log", "w")  # noqa: SIM115 (closed with the process)
    hub.processes.append(subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleetui.asgi:application"],
        cwd=ROOT, env={**hub.env, "DEBUG": "true"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_status(f"{base}/accounts/login/") == 200, timeout=60, what="daphne to answer")
    return base


def http_status(url: str, session: str = "") -> int:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}"} if session else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def signed_in_session(hub: Hub) -> str:
    """A session key of a signed-in viewer (pages then read the database)."""
    return hub.shell(
        "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from rollouts.roles import VIEWERS, user_create\n"
        "user, _ = user_create(username='vera', role=VIEWERS)\n"
        "s = SessionStore()\n"
        "s[SESSION_KEY], s[HASH_SESSION_KEY] = str(user.pk), user.get_session_auth_hash()\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s.create()\n"
        "print(s.session_key)\n").split()[-1]


def terminate_backends(hub: Hub) -> int:
    """What a PostgreSQL restart does to this database's sessions, without
    restarting the server other tests share: end every one but our own."""
    return hub.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")[0][0]


def test_workers_and_daphne_recover_from_postgresql_dropping_every_connection_mid_run(hub):
    workers = [hub.worker("w1"), hub.worker("w2")]
    hub.beat()
    base, session = start_daphne(hub), signed_in_session(hub)
    assert http_status(f"{base}/runs/", session) == 200  # daphne now holds a persistent connection
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(6, "pg", max_concurrency="20%"))
    started = "SELECT count(*) FROM rollouts_event WHERE run LIKE 'pg-%%' AND details->>'type' = 'Started'"
    wait_for(lambda: hub.sql(started)[0][0] >= 20, timeout=120, what="the runs to be under way")
    assert unfinished_runs(hub, "pg") > 0

    assert terminate_backends(hub) > 0

    assert http_status(f"{base}/runs/", session) == 200, "the first page after the restart failed"
    wait_for(lambda: unfinished_runs(hub, "pg") == 0, timeout=240, what="the runs to finish after the restart")
    assert [w.poll() for w in workers] == [None, None]
    assert_each_cluster_updated_once_per_run(hub, "pg", 6)
    assert http_status(f"{base}/runs/", session) == 200
