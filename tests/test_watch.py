"""The hub-wide resourceVersion, the change log and the watch stream,
in process (SQLite): the stream's own async iterator, read line by line
while the test writes from another thread, as a client would see it."""

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.http import QueryDict

from rollouts import clock, tasks
from rollouts import models as m
from rollouts.api import store
from rollouts.api.kinds import KindRegistry
from rollouts.api.manifests import parse_documents
from rollouts.kubeapi import watch
from rollouts.roles import VIEWERS, user_create
from rollouts.services.objects import manifests_apply, object_delete
from rollouts.services.tokens import token_create

pytestmark = pytest.mark.django_db(transaction=True)

STRATEGY = """
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata: {{name: {name}, labels: {{team: {team}}}}}
spec:
  stages:
  - {{name: staging, labelSelector: {{matchLabels: {{environment: staging}}}}}}
"""


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch):
    monkeypatch.setattr(watch, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(watch, "BOOKMARK_SECONDS", 0.05)


def strategy(name: str, team: str = "a"):
    return manifests_apply(docs=parse_documents(STRATEGY.format(name=name, team=team)), actor="tester")


def csus():
    return KindRegistry().resolve("csus")


def open_watch(**params):
    query = QueryDict(mutable=True)
    query.update({"timeoutSeconds": "5", **params})
    return watch._lines(watch.parse_watch(csus(), None, query))


@pytest.fixture(autouse=True)
def loop():
    """One event loop per test: a stream lives across several reads (asyncio.run would close it)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(None)


def run(coroutine):
    return asyncio.get_event_loop().run_until_complete(coroutine)


def read(stream, count: int) -> list[dict]:
    """The next `count` events of the stream."""
    async def take():
        return [json.loads(await anext(stream)) for _ in range(count)]
    return run(take())


def then(write, stream, count: int) -> list[dict]:
    """Write (in a thread, as another request would), then read `count` events."""
    async def both():
        await sync_to_async(write, thread_sensitive=False)()
        return [json.loads(await anext(stream)) for _ in range(count)]
    return run(both())


def summary(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


def test_every_write_of_any_kind_takes_the_next_hub_revision():
    strategy("one")
    manifests_apply(docs=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}}], actor="tester")
    strategy("one", team="b")
    one = m.ClusterStagedUpdateStrategy.objects.get(name="one")
    namespace = m.HubResource.objects.get(kind="Namespace", name="app")
    assert namespace.resource_version < one.resource_version
    assert int(watch.list_resource_version()) == one.resource_version


def test_a_compare_and_set_with_the_old_version_still_conflicts():
    strategy("one")
    first, second = store.get(csus(), "one"), store.get(csus(), "one")
    store.save(first, spec_changed=False)
    with pytest.raises(store.Conflict):
        store.save(second, spec_changed=False)


def test_a_watch_without_a_version_sends_the_state_then_each_change_in_revision_order():
    strategy("one")
    strategy("two")
    stream = open_watch()
    assert summary(read(stream, 2)) == [("ADDED", "one"), ("ADDED", "two")]

    def writes():
        strategy("one", team="b")
        strategy("three")
        object_delete(kind=csus(), name="two", namespace="", actor="tester")

    events = then(writes, stream, 3)
    assert summary(events) == [("MODIFIED", "one"), ("ADDED", "three"), ("DELETED", "two")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert events[0]["object"]["metadata"]["labels"] == {"team": "b"}
    assert events[2]["object"]["spec"]["stages"][0]["name"] == "staging"  # the deleted object's last body


def test_a_watch_from_a_version_sends_only_what_changed_after_it():
    strategy("one")
    since = watch.list_resource_version()
    strategy("two")
    object_delete(kind=csus(), name="one", namespace="", actor="tester")
    assert summary(read(open_watch(resourceVersion=since), 2)) == [("MODIFIED", "two"), ("DELETED", "one")]


def test_a_deleted_placement_leaves_tombstones_for_the_children_it_takes_along():
    manifests_apply(docs=parse_documents("""
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata: {name: app}
spec:
  resourceSelectors: [{group: "", version: v1, kind: Namespace, name: app}]
  strategy: {type: External}
"""), actor="tester")
    snapshots = set(m.ClusterResourceSnapshot.objects.values_list("name", flat=True))
    assert snapshots
    object_delete(kind=KindRegistry().resolve("crp"), name="app", namespace="", actor="tester")
    stones = m.Tombstone.objects.filter(model=m.ClusterResourceSnapshot._meta.label)
    assert set(stones.values_list("name", flat=True)) == snapshots
    assert m.Tombstone.objects.filter(model=m.ClusterResourcePlacement._meta.label, name="app").exists()


def test_a_watch_from_before_the_compaction_point_ends_with_410_expired():
    strategy("one")
    since = watch.list_resource_version()
    object_delete(kind=csus(), name="one", namespace="", actor="tester")
    m.Tombstone.objects.update(deleted_at=clock.now() - timedelta(hours=1))  # older than the retention
    events = read(open_watch(resourceVersion=since), 1)
    assert events[0]["type"] == "ERROR"
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")
    assert not m.Tombstone.objects.exists()
    # From the compaction point on, a watch is served.
    strategy("two")
    assert summary(read(open_watch(resourceVersion=str(m.HubRevision.objects.get().compacted)), 1)) == [
        ("MODIFIED", "two")]


def test_bookmarks_carry_the_hub_revision_when_asked_for():
    strategy("one")
    events = read(open_watch(allowWatchBookmarks="true"), 2)
    assert events[1] == {"type": "BOOKMARK", "object": {
        "kind": "ClusterStagedUpdateStrategy", "apiVersion": "placement.kubernetes-fleet.io/v1beta1",
        "metadata": {"resourceVersion": watch.list_resource_version()}}}


def test_label_and_field_selectors_filter_the_events():
    strategy("one", team="a")
    strategy("two", team="b")
    strategy("three", team="b")
    assert summary(read(open_watch(labelSelector="team=b", fieldSelector="metadata.name!=two"), 1)) == [
        ("ADDED", "three")]


def test_the_stream_ends_at_its_timeout():
    strategy("one")
    stream = open_watch(timeoutSeconds="0")

    async def drain():
        return [json.loads(line) async for line in stream]
    assert summary(run(drain())) == [("ADDED", "one")]


@pytest.mark.parametrize(("params", "message"), [
    pytest.param({"resourceVersion": "abc"}, "resourceVersion", id="version"),
    pytest.param({"timeoutSeconds": "-1"}, "timeoutSeconds", id="timeout"),
    pytest.param({"fieldSelector": "spec.x=y"}, "field label not supported: spec.x", id="field"),
    pytest.param({"labelSelector": "a=(b"}, "unable to parse requirement", id="labels"),
])
def test_bad_parameters_answer_400_naming_them(rf, params, message):
    response = watch.watch_response(rf.get("/"), csus(), None, {"watch": "1", **params})
    body = json.loads(response.content)
    assert (response.status_code, body["kind"], body["code"]) == (400, "Status", 400)
    assert message in body["message"]


def test_the_periodic_compaction_forgets_old_tombstones_and_moves_the_410_point():
    strategy("old")
    strategy("recent")
    object_delete(kind=csus(), name="old", namespace="", actor="tester")
    m.Tombstone.objects.update(deleted_at=clock.now() - timedelta(hours=1))
    object_delete(kind=csus(), name="recent", namespace="", actor="tester")
    old, recent = m.Tombstone.objects.order_by("resource_version")
    assert tasks.change_log_compact() == old.resource_version
    assert list(m.Tombstone.objects.values_list("name", flat=True)) == ["recent"]


def test_a_renderer_shapes_each_event_object_and_not_the_bookmarks():
    strategy("one")
    query = QueryDict(mutable=True)
    query.update({"timeoutSeconds": "5", "allowWatchBookmarks": "true"})
    request = watch.parse_watch(csus(), None, query)
    stream = watch._lines(watch.replace(request, render=lambda obj: {"row": obj["metadata"]["name"]}))
    first, bookmark = read(stream, 2)
    assert first == {"type": "ADDED", "object": {"row": "one"}}
    assert bookmark["type"] == "BOOKMARK" and bookmark["object"]["metadata"]["resourceVersion"]
    async def next_change():
        await sync_to_async(strategy, thread_sensitive=False)("one", "b")
        while (event := json.loads(await anext(stream)))["type"] == "BOOKMARK":
            pass
        return event
    assert run(next_change()) == {"type": "MODIFIED", "object": {"row": "one"}}


PLACEMENT = """
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata: {name: app}
spec:
  resourceSelectors: [{group: "", version: v1, kind: Namespace, name: app}]
  strategy: {type: External}
"""
CRPS = "/apis/placement.kubernetes-fleet.io/v1beta1/clusterresourceplacements"
GROUP_V1 = "/apis/placement.kubernetes-fleet.io/v1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def test_kubectl_get_w_on_the_api_gets_each_event_as_a_one_row_table_a_deletion_too(client):
    """What `kubectl get crp -w` asks for: a viewer's token, Accept as=Table, watch=1."""
    viewer, _ = user_create(username="vic", role=VIEWERS)
    token = token_create(user=viewer, name="kubectl", actor="vic")[1]
    manifests_apply(docs=parse_documents(PLACEMENT), actor="tester")
    since = watch.list_resource_version()
    object_delete(kind=KindRegistry().resolve("crp"), name="app", namespace="", actor="tester")
    asked = f"{CRPS}?watch=1&resourceVersion={since}&timeoutSeconds=1"
    assert client.get(asked, HTTP_ACCEPT=TABLE).status_code == 401
    response = client.get(asked, HTTP_ACCEPT=TABLE, HTTP_AUTHORIZATION=f"Bearer {token}")

    async def drain():  # an ASGI stream, as daphne reads it
        return [json.loads(line) async for chunk in response.streaming_content for line in chunk.splitlines()]
    events = run(drain())
    assert [e["type"] for e in events] == ["DELETED"]
    table = events[0]["object"]
    assert table["kind"] == "Table" and len(table["rows"]) == 1
    shown = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert [n.upper() for n in shown] == ["NAME", "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE", "AVAILABLE-GEN", "AGE"]
    row = table["rows"][0]
    assert row["cells"][:2] == ["app", "1"]
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == "app"
    assert table["metadata"]["resourceVersion"] == row["object"]["metadata"]["resourceVersion"]


def test_a_watch_of_a_fleet_kind_at_v1_sends_its_objects_at_v1(client):
    viewer, _ = user_create(username="vic", role=VIEWERS)
    token = token_create(user=viewer, name="kubectl", actor="vic")[1]
    strategy("one")
    response = client.get(f"{GROUP_V1}/clusterstagedupdatestrategies?watch=1&timeoutSeconds=0",
                          HTTP_AUTHORIZATION=f"Bearer {token}")

    async def drain():
        return [json.loads(line) async for chunk in response.streaming_content for line in chunk.splitlines()]
    events = run(drain())
    assert [(e["type"], e["object"]["apiVersion"]) for e in events] == [("ADDED", "placement.kubernetes-fleet.io/v1")]
