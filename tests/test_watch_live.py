"""The watch against a live `fleet serve` (Daphne, ASGI) on PostgreSQL, read
by the official `kubernetes` Python client, with writes made by other
processes: what a client of the hub really sees.

The client calls the hub's Kubernetes API (rollouts/kubeapi) with an API
token over plain HTTP (the Python client, unlike kubectl, sends one there)."""

import json
import subprocess
import sys
import threading
import time

import pytest

from .real_services import (
    ROOT,
    _listening,
    free_port,
    postgres_database,
    postgres_env,
    process_env,
    wait_for,
)

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


TOKENS = """
import json
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
from rollouts.services.tokens import token_create
print(json.dumps({name: token_create(user=user_create(username=name, role=role)[0], name="watch", actor="test")[1]
                  for name, role in (("vic", VIEWERS), ("alice", RELEASE_MANAGERS))}))
"""


def shell(env: dict, code: str, *argv: str) -> str:
    """Run `code` in the other hub's `manage.py shell`; its last line of output."""
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", f"import sys; sys.argv = {['x', *argv]!r}\n{code}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return (done.stdout.strip().splitlines() or [""])[-1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A migrated PostgreSQL database with API tokens ({persona: token}), and
    Daphne serving it: (env, port, tokens)."""
    tmp = tmp_path_factory.mktemp("watch")
    with postgres_env() as env:
        tokens = json.loads(shell(env, TOKENS))
        port = free_port()
        with open(tmp / "daphne.err", "w") as err:
            daphne = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleetui.asgi:application"],
                cwd=ROOT, env=process_env(**env), stdout=subprocess.DEVNULL,
                stderr=err)
            try:
                wait_for(lambda: _listening(port) or daphne.poll() is not None, timeout=30, what="daphne")
                assert daphne.poll() is None, (tmp / "daphne.err").read_text()[-2000:]
                yield env, port, tokens
            finally:
                daphne.terminate()
                daphne.wait(timeout=30)


def api_of(server):
    """The official client as the viewer vic (a watch needs what a list needs)."""
    from kubernetes import client  # noqa: PLC0415 - 0.4 s to import: only the tests that use it

    _, port, tokens = server
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.api_key = {"authorization": f"Bearer {tokens['vic']}"}
    return client.CustomObjectsApi(client.ApiClient(configuration))


def watch_in_background(server, since: str, until, **kwargs):
    """Collect the watch's events in a thread until `until(events)`; returns (thread, events, errors)."""
    from kubernetes import watch  # noqa: PLC0415

    events, errors, api = [], [], api_of(server)

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
    env, _, _ = server
    since = api_of(server).list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    done = lambda found: [e["type"] for e in found if names([e]) == ["beta"]][-1:] == ["DELETED"]  # noqa: E731
    thread, events, errors = watch_in_background(server, since, done)
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

    env, _, _ = server
    shell(env, SETUP + "strategy('gone'); delete('gone')\n"
          "from datetime import timedelta\n"
          "m.Tombstone.objects.update(deleted_at=clock.now() - timedelta(hours=1))")
    thread, events, errors = watch_in_background(server, "1", lambda found: True)
    thread.join(timeout=30)
    assert not events and isinstance(errors[0], ApiException) and errors[0].status == 410


def test_concurrent_writers_on_postgresql_are_seen_once_each_in_revision_order(server):
    env, _, _ = server
    count = 40
    since = api_of(server).list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    wanted = {f"{side}-{i:03d}" for side in ("left", "right") for i in range(count)}
    thread, events, errors = watch_in_background(
        server, since, lambda found: wanted <= set(names(found)), allow_watch_bookmarks=True)
    shell(env, SETUP + RACE, str(count))
    thread.join(timeout=30)
    changes = [e for e in events if e["type"] != "BOOKMARK"]
    assert not errors and sorted(names(changes)) == sorted(wanted), "every write seen exactly once"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in changes]
    assert versions == sorted(versions), "in revision order"


def test_an_idle_watch_holds_no_database_session_between_polls(server):
    import psycopg  # noqa: PLC0415

    env, _, _ = server
    since = api_of(server).list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        def others() -> int:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND pid <> pg_backend_pid()").fetchone()[0]
        before = others()  # the list request's persistent connection (CONN_MAX_AGE), if any
        thread, events, errors = watch_in_background(server, since, lambda found: True)
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

AUDITED = """
import json
from rollouts import models as m
event = m.Event.objects.get(action="approved", object_name="example-run-canary")
print(json.dumps({"actor": event.actor, "via": event.details.get("via"), "comment": event.details.get("comment")}))
"""


@pytest.mark.django_db(transaction=True)
def test_fleet_uis_hub_mirror_follows_another_fleet_ui_and_approves_through_its_api(server):
    """The mirror lists and watches the other hub's API with a release
    manager's token, and approves there by a merge patch of the request's
    status: the other hub audits it as that person's, via kube-api."""
    import yaml  # noqa: PLC0415

    from rollouts import models as m  # noqa: PLC0415
    from rollouts.mirror import approve_on_hub, hub_sync  # noqa: PLC0415
    from rollouts.mirror.actions import credential_save  # noqa: PLC0415
    from rollouts.models.connections import HubConnection  # noqa: PLC0415

    env, port, tokens = server
    shell(env, SEED)
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "alice", "user": {"token": tokens["alice"]}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "alice"}}]})
    connection = credential_save(HubConnection(name="other-fleet-ui"), kubeconfig=kubeconfig, context="other",
                                 actor="ada")
    assert hub_sync(connection_id=connection.pk, seconds=1.0).outcome == "synced"
    run = m.ClusterStagedUpdateRun.objects.get(name="example-run")
    assert run.active and m.MemberCluster.objects.count() == 3
    request = m.ClusterApprovalRequest.objects.get(name="example-run-canary")

    request, sent = approve_on_hub(request, actor="carol", message="lgtm")
    assert sent and request.condition_status("Approved") == "True"
    assert json.loads(shell(env, AUDITED)) == {"actor": "alice", "via": "kube-api",
                                               "comment": "lgtm (approved by carol in Fleet UI)"}
    # The second session resumes each kind's watch from the revision it saved.
    assert hub_sync(connection_id=connection.pk, seconds=1.0).outcome == "synced"
    assert m.ClusterApprovalRequest.objects.get(name="example-run-canary").condition_status("Approved") == "True"
    assert m.Event.objects.get(action="approved", object_name="example-run-canary").details["hub"] == "other-fleet-ui"


def test_the_postgresql_horizon_stays_below_a_revision_drawn_by_a_transaction_still_open(server):
    import psycopg  # noqa: PLC0415

    from rollouts.models.revisions import PG_HORIZON  # noqa: PLC0415

    env, _, _ = server
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


def test_a_writer_in_another_database_of_the_server_does_not_hold_this_horizon_back(server):
    import psycopg  # noqa: PLC0415

    from rollouts.models.revisions import PG_HORIZON  # noqa: PLC0415

    env, _, _ = server
    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    other_url, drop = postgres_database()  # another hub's database on the same PostgreSQL server
    try:
        with psycopg.connect(url, autocommit=True) as here, psycopg.connect(
                other_url.replace("postgres://", "postgresql://", 1)) as other:
            for _ in range(10):  # this hub is past the other one's first revisions
                here.execute("SELECT rollouts_next_rv()")
            before = here.execute(PG_HORIZON).fetchone()[0]
            drawn = other.execute("SELECT rollouts_next_rv()").fetchone()[0]  # drawn there, not committed
            assert drawn < before and here.execute(PG_HORIZON).fetchone()[0] == before
            other.rollback()
    finally:
        drop()
