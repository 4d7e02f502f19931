"""Hub connections and member credentials: kubeconfigs stored encrypted and
never shown again, the admin pages, removing a hub, and the Celery tasks
that keep sessions going.

Personas: "ada" administers Fleet UI; the hub "prod-hub".
"""

import threading

import pytest
from django.contrib.auth.models import User

from rollouts import broadcast, clock, tasks_k8s
from rollouts import models as m
from rollouts.api.errors import Forbidden
from rollouts.mirror import (
    HubRefused,
    MirroredReadOnly,
    hub_connection_delete,
    hub_connection_rows,
    hub_sync,
    hubs_keep_synced,
    mirror_sources,
    require_local,
)
from rollouts.mirror import sync as sync_module
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import (
    HubConnection,
    MemberCredential,
    MirroredObject,
    UnreadableCredential,
)
from tests.fake_kube import tutorial_hub


@pytest.fixture
def ada(db):
    return User.objects.create_superuser("ada", "ada@example.com", "pw")


def test_the_kubeconfig_is_stored_encrypted_and_read_back_only_on_purpose(fake, hub):
    stored = HubConnection.objects.values_list("kubeconfig_encrypted", flat=True).get()

    assert fake.token not in stored and "server" not in stored
    assert fake.token not in str(hub) and fake.token not in repr(hub)
    assert hub.kubeconfig() == fake.kubeconfig()


def test_a_changed_key_makes_the_kubeconfig_unreadable_and_the_sync_says_so(fake, hub, settings):
    settings.FLEET_CREDENTIALS_KEY = "another key"

    with pytest.raises(UnreadableCredential):
        hub.kubeconfig()
    result = hub_sync(connection_id=hub.pk, seconds=0.2)
    assert result.outcome == "failed" and "cannot be decrypted" in result.error


def test_saving_refuses_an_unusable_kubeconfig_and_one_that_runs_commands(db):
    with pytest.raises(HubRefused, match="not valid YAML"):
        credential_save(HubConnection(name="h"), kubeconfig="a: [", actor="ada")
    exec_config = ("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: "
                   "'https://h'}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: "
                   "{exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin}}}]\n")
    with pytest.raises(HubRefused, match=r"^users\[0\]\.user\.exec: not allowed: credential plugins run programs"):
        credential_save(HubConnection(name="h"), kubeconfig=exec_config, actor="ada")
    assert not HubConnection.objects.exists()


def test_a_blank_kubeconfig_keeps_the_stored_one(fake, hub):
    credential_save(hub, kubeconfig="", context="other", actor="ada")

    hub.refresh_from_db()
    assert hub.context == "other" and hub.kubeconfig() == fake.kubeconfig()
    assert list(m.Event.objects.values_list("action", flat=True)) == ["created", "configured"]
    assert m.Event.objects.last().details == {"kubeconfig": "kept", "context": "other"}


def test_the_admin_adds_a_hub_without_ever_showing_its_kubeconfig(fake, ada, client):
    client.force_login(ada)

    response = client.post("/admin/rollouts/hubconnection/add/", {
        "name": "prod-hub", "context": "fake", "kubeconfig": fake.kubeconfig(), "enabled": "on"})

    assert response.status_code == 302
    hub = HubConnection.objects.get()
    assert hub.kubeconfig() == fake.kubeconfig()
    page = client.get(f"/admin/rollouts/hubconnection/{hub.pk}/change/").content.decode()
    assert fake.token not in page and hub.kubeconfig_encrypted not in page


def test_the_admin_shows_a_bad_kubeconfig_on_the_form(ada, client):
    client.force_login(ada)

    response = client.post("/admin/rollouts/membercredential/add/", {"name": "m1", "kubeconfig": "a: ["})

    assert response.status_code == 200 and "not valid YAML" in response.content.decode()
    assert not MemberCredential.objects.exists()


def test_removing_a_hub_removes_everything_mirrored_from_it(fake, hub):
    tutorial_hub(fake)
    hub_sync(connection_id=hub.pk, seconds=0.5)

    removed = hub_connection_delete(connection=hub, actor="ada")

    assert removed == 8 and not MirroredObject.objects.exists()
    assert not m.ClusterStagedUpdateRun.objects.exists() and not m.ClusterResourceSnapshot.objects.exists()
    assert not HubConnection.objects.exists()


def test_the_sync_task_chains_the_next_session(fake, hub, monkeypatch, settings):
    settings.FLEET_HUB_SESSION_SECONDS = 0.2
    queued = []
    monkeypatch.setattr(tasks_k8s.hub_sync, "apply_async", lambda args, countdown: queued.append((args, countdown)))

    assert tasks_k8s.hub_sync(hub.pk) == "synced"
    fake.go_down()
    assert tasks_k8s.hub_sync(hub.pk) == "failed"
    assert tasks_k8s.hub_sync(hub.pk) == "skipped"  # backing off: the chain waits for its countdown

    assert queued == [((hub.pk,), 0.0), ((hub.pk,), 5)]


def test_beat_starts_a_session_for_every_hub_without_one(hub, monkeypatch):
    other = credential_save(HubConnection(name="paused", enabled=False), kubeconfig=hub.kubeconfig(), actor="ada")
    started = []
    monkeypatch.setattr(tasks_k8s.hub_sync, "delay", started.append)

    assert tasks_k8s.hub_connections_sync() == 1
    assert started == [hub.pk] and other.pk not in started


def test_the_hubs_page_reads_health_and_counts_in_one_query(fake, hub, django_assert_num_queries):
    tutorial_hub(fake)
    hub_sync(connection_id=hub.pk, seconds=0.5)
    credential_save(HubConnection(name="paused", enabled=False), kubeconfig=hub.kubeconfig(), actor="ada")

    with django_assert_num_queries(1):  # the connections with their mirrored-object counts
        rows = hub_connection_rows()

    assert [(r.name, r.health, r.mirrored) for r in rows] == [("paused", "disabled", 0), ("prod-hub", "synced", 8)]


def test_list_rows_are_marked_with_their_hub_in_one_query(fake, hub, django_assert_num_queries):
    tutorial_hub(fake)
    hub_sync(connection_id=hub.pk, seconds=0.5)
    own = m.ClusterStagedUpdateRun.objects.create(name="our-run", creation_timestamp=clock.now())
    runs = list(m.ClusterStagedUpdateRun.objects.all())

    with django_assert_num_queries(1):
        sources = mirror_sources(runs)

    assert sources == {("ClusterStagedUpdateRun", "", "example-run"): "prod-hub"}
    assert (own.KIND, "", own.name) not in sources


def test_a_write_to_a_mirrored_object_is_refused_plainly(fake, hub):
    tutorial_hub(fake)
    hub_sync(connection_id=hub.pk, seconds=0.5)

    with pytest.raises(MirroredReadOnly) as refused:
        require_local(m.ClusterStagedUpdateRun.objects.get())

    assert isinstance(refused.value, Forbidden)
    assert str(refused.value) == ('ClusterStagedUpdateRun "example-run" is mirrored from hub prod-hub and '
                                  "read-only here: change it on the hub")


@pytest.fixture
def synced(monkeypatch):
    """Set when a session in another thread has synced. Tests wait on it
    rather than poll the database: the in-memory test database locks
    tables against a reader while another thread writes."""
    done = threading.Event()
    real = sync_module.hub_sync

    def hub_sync_and_tell(**kwargs):
        result = real(**kwargs)
        if result.outcome == "synced":
            done.set()
        return result

    monkeypatch.setattr(sync_module, "hub_sync", hub_sync_and_tell)
    return done


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_keeps_a_session_going_for_every_hub(fake, settings, synced):
    settings.FLEET_HUB_SESSION_SECONDS = 0.2
    tutorial_hub(fake)
    credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), actor="ada")
    stop = threading.Event()
    loop = threading.Thread(target=hubs_keep_synced, kwargs={"stop": stop, "poll_seconds": 0.05})
    loop.start()
    try:
        assert synced.wait(30)
    finally:
        stop.set()
        loop.join()

    assert m.ClusterStagedUpdateRun.objects.get().name == "example-run"


@pytest.mark.django_db(transaction=True)
def test_fleet_engine_mirrors_hubs_beside_the_engine_loop(fake, settings, monkeypatch, fleet, synced):
    settings.FLEET_HUB_SESSION_SECONDS = 0.2
    tutorial_hub(fake)
    credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), actor="ada")
    seen = []

    def engine_loop_until_mirrored(options, stop):
        # Stands in for the engine loop: returns once the hub thread synced.
        seen.append(synced.wait(30))

    monkeypatch.setattr("rollouts.engine.loop.engine_main", engine_loop_until_mirrored)
    result = fleet("engine")

    assert result.code == 0 and seen == [True]
    assert m.ClusterStagedUpdateRun.objects.get().name == "example-run"
    assert not [t for t in threading.enumerate() if t.name.startswith(("fleet-hubs", "hub-sync"))]


def test_celery_sends_hub_sessions_to_their_own_queue_and_beat_restarts_chains():
    from fleetui.celery import app

    route = app.amqp.router.route({}, "rollouts.tasks_k8s.hub_sync")
    assert route["queue"].name == "hubs"  # a 40 s session never holds an engine worker's slot
    assert app.amqp.router.route({}, "rollouts.tasks.runs_advance_due")["queue"].name == "celery"
    assert app.conf.beat_schedule["sync-hubs"]["task"] == "rollouts.tasks_k8s.hub_connections_sync"
    assert "rollouts.tasks_k8s.hub_connections_sync" in app.tasks


def test_fleet_hub_adds_lists_and_deletes_a_hub_as_the_admin_page_does(db, fake, fleet, manifest_file):
    tutorial_hub(fake)
    path = manifest_file(fake.kubeconfig(), "hub.kubeconfig")

    added = fleet("--as", "ada", "hub", "add", "prod-hub", "--kubeconfig", path, "--context", "fake")
    assert added == (0, "hub prod-hub created\n", "")
    hub = HubConnection.objects.get(name="prod-hub")
    assert hub.context == "fake" and fake.token not in (hub.kubeconfig_encrypted or "")
    hub_sync(connection_id=hub.pk, seconds=0.5)

    listed = fleet("hub", "list")
    assert listed.code == 0 and listed.out.split("\n")[0].split() == ["NAME", "HEALTH", "LAST-SYNC", "MIRRORED",
                                                                     "LAST-ERROR"]
    assert "prod-hub" in listed.out and "synced" in listed.out and fake.token not in listed.out
    assert fleet("--as", "ada", "hub", "delete", "prod-hub").out.startswith("hub prod-hub deleted (")
    assert not m.ClusterStagedUpdateRun.objects.exists()
    events = list(m.Event.objects.filter(object_kind="HubConnection").values_list("actor", "action"))
    assert events == [("ada", "created"), ("ada", "deleted")]


def test_fleet_hub_refuses_bad_input_in_one_line(db, fleet, manifest_file):
    assert fleet("hub", "add", "prod-hub") == (1, "", "error: hub prod-hub: a kubeconfig is required\n")
    broken = manifest_file("users: [", "broken.kubeconfig")
    code, out, err = fleet("hub", "add", "prod-hub", "--kubeconfig", broken)
    assert code == 1 and "not valid YAML" in err and err.count("\n") == 1
    assert fleet("hub", "delete", "nowhere").code == 1
    assert not HubConnection.objects.exists()


def test_fleet_kubeconfig_stores_a_member_credential_write_only(db, fake, fleet, manifest_file):
    path = manifest_file(fake.kubeconfig(), "member1.kubeconfig")

    assert fleet("kubeconfig", "add", "member1-kubeconfig", "--kubeconfig", path).code == 0
    listed = fleet("kubeconfig", "list")
    assert "member1-kubeconfig" in listed.out and fake.token not in listed.out
    assert fleet("kubeconfig", "delete", "member1-kubeconfig").out == "kubeconfig member1-kubeconfig deleted\n"
    assert not MemberCredential.objects.exists()


def test_a_hub_failing_and_recovering_pushes_the_overview(fake, hub, settings, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    """"Needs attention" lists failing hubs: a sync's failure and the next
    success each push the overview (broadcast.on_changes), after commit."""
    pushed = []
    monkeypatch.setattr(broadcast, "push", pushed.append)
    key = settings.FLEET_CREDENTIALS_KEY
    settings.FLEET_CREDENTIALS_KEY = "another key"
    with django_capture_on_commit_callbacks(execute=True):
        assert hub_sync(connection_id=hub.pk, seconds=0.2).outcome == "failed"
    assert pushed == [[("overview",)]]
    settings.FLEET_CREDENTIALS_KEY = key
    HubConnection.objects.filter(pk=hub.pk).update(backoff_until=None)
    pushed.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert hub_sync(connection_id=hub.pk, seconds=0.2).outcome == "synced"
    assert [("overview",)] in pushed
