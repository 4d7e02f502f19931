"""The watch against a live `fleet serve` (Daphne, ASGI) on PostgreSQL, read
by the official `kubernetes` Python client, with writes made by other
processes: what a client of the hub really sees.

The list + watch route is rollouts/kubeapi/watch_preview.py (switched on by
FLEET_KUBEAPI_WATCH_PREVIEW for these tests)."""

import subprocess
import sys
import threading
import time

import pytest

from .real_services import ROOT, _listening, free_port, postgres_env, process_env, wait_for

pytestmark = pytest.mark.slow

GROUP, VERSION, PLURAL = "placement.kubernetes-fleet.io", "v1beta1", "clusterstagedupdatestrategies"

SETUP = """
import random, sys, threading, time
from django.db import connection, transaction
from rollouts import clock, models as m
from rollouts.api.kinds import KindRegistry
from rollouts.services.objects import manifests_apply, object_delete

def strategy(name, **labels):
    manifests_apply(docs=[{"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
                           "metadata": {"name": name, "labels": labels},
                           "spec": {"stages": [{"name": "staging", "labelSelector": {"matchLabels": {"env": "staging"}}}]}}],
                    actor="tester")

def delete(name):
    object_delete(kind=KindRegistry().resolve("csus"), name=name, namespace="", actor="tester")
"""

# Two threads create objects, each in a transaction that draws its revision
# and then waits a random moment before committing: revisions commit out of
# order, the hazard a watcher must survive.
RACE = """
def writer(prefix, count):
    try:
        for i in range(count):
            with transaction.atomic():
                m.ClusterStagedUpdateStrategy(name=f"{prefix}-{i:03d}", creation_timestamp=clock.now()).save()
                time.sleep(random.random() * 0.02)
    finally:
        connection.close()

threads = [threading.Thread(target=writer, args=(p, int(sys.argv[1]))) for p in ("left", "right")]
for t in threads: t.start()
for t in threads: t.join()
"""


def shell(env: dict, code: str, *argv: str) -> None:
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", f"import sys; sys.argv = {['x', *argv]!r}\n{code}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A migrated PostgreSQL database and Daphne serving it with the watch route."""
    tmp = tmp_path_factory.mktemp("watch")
    with postgres_env() as env:
        port = free_port()
        with open(tmp / "daphne.err", "w") as err:
            daphne = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleetui.asgi:application"],
                cwd=ROOT, env=process_env(**{**env, "FLEET_KUBEAPI_WATCH_PREVIEW": "true"}), stdout=subprocess.DEVNULL,
                stderr=err)
            try:
                wait_for(lambda: _listening(port) or daphne.poll() is not None, timeout=30, what="daphne")
                assert daphne.poll() is None, (tmp / "daphne.err").read_text()[-2000:]
                yield env, port
            finally:
                daphne.terminate()
                daphne.wait(timeout=30)


def api_of(port: int):
    from kubernetes import client  # noqa: PLC0415 - 0.4 s to import: only the tests that use it

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    return client.CustomObjectsApi(client.ApiClient(configuration))


def watch_in_background(port: int, since: str, until, **kwargs):
    """Collect the watch's events in a thread until `until(events)`; returns (thread, events, errors)."""
    from kubernetes import watch  # noqa: PLC0415

    events, errors, api = [], [], api_of(port)

    def run():
        stream = watch.Watch()
        try:
            for event in stream.stream(api.list_cluster_custom_object, GROUP, VERSION, PLURAL, resource_version=since,
                                       timeout_seconds=60, **kwargs):
                events.append(event)
                if until(events):
                    stream.stop()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, events, errors


def names(events, type_=None) -> list[str]:
    return [e["object"]["metadata"]["name"] for e in events if type_ in (None, e["type"])]


def test_the_kubernetes_client_watches_adds_changes_and_deletes_made_by_another_process(server):
    env, port = server
    since = api_of(port).list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    done = lambda found: [e["type"] for e in found if names([e]) == ["beta"]][-1:] == ["DELETED"]  # noqa: E731
    thread, events, errors = watch_in_background(port, since, done)
    # Pauses longer than a poll, so the watcher usually sees each write; it
    # may see two quick writes of one object as one event, at the last.
    shell(env, SETUP + "strategy('alpha'); strategy('beta'); time.sleep(0.5); strategy('alpha', team='b');"
          "time.sleep(0.5); delete('beta')")
    thread.join(timeout=30)
    assert not errors and events
    last = {e["object"]["metadata"]["name"]: e for e in events}
    assert last["beta"]["type"] == "DELETED" and last["alpha"]["type"] == "MODIFIED"
    assert last["alpha"]["object"]["metadata"]["labels"] == {"team": "b"}
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and int(since) < versions[0]


def test_a_watch_from_a_forgotten_version_raises_410_in_the_client(server):
    from kubernetes.client.rest import ApiException  # noqa: PLC0415

    env, port = server
    shell(env, SETUP + "strategy('gone'); delete('gone')\n"
          "from datetime import timedelta\n"
          "m.Tombstone.objects.update(deleted_at=clock.now() - timedelta(hours=1))")
    thread, events, errors = watch_in_background(port, "1", lambda found: True)
    thread.join(timeout=30)
    assert not events and isinstance(errors[0], ApiException) and errors[0].status == 410


def test_concurrent_writers_on_postgresql_are_seen_once_each_in_revision_order(server):
    env, port = server
    count = 40
    since = api_of(port).list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    wanted = {f"{side}-{i:03d}" for side in ("left", "right") for i in range(count)}
    thread, events, errors = watch_in_background(
        port, since, lambda found: wanted <= set(names(found)), allow_watch_bookmarks=True)
    shell(env, SETUP + RACE, str(count))
    thread.join(timeout=30)
    changes = [e for e in events if e["type"] != "BOOKMARK"]
    assert not errors and sorted(names(changes)) == sorted(wanted), "every write seen exactly once"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in changes]
    assert versions == sorted(versions), "in revision order"


def test_an_idle_watch_holds_no_database_session_between_polls(server):
    import psycopg  # noqa: PLC0415

    env, port = server
    since = api_of(port).list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        def others() -> int:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND pid <> pg_backend_pid()").fetchone()[0]
        before = others()  # the list request's persistent connection (CONN_MAX_AGE), if any
        thread, events, errors = watch_in_background(port, since, lambda found: True)
        time.sleep(0.5)
        samples = []
        for _ in range(20):
            samples.append(others())
            time.sleep(0.05)
    shell(env, SETUP + "strategy('wake')")  # ends the watch
    thread.join(timeout=30)
    assert not errors and min(samples) <= before, f"sessions while the watch idled: {samples}, before: {before}"


SEED = """
from rollouts import clock
from tests.conftest import TUTORIAL_START
from tests.fleet_builders import tutorial_waiting_at_canary
with clock.frozen(TUTORIAL_START):
    tutorial_waiting_at_canary()
"""

APPROVE = """
from rollouts.api import store
from rollouts.api.kinds import KindRegistry
request = store.get(KindRegistry().resolve("careq"), "example-run-canary")
request.status = {"conditions": [{"type": "Approved", "status": "True", "reason": "ByHand", "message": "ok",
                                  "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}
store.save(request, spec_changed=False)
"""


@pytest.mark.django_db(transaction=True)
def test_fleet_uis_hub_mirror_follows_another_fleet_ui_by_list_and_watch(server):
    import yaml  # noqa: PLC0415

    from rollouts import models as m  # noqa: PLC0415
    from rollouts.mirror import hub_sync  # noqa: PLC0415
    from rollouts.mirror.actions import credential_save  # noqa: PLC0415
    from rollouts.models.connections import HubConnection  # noqa: PLC0415

    env, port = server
    shell(env, SEED)
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "unused-by-the-preview-route"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "u"}}]})
    connection = credential_save(HubConnection(name="other-fleet-ui"), kubeconfig=kubeconfig, context="other",
                                 actor="ada")
    assert hub_sync(connection_id=connection.pk, seconds=1.0).outcome == "synced"
    run = m.ClusterStagedUpdateRun.objects.get(name="example-run")
    assert run.active and m.ClusterApprovalRequest.objects.filter(name="example-run-canary").exists()
    assert m.MemberCluster.objects.count() == 3

    # The second session resumes each kind's watch from the revision it saved.
    shell(env, APPROVE)
    assert hub_sync(connection_id=connection.pk, seconds=1.5).outcome == "synced"
    request = m.ClusterApprovalRequest.objects.get(name="example-run-canary")
    assert request.condition_status("Approved") == "True"


def test_the_postgresql_horizon_stays_below_a_revision_drawn_by_a_transaction_still_open(server):
    import psycopg  # noqa: PLC0415

    from rollouts.models.revisions import PG_HORIZON  # noqa: PLC0415

    env, _ = server
    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as slow, psycopg.connect(url) as quick, psycopg.connect(url, autocommit=True) as watcher:
        def horizon() -> int:
            return watcher.execute(PG_HORIZON).fetchone()[0]
        drawn = slow.execute("SELECT rollouts_next_rv()").fetchone()[0]  # drawn, not committed
        later = quick.execute("SELECT rollouts_next_rv()").fetchone()[0]
        quick.commit()
        assert later > drawn and horizon() < drawn, "a later commit must not move the horizon past an open draw"
        slow.commit()
        assert horizon() >= later
        slow.execute("SELECT rollouts_next_rv()")
        slow.rollback()  # a rolled-back draw leaves a gap, and holds nothing back
        assert horizon() >= later
