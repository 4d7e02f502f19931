"""/metrics: who may read it, what a real engine pass records, the queue
depths read from Redis, and several processes adding up in one directory.

Personas: Prometheus scraping from loopback or with its bearer token; a
stranger on another address. The fleet is the tutorial's, driven in-process
under the frozen clock (tests/fleet_builders.py)."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from kombu import Connection
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from fleetui.asgi import application
from fleetui.settings import env_networks
from rollouts import broadcast, changes, clock, metrics
from rollouts.controllers.family import family_of
from rollouts.engine import loop, runner, wakeup
from rollouts.mirror import hub_sync
from rollouts.roles import VIEWERS
from tests.fake_kube import tutorial_hub, tutorial_run_status
from tests.fleet_builders import (
    advance,
    after_task,
    approve,
    condition,
    placement_obj,
    run,
    run_obj,
    settle,
    signed_in,
    status,
    tutorial_waiting_at_canary,
)
from tests.real_services import ROOT, RedisServer, wait_for
from tests.test_consumers import asynchronously

TOKEN = "s3cret-scrape-token"


def sample(metric: str, /, **labels) -> float:
    """The value in this process's default registry (0 when absent)."""
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def families(text: str) -> dict:
    """{sample name and labels: value} of an exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# Who may read it --------------------------------------------------------------------------


def test_prometheus_on_loopback_reads_the_metrics_without_a_session(client):
    response = client.get("/metrics")  # no `db` fixture: a session or login lookup would fail the test
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# HELP fleet_workload_update_run_status_last_timestamp_seconds" in response.content.decode()
    assert "Set-Cookie" not in response


def test_a_stranger_is_refused_with_403_when_no_token_is_configured(client, settings):
    settings.FLEET_METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert b"fleet_workload" not in response.content


def test_a_stranger_without_the_token_gets_401_and_the_bearer_challenge(client, settings):
    settings.FLEET_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer not-it")
    assert wrong.status_code == 401


def test_the_bearer_token_lets_any_address_read_the_metrics(client, settings):
    settings.FLEET_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200


def test_an_address_in_the_allowlist_needs_no_token(client, settings):
    settings.FLEET_METRICS_TOKEN = TOKEN
    settings.FLEET_METRICS_ALLOW = env_networks("UNSET_FOR_TEST", "10.0.0.0/8, 192.168.1.7")
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.8").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401  # loopback only by default


def test_an_ipv4_client_on_a_dual_stack_socket_counts_as_its_ipv4_address(client):
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


def test_a_malformed_allowlist_names_the_variable_and_the_entry(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("FLEET_METRICS_ALLOW", "127.0.0.1,10.0.0.0/33")
    with pytest.raises(ImproperlyConfigured, match=r"FLEET_METRICS_ALLOW: '10.0.0.0/33' is not"):
        env_networks("FLEET_METRICS_ALLOW", "")


def test_only_get_is_answered(client):
    assert client.post("/metrics").status_code == 405


# What a real engine pass records -------------------------------------------------------------


RUN = {"namespace": "", "name": "example-run"}


@pytest.fixture
def recorded(db, frozen_clock, django_capture_on_commit_callbacks):
    """Metric values before and after the tutorial's run: waiting at canary,
    approved five minutes later, then settled to success. Recording happens
    after commit, so the commit callbacks are run as they would be."""
    names = {
        "passes": ("fleetui_engine_pass_duration_seconds_count", {"changed": "true"}),
        "idle_passes": ("fleetui_engine_pass_duration_seconds_count", {"changed": "false"}),
        "stages": ("fleet_workload_update_run_stage_cluster_updating_duration_seconds_count", RUN),
        "approvals": ("fleet_workload_update_run_approval_request_latency_seconds_count",
                      {**RUN, "taskType": "afterStage"}),
        "approval_seconds": ("fleet_workload_update_run_approval_request_latency_seconds_sum",
                             {**RUN, "taskType": "afterStage"}),
    }
    before = {key: sample(name, **labels) for key, (name, labels) in names.items()}
    with django_capture_on_commit_callbacks(execute=True):
        tutorial_waiting_at_canary()
        advance(300)
        approve("example-run-canary")
        settle()
    after = {key: sample(name, **labels) for key, (name, labels) in names.items()}
    return {key: after[key] - before[key] for key in names}


def run_status_sample(**labels) -> float:
    return sample("fleet_workload_update_run_status_last_timestamp_seconds",
                  **{**RUN, "state": (run_obj().spec or {}).get("state") or "Run", "failureType": "none", **labels})


def test_a_finished_run_has_its_succeeded_timestamp_as_kubefleet_emits_it(recorded):
    succeeded = condition(status(), "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("True", "UpdateRunSucceeded")
    value = run_status_sample(condition="Succeeded", status="True", reason="UpdateRunSucceeded")
    assert value == clock.parse_rfc3339(succeeded["lastTransitionTime"]).timestamp()
    # Its earlier states stay as their own series, as on a KubeFleet hub.
    assert run_status_sample(condition="Progressing", status="False", reason="UpdateRunWaiting") > 0


def test_each_stage_whose_clusters_all_finished_is_observed_once(recorded):
    assert recorded["stages"] == 2  # staging and canary


def test_the_approval_latency_is_the_time_from_the_request_to_its_approval(recorded):
    task = after_task("example-run", "canary")
    created, approved = (clock.parse_rfc3339(condition(task, t)["lastTransitionTime"])
                         for t in ("ApprovalRequestCreated", "ApprovalRequestApproved"))
    assert recorded["approvals"] == 1
    assert recorded["approval_seconds"] == (approved - created).total_seconds() >= 300


def test_every_engine_pass_is_timed_and_those_that_changed_nothing_are_told_apart(recorded):
    assert recorded["passes"] >= 5
    assert recorded["idle_passes"] >= 1  # every settle() ends with a tick that changes nothing


def test_a_placement_whose_clusters_are_all_available_is_completed(recorded):
    placement = placement_obj()
    assert sample("fleet_workload_placement_status_last_timestamp_seconds", namespace="", name=placement.name,
                  generation=str(placement.generation), conditionType="Completed", status="True",
                  reason="Completed") == clock.now().timestamp()


def test_a_run_that_cannot_initialize_is_a_user_error(db, frozen_clock, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run("lost-run", placement_name="no-such-placement")
        settle()
    cond = condition(status("lost-run"), "Initialized")
    assert sample("fleet_workload_update_run_status_last_timestamp_seconds", namespace="", name="lost-run",
                  state="Run", condition="Initialized", status="False", reason=cond["reason"],
                  failureType="user_error") == clock.parse_rfc3339(cond["lastTransitionTime"]).timestamp()


def test_a_rolled_back_pass_records_no_status(db, frozen_clock):
    """Inside a transaction that never commits (the test's own), nothing is recorded."""
    run("uncommitted-run", placement_name="no-such-placement")
    settle()
    assert REGISTRY.get_sample_value("fleet_workload_update_run_status_last_timestamp_seconds", {
        "namespace": "", "name": "uncommitted-run", "state": "Run", "condition": "Initialized", "status": "False",
        "reason": "UpdateRunInitializedFailed", "failureType": "user_error"}) is None


@pytest.mark.parametrize(("cond", "expected"), [
    pytest.param({"status": "True", "reason": "UpdateRunSucceeded"}, "none", id="succeeded"),
    pytest.param({"status": "False", "reason": "UpdateRunWaiting"}, "none", id="waiting"),
    pytest.param({"status": "False", "reason": "UpdateRunStuck"}, "internal_error", id="stuck"),
    pytest.param({"status": "False", "reason": "UpdateRunFailed",
                  "message": "cannot continue the updateRun: failed to process the request due to a client error: x"},
                 "user_error", id="failed-by-user"),
    pytest.param({"status": "False", "reason": "UpdateRunFailed",
                  "message": "cannot continue the updateRun: unexpected behavior which cannot be handled"},
                 "internal_error", id="failed-internally"),
    pytest.param({"status": "Unknown", "reason": "UpdateRunFailed"}, "none", id="not-false"),
])
def test_the_failure_type_follows_kubefleets_rules(cond, expected):
    assert metrics._failure_type(cond) == expected


def test_a_metric_that_fails_never_fails_the_write(monkeypatch, caplog):
    monkeypatch.setattr(metrics, "ENGINE_PASS", None)
    metrics.engine_pass_finished(seconds=0.1, changed=True)
    assert "metric engine_pass_finished not recorded" in caplog.text


# Wake-up to pass --------------------------------------------------------------------------------


def test_a_woken_celery_advance_records_its_lag(db, frozen_clock):
    run("some-run", placement_name="no-such-placement")
    before = sample("fleetui_engine_wakeup_lag_seconds_count", path="celery")
    before_sum = sample("fleetui_engine_wakeup_lag_seconds_sum", path="celery")
    the_run = run_obj("some-run")
    runner.run_advance(family=family_of(the_run), pk=the_run.pk, woken_at=time.time() - 0.25)
    assert sample("fleetui_engine_wakeup_lag_seconds_count", path="celery") == before + 1
    assert sample("fleetui_engine_wakeup_lag_seconds_sum", path="celery") - before_sum >= 0.25


def test_a_run_change_sends_its_wake_up_time_with_the_task(db, settings, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    sent = []
    monkeypatch.setattr(wakeup.current_app, "send_task", lambda name, args, **options: sent.append(args))
    run("some-run", placement_name="no-such-placement")
    with django_capture_on_commit_callbacks(execute=True):
        changes.publish(changes.RunChanged.of(run_obj("some-run"), changes.Origin.PERSON))
    (kind, pk, woken_at), = sent
    assert abs(time.time() - woken_at) < 5


def test_the_engine_loop_records_the_lag_from_a_notify_to_its_tick(settings, monkeypatch):
    socket_dir = tempfile.mkdtemp(prefix="fleet-", dir="/tmp")  # a Unix socket path must stay short
    settings.FLEET_ENGINE_SOCKET = f"{socket_dir}/engine.sock"
    ticks = []
    monkeypatch.setattr(loop, "engine_tick", lambda: ticks.append(time.time()))
    wakeup._in_process.clear()  # wake-ups earlier tests left for a loop that never ran
    wakeup._first_wake.clear()
    before = sample("fleetui_engine_wakeup_lag_seconds_count", path="loop")
    stop = threading.Event()
    engine = threading.Thread(target=loop.engine_main, kwargs={"options": {"interval": 30}, "stop": stop})
    engine.start()
    try:
        wait_for(lambda: ticks, timeout=10, what="the first tick", step=0.01)
        wait_for(lambda: Path(settings.FLEET_ENGINE_SOCKET).exists(), timeout=10, what="the socket")
        # Notify again until the lag is recorded: another loop thread a
        # previous test left in this process may take a wake-up first.
        def recorded_after_a_notify() -> bool:
            wakeup.notify()
            return sample("fleetui_engine_wakeup_lag_seconds_count", path="loop") > before

        wait_for(recorded_after_a_notify, timeout=10, what="the lag to be recorded", step=0.5)
    finally:
        stop.set()
        wakeup.notify()
        engine.join(timeout=10)
    assert len(ticks) >= 2


# Live updates -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_push_that_reaches_a_socket_records_its_latency_and_one_nobody_hears_does_not(frozen_clock):
    tutorial_waiting_at_canary()
    count = sample("fleetui_live_push_latency_seconds_count", layer="memory")
    changes.publish(changes.RunChanged.of(run_obj(), changes.Origin.PERSON))  # outside a transaction: at once, no socket listens
    assert sample("fleetui_live_push_latency_seconds_count", layer="memory") == count
    path = broadcast.run_socket_path(run_obj())

    @asynchronously
    async def scenario():
        client = await database_sync_to_async(signed_in)("vera", VIEWERS)
        communicator = WebsocketCommunicator(application, path, headers=[
            (b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())])
        assert (await communicator.connect())[0]
        await communicator.receive_from()
        engine = threading.Thread(target=lambda: (approve("example-run-canary"), settle()),
                                  name=broadcast.ENGINE_THREAD)
        await database_sync_to_async(lambda: (engine.start(), engine.join()))()
        assert await communicator.receive_from()
        await communicator.disconnect()

    scenario()
    assert sample("fleetui_live_push_latency_seconds_count", layer="memory") > count


# The hub mirror ----------------------------------------------------------------------------------


def test_a_mirrored_watch_event_records_its_lag_and_a_failed_session_counts_an_error(fake, hub):
    tutorial_hub(fake)
    hub_sync(connection_id=hub.pk, seconds=0.5)
    lag = sample("fleetui_hub_sync_lag_seconds_count", hub="prod-hub")
    errors = sample("fleetui_hub_sync_errors_total", hub="prod-hub")
    example = fake.get("placement.kubernetes-fleet.io/v1beta1", "ClusterStagedUpdateRun", "example-run")
    threading.Timer(0.15, lambda: fake.put({**example, "status": tutorial_run_status("canary-waiting")})).start()
    hub_sync(connection_id=hub.pk, seconds=1.0)
    assert sample("fleetui_hub_sync_lag_seconds_count", hub="prod-hub") >= lag + 1

    fake.go_down()
    hub.refresh_from_db()
    assert hub_sync(connection_id=hub.pk, seconds=0.5).outcome == "failed"
    assert sample("fleetui_hub_sync_errors_total", hub="prod-hub") == errors + 1


# Celery queue depths --------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


def test_queue_depths_count_every_priority_of_every_queue(redis_server, settings, client):
    with Connection(redis_server.url, transport_options={"queue_order_strategy": "priority"}) as connection:
        for queue, priority in (("interactive", 0), ("interactive", 5), ("interactive", 9), ("celery", 0)):
            connection.SimpleQueue(queue).put({"n": 1}, priority=priority)
    settings.REDIS_URL = redis_server.url
    exposed = families(client.get("/metrics").content.decode())
    assert exposed[("fleetui_celery_queue_depth", (("queue", "interactive"),))] == 3
    assert exposed[("fleetui_celery_queue_depth", (("queue", "celery"),))] == 1
    assert exposed[("fleetui_celery_queue_depth", (("queue", "hubs"),))] == 0
    assert exposed[("fleetui_celery_broker_up", ())] == 1


def test_a_broker_that_is_down_says_so_and_the_rest_is_still_scraped(redis_server, settings, client):
    settings.REDIS_URL = redis_server.url
    redis_server.kill()
    response = client.get("/metrics")
    exposed = families(response.content.decode())
    assert response.status_code == 200 and exposed[("fleetui_celery_broker_up", ())] == 0
    assert not any(name == "fleetui_celery_queue_depth" for name, _ in exposed)


# Several processes, one directory -------------------------------------------------------------------

WRITER = """
import sys
from types import SimpleNamespace
import django
django.setup()
from rollouts import metrics
from datetime import datetime, UTC
when = datetime.fromtimestamp(float(sys.argv[1]), UTC)
run = SimpleNamespace(namespace="team-a", name="shared-run", generation=1, spec={"state": "Run"})
status = {"conditions": [{"type": "Progressing", "status": "True", "reason": "UpdateRunProgressing",
                          "observedGeneration": 1}]}
metrics.run_status_changed(run=run, before={}, after=status, now=when)
metrics.engine_pass_finished(seconds=float(sys.argv[2]), changed=True)
"""


# The settings' required keys (DEBUG is off), as pyproject's pytest env sets them for this process.
KEYS = {name: os.environ[name] for name in ("DEBUG", "SECRET_KEY", "FLEET_CREDENTIALS_KEY")}


def test_values_written_by_two_processes_are_added_up_in_one_scrape(tmp_path, settings, client):
    directory = tmp_path / "prometheus"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "DJANGO_SETTINGS_MODULE": "fleetui.settings",
           "PATH": "/usr/bin:/bin", **KEYS}
    for when, seconds in (("1800000000", "0.02"), ("1700000000", "0.3")):
        subprocess.run([sys.executable, "-c", WRITER, when, seconds], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(list(directory.glob("*.db"))) >= 4  # a gauge and a histogram file per process
    settings.PROMETHEUS_MULTIPROC_DIR = str(directory)

    exposed = families(client.get("/metrics").content.decode())

    assert exposed[("fleetui_engine_pass_duration_seconds_count", (("changed", "true"),))] == 2
    assert exposed[("fleetui_engine_pass_duration_seconds_sum", (("changed", "true"),))] == pytest.approx(0.32)
    status_labels = (("condition", "Progressing"), ("failureType", "none"), ("name", "shared-run"),
                     ("namespace", "team-a"), ("reason", "UpdateRunProgressing"), ("state", "Run"),
                     ("status", "True"))
    # "max": the later timestamp wins, whichever process wrote it last.
    assert exposed[("fleet_workload_update_run_status_last_timestamp_seconds", status_labels)] == 1800000000


def test_an_empty_multiprocess_directory_variable_means_the_single_process_registry(tmp_path):
    """A .env file with `PROMETHEUS_MULTIPROC_DIR=` must not turn on
    prometheus-client's multiprocess mode, which would write into the cwd."""
    script = ("import django; django.setup()\n"
              "from rollouts import metrics\n"
              "metrics.engine_pass_finished(seconds=0.5, changed=True)\n"
              "print(metrics.exposition()[0].decode())\n")
    env = {"PROMETHEUS_MULTIPROC_DIR": "", "DJANGO_SETTINGS_MODULE": "fleetui.settings", "PYTHONPATH": str(ROOT),
           "PATH": "/usr/bin:/bin", **KEYS}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert 'fleetui_engine_pass_duration_seconds_count{changed="true"} 1.0' in done.stdout
    assert "process_cpu_seconds_total" in done.stdout  # the default registry's own collectors
    assert list(tmp_path.iterdir()) == []
