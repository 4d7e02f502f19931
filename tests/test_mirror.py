"""Mirroring a KubeFleet hub: list, watch, follow, delete, re-list after 410,
survive an unreachable hub. The hub is tests/fake_kube.py on loopback, spoken
to by the real `kubernetes` client.

Personas: the hub "prod-hub" (its controllers act as `hub:prod-hub`), and
its administrator "ada" who adds it.
"""

import threading
import time
from datetime import timedelta

import pytest

from rollouts import broadcast, clock
from rollouts import models as m
from rollouts.mirror import hub_sync, is_mirrored, local_only, mirror_mark
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import HubConnection, MirroredObject
from tests.fake_kube import (
    FakeKube,
    fleet_object,
    tutorial_approval_request,
    tutorial_hub,
    tutorial_run_status,
)

SESSION = 0.5  # seconds: long enough to replay what the hub holds on a busy machine, short for the suite
HUB = "hub:prod-hub"


def sync(hub, seconds=SESSION):
    result = hub_sync(connection_id=hub.pk, seconds=seconds)
    hub.refresh_from_db()
    return result


def hub_rv_before(obj: dict) -> str:
    return str(int(obj["metadata"]["resourceVersion"]) - 1)


def run_conditions(run) -> dict:
    return {c["type"]: (c["status"], c["reason"]) for c in run.status["conditions"]}


def test_it_mirrors_the_tutorials_hub_read_only_in_the_same_models(fake, hub):
    tutorial_hub(fake)

    result = sync(hub)

    assert result.outcome == "synced" and hub.last_error == "" and hub.last_sync is not None
    assert sorted(m.MemberCluster.objects.values_list("name", flat=True)) == ["member1", "member2", "member3"]
    run = m.ClusterStagedUpdateRun.objects.get(name="example-run")
    assert run.spec["stagedRolloutStrategyName"] == "example-strategy" and run.active
    assert run_conditions(run)["Progressing"] == ("True", "UpdateRunStarted")
    snapshot = m.ClusterResourceSnapshot.objects.get(name="example-placement-0-snapshot")
    assert snapshot.owner.name == "example-placement" and snapshot.index == 0
    assert m.ClusterSchedulingPolicySnapshot.objects.get().owner.name == "example-placement"
    assert is_mirrored(run) and mirror_mark(run).connection == hub
    assert not local_only(m.ClusterStagedUpdateRun.objects.all()).exists()
    # The row carries this hub's own revision; the other hub's is the mark's.
    assert mirror_mark(run).hub_resource_version == fake.get(run.api_version(), run.KIND, "example-run")["metadata"]["resourceVersion"]


def test_a_first_mirror_rebuilds_the_runs_timeline_from_the_hubs_conditions(fake, hub):
    tutorial_hub(fake)

    sync(hub)

    events = m.Event.objects.filter(run="example-run")
    assert {e.actor for e in events} == {HUB}
    assert events.filter(action=m.Event.Action.CREATED).count() == 1
    started = events.get(action=m.Event.Action.CONDITION, reason="ClusterUpdatingStarted")
    assert started.details["cluster"] == "member2" and started.time.isoformat() == "2026-03-02T21:28:08+00:00"


def test_the_mirrored_run_follows_the_hub_as_it_progresses(fake, hub):
    tutorial_hub(fake)
    sync(hub)
    listed_at = hub.watch_state["ClusterStagedUpdateRun"]["resourceVersion"]
    run = fake.get(f"{'placement.kubernetes-fleet.io'}/v1beta1", "ClusterStagedUpdateRun", "example-run")

    fake.put({**run, "status": tutorial_run_status("canary-waiting")})  # the hub's controller moves on
    fake.put(tutorial_approval_request())
    sync(hub)

    run = m.ClusterStagedUpdateRun.objects.get(name="example-run")
    assert run_conditions(run)["Progressing"] == ("False", "UpdateRunWaiting")
    assert m.ClusterApprovalRequest.objects.get(name="example-run-canary").spec["targetStage"] == "canary"
    watches = fake.watch_requests("clusterstagedupdateruns")
    assert watches[0].query["resourceVersion"] == listed_at  # the second session resumed, no new list
    assert len(fake.requests_to("GET", "/clusterstagedupdateruns")) - len(watches) == 1
    waiting = m.Event.objects.get(run="example-run", reason="UpdateRunWaiting")
    assert waiting.actor == HUB and waiting.details["from"] == {"status": "True", "reason": "UpdateRunStarted"}
    assert m.Event.objects.filter(object_name="example-run-canary", action=m.Event.Action.CREATED).exists()


def test_changes_arrive_while_the_session_watches(fake, hub):
    tutorial_hub(fake)
    sync(hub)
    run = fake.get("placement.kubernetes-fleet.io/v1beta1", "ClusterStagedUpdateRun", "example-run")

    threading.Timer(0.15, lambda: fake.put({**run, "status": tutorial_run_status("canary-waiting")})).start()
    result = sync(hub, seconds=1.0)

    assert result.changes >= 1
    assert run_conditions(m.ClusterStagedUpdateRun.objects.get())["Progressing"][1] == "UpdateRunWaiting"


@pytest.mark.parametrize("abruptly", [pytest.param(False, id="server-ends-stream"),
                                      pytest.param(True, id="connection-dropped")])
def test_a_watch_that_breaks_resumes_from_the_last_resource_version(fake, hub, abruptly):
    tutorial_hub(fake)
    sync(hub)
    first = fake.put(fleet_object("MemberCluster", "member4", labels={"environment": "canary"}))

    earlier = len(fake.watch_requests("memberclusters"))

    def hub_events():
        deadline = time.monotonic() + 10
        while len(fake.watch_requests("memberclusters")) == earlier and time.monotonic() < deadline:
            time.sleep(0.01)  # the session's watch is open: now break it
        time.sleep(0.1)
        fake.break_watches(abruptly=abruptly)
        fake.put(fleet_object("MemberCluster", "member5"))

    threading.Thread(target=hub_events).start()
    deadline = time.monotonic() + 10
    sync(hub, seconds=1.5)
    while not m.MemberCluster.objects.filter(name="member5").exists() and time.monotonic() < deadline:
        sync(hub, seconds=1.5)  # a loaded machine: the break came late in the session; the next resumes

    assert set(m.MemberCluster.objects.values_list("name", flat=True)) >= {"member4", "member5"}
    opened, reopened = fake.watch_requests("memberclusters")[earlier:earlier + 2]
    assert opened.query["resourceVersion"] == hub_rv_before(first)
    assert reopened.query["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_a_410_gone_makes_the_sync_list_again_and_catch_deletions(fake, hub):
    tutorial_hub(fake)
    sync(hub)
    fake.delete("cluster.kubernetes-fleet.io/v1beta1", "MemberCluster", "member1")
    fake.put(fleet_object("MemberCluster", "member9"))
    fake.compact()  # the hub forgot the history we would watch from

    sync(hub)

    assert set(m.MemberCluster.objects.values_list("name", flat=True)) == {"member2", "member3", "member9"}
    assert not MirroredObject.objects.filter(kind="MemberCluster", name="member1").exists()
    lists = [r for r in fake.requests_to("GET", "/memberclusters") if "watch" not in r.query]
    assert len(lists) == 2


def test_objects_deleted_on_the_hub_leave_the_mirror_and_the_timeline_says_so(fake, hub):
    tutorial_hub(fake)
    fake.put(tutorial_approval_request())
    sync(hub)

    fake.delete("placement.kubernetes-fleet.io/v1beta1", "ClusterApprovalRequest", "example-run-canary")
    fake.delete("placement.kubernetes-fleet.io/v1beta1", "ClusterResourcePlacement", "example-placement")
    sync(hub)

    assert not m.ClusterApprovalRequest.objects.exists()
    assert not m.ClusterResourcePlacement.objects.exists() and not m.ClusterResourceSnapshot.objects.exists()
    assert not MirroredObject.objects.filter(kind__in=["ClusterResourceSnapshot", "ClusterResourcePlacement",
                                                       "ClusterSchedulingPolicySnapshot"]).exists()
    deleted = m.Event.objects.get(action=m.Event.Action.DELETED, object_name="example-run-canary")
    assert deleted.actor == HUB and deleted.run == "example-run"


def test_an_unreachable_hub_is_recorded_retried_with_backoff_and_loses_nothing(fake, hub, frozen_clock):
    tutorial_hub(fake)
    sync(hub)
    fake.go_down()

    failed = sync(hub)

    assert failed.outcome == "failed" and failed.next_in == 5
    assert "cannot reach the API server" in hub.last_error and "\n" not in hub.last_error
    assert hub.failures == 1 and hub.backoff_until == clock.now() + timedelta(seconds=5)
    assert sync(hub).outcome == "skipped"  # backing off
    frozen_clock.advance(5)
    assert sync(hub).next_in == 10 and hub.failures == 2

    run = fake.get("placement.kubernetes-fleet.io/v1beta1", "ClusterStagedUpdateRun", "example-run")
    fake.put({**run, "status": tutorial_run_status("canary-waiting")})  # happens while we cannot see
    fake.come_back()
    frozen_clock.advance(10)
    assert sync(hub).outcome == "synced"

    assert hub.failures == 0 and hub.last_error == "" and hub.backoff_until is None
    assert run_conditions(m.ClusterStagedUpdateRun.objects.get())["Progressing"][1] == "UpdateRunWaiting"
    assert m.MemberCluster.objects.count() == 3  # the outage deleted nothing


def test_a_hub_that_never_answers_is_an_error_on_the_connection(db, fake):
    nowhere = FakeKube().kubeconfig(url="http://127.0.0.1:1")
    hub = credential_save(HubConnection(name="gone-hub"), kubeconfig=nowhere, actor="ada")

    result = sync(hub)

    assert result.outcome == "failed" and "Connection refused" in hub.last_error
    assert hub.lease_until is None and hub.backoff_until is not None


def test_wrong_credentials_fail_the_session_with_the_hubs_answer(db, fake):
    hub = credential_save(HubConnection(name="prod-hub"),
                          kubeconfig=fake.kubeconfig().replace(fake.token, "stolen"), actor="ada")

    result = sync(hub)

    assert result.outcome == "failed" and "HTTP 401" in hub.last_error


def test_a_kind_the_hub_forbids_is_a_warning_not_a_failure(fake, hub):
    tutorial_hub(fake)
    fake.fail(403, method="GET", path_contains="/memberclusters", message="memberclusters is forbidden")

    result = sync(hub)

    assert result.outcome == "synced" and m.ClusterStagedUpdateRun.objects.exists()
    assert any("forbids listing" in w for w in hub.warnings) and not m.MemberCluster.objects.exists()


def test_a_hub_without_the_namespaced_family_mirrors_the_rest(fake, hub):
    for plural in ("stagedupdateruns", "stagedupdatestrategies", "approvalrequests", "resourceplacements",
                   "resourcesnapshots", "schedulingpolicysnapshots"):
        fake.unserve("placement.kubernetes-fleet.io", plural)
    tutorial_hub(fake)

    assert sync(hub).outcome == "synced"

    assert hub.watch_state["StagedUpdateRun"] == {"served": False}
    assert m.ClusterStagedUpdateRun.objects.exists()


def test_the_namespaced_family_is_mirrored_in_its_namespaces(fake, hub):
    fake.put(fleet_object("ResourcePlacement", "web", namespace="team-a", spec={"strategy": {"type": "External"}}))
    fake.put(fleet_object("ResourceSnapshot", "web-0-snapshot", namespace="team-a", labels={
        "kubernetes-fleet.io/parent-CRP": "web", "kubernetes-fleet.io/resource-index": "0"}))
    fake.put(fleet_object("StagedUpdateRun", "web-run", namespace="team-a",
                          spec={"placementName": "web", "stagedRolloutStrategyName": "s", "state": "Initialize"}))

    sync(hub)

    assert m.StagedUpdateRun.objects.get(namespace="team-a").spec["state"] == "Initialize"
    assert m.ResourceSnapshot.objects.get(namespace="team-a").owner == m.ResourcePlacement.objects.get()


def test_a_snapshot_seen_before_its_placement_waits_for_it(fake, hub):
    sync(hub)
    fake.put(fleet_object("ClusterResourceSnapshot", "late-0-snapshot", labels={
        "kubernetes-fleet.io/parent-CRP": "late", "kubernetes-fleet.io/resource-index": "0"}))
    threading.Timer(0.15, lambda: fake.put(fleet_object("ClusterResourcePlacement", "late"))).start()

    sync(hub, seconds=1.0)

    assert m.ClusterResourceSnapshot.objects.get(name="late-0-snapshot").owner.name == "late"


def test_an_orphan_snapshot_is_a_warning_and_is_listed_again(fake, hub):
    fake.put(fleet_object("ClusterResourceSnapshot", "orphan-0-snapshot", labels={
        "kubernetes-fleet.io/parent-CRP": "nobody"}))

    sync(hub)

    assert any("orphan-0-snapshot" in w for w in hub.warnings) and not m.ClusterResourceSnapshot.objects.exists()


def test_it_never_overwrites_fleet_uis_own_object_of_the_same_name(fake, hub):
    own = m.MemberCluster.objects.create(name="member1", creation_timestamp=clock.now(), labels={"mine": "yes"})
    tutorial_hub(fake)

    sync(hub)

    own.refresh_from_db()
    assert own.labels == {"mine": "yes"} and not is_mirrored(own)
    assert any("member1" in w and "its own object" in w for w in hub.warnings)
    assert local_only(m.MemberCluster.objects.all()).get() == own


def test_two_sessions_never_sync_one_hub_at_once(fake, hub):
    HubConnection.objects.filter(pk=hub.pk).update(lease_until=clock.now() + timedelta(seconds=60))

    assert sync(hub).outcome == "skipped"
    assert fake.requests == []


def test_a_mirrored_runs_changes_are_pushed_live_after_commit(fake, hub, monkeypatch,
                                                             django_capture_on_commit_callbacks):
    pushed = []
    monkeypatch.setattr(broadcast, "push", pushed.append)
    tutorial_hub(fake)
    fake.put(tutorial_approval_request())

    with django_capture_on_commit_callbacks(execute=True):
        sync(hub)

    keys = {key for keys in pushed for key in keys}
    run = m.ClusterStagedUpdateRun.objects.get()
    assert {("run", run.KIND, run.pk), ("run-named", run.KIND, "", "example-run"), ("overview",)} <= keys


def test_a_failure_in_a_mirrored_placements_status_pushes_its_runs(fake, hub, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    """A hub reports a failing cluster in its placement's status (the run's
    own status does not change): the run's page is pushed at once."""
    tutorial_hub(fake)
    sync(hub)
    pushed = []
    monkeypatch.setattr(broadcast, "push", pushed.append)
    fake.put(fleet_object("ClusterResourcePlacement", "example-placement", spec={
        "resourceSelectors": [{"group": "", "kind": "Namespace", "version": "v1", "name": "test-namespace"}],
        "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}, status={"placementStatuses": [
            {"clusterName": "member2", "conditions": [
                {"type": "RolloutStarted", "status": "True", "reason": "RolloutStarted", "observedGeneration": 1},
                {"type": "Applied", "status": "False", "reason": "ApplyFailed", "observedGeneration": 1,
                 "message": "admission webhook denied the request"}]}]}))
    with django_capture_on_commit_callbacks(execute=True):
        sync(hub)
    keys = {key for keys in pushed for key in keys}
    assert ("runs-of", "ClusterStagedUpdateRun", "", "example-placement") in keys
    pushed.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sync(hub)  # nothing new on the hub: nothing pushed
    assert not any(key[0] == "runs-of" for keys in pushed for key in keys)
