"""The Kubernetes adapter against the fake API server: plain dicts out, the
requests Kubernetes expects on the wire, one error vocabulary."""

import threading
import time

import pytest

from rollouts import k8s
from tests.fake_kube import FLEET, FakeKube, fleet_object

CAREQ = (FLEET, "v1beta1", "clusterapprovalrequests")


@pytest.fixture
def fake():
    with FakeKube() as server:
        yield server


@pytest.fixture
def client(fake):
    return k8s.client_from_kubeconfig(fake.kubeconfig(), "fake")


def careq(name="example-run-canary"):
    return fleet_object("ClusterApprovalRequest", name, spec={"parentStageRollout": "example-run",
                                                              "targetStage": "canary"})


def test_it_lists_every_page_and_returns_the_lists_resource_version(fake, client, monkeypatch):
    monkeypatch.setattr(k8s, "LIST_PAGE_SIZE", 2)
    for i in range(5):
        fake.put(careq(f"r{i}"))

    items, version = k8s.list_objects(client, *CAREQ)

    assert [i["metadata"]["name"] for i in items] == ["r0", "r1", "r2", "r3", "r4"]
    assert version == str(fake.rv) and len(fake.requests_to("GET")) == 3
    assert fake.requests[-1].authorization == f"Bearer {fake.token}"


def test_a_core_list_addresses_the_core_api_and_filters_by_label(fake, client):
    fake.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns",
                                                                    "labels": {"team": "x"}}})
    fake.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "ns"}})

    items, _ = k8s.list_objects(client, "", "v1", "configmaps", "ns", label_selector="team=x")

    assert [i["metadata"]["name"] for i in items] == ["a"]
    assert fake.requests[-1].path == "/api/v1/namespaces/ns/configmaps"


def test_a_watch_replays_changes_after_the_version_and_ends_with_a_bookmark(fake, client):
    _, version = k8s.list_objects(client, *CAREQ)
    fake.put(careq())
    fake.delete(f"{FLEET}/v1beta1", "ClusterApprovalRequest", "example-run-canary")

    events = list(k8s.watch_objects(client, *CAREQ, resource_version=version, timeout_seconds=1))

    assert [t for t, _ in events] == ["ADDED", "DELETED", "BOOKMARK"]
    assert events[-1][1]["metadata"]["resourceVersion"] == str(fake.rv)
    assert fake.requests[-1].query == {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                                       "timeoutSeconds": "1"}


def test_a_watch_from_a_forgotten_version_raises_gone(fake, client):
    fake.compact()

    with pytest.raises(k8s.GoneError) as gone:
        list(k8s.watch_objects(client, *CAREQ, resource_version="1", timeout_seconds=1))

    assert gone.value.status == 410 and "too old resource version" in str(gone.value)


def test_closing_a_watch_from_another_thread_ends_it_at_once(fake, client):
    stream = k8s.watch_objects(client, *CAREQ, resource_version=str(fake.rv), timeout_seconds=30)
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()

    assert list(stream) == []
    assert time.monotonic() - started < 5


def test_a_dropped_watch_is_a_temporary_error(fake, client):
    stream = k8s.watch_objects(client, *CAREQ, resource_version=str(fake.rv), timeout_seconds=30)
    threading.Timer(0.2, lambda: fake.break_watches(abruptly=True)).start()

    with pytest.raises(k8s.TemporaryK8sError, match="the stream broke"):
        list(stream)


def test_a_status_merge_patch_goes_to_the_status_subresource(fake, client):
    fake.put(careq())
    body = {"status": {"conditions": [{"type": "Approved", "status": "True"}]}}

    answer = k8s.patch_status_merge(client, *CAREQ, "example-run-canary", body)

    request = fake.requests[-1]
    assert (request.method, request.path) == ("PATCH", f"/apis/{FLEET}/v1beta1/clusterapprovalrequests/example-run-canary/status")
    assert (request.content_type, request.body) == ("application/merge-patch+json", body)
    assert answer["status"] == body["status"] and answer["metadata"]["generation"] == 1


def test_a_spec_merge_patch_of_a_namespaced_object(fake, client):
    fake.put(fleet_object("StagedUpdateRun", "r", namespace="team-a", spec={"state": "Run"}))

    answer = k8s.patch_spec_merge(client, FLEET, "v1beta1", "stagedupdateruns", "r", {"spec": {"state": "Stop"}},
                                  namespace="team-a")

    assert fake.requests[-1].path == f"/apis/{FLEET}/v1beta1/namespaces/team-a/stagedupdateruns/r"
    assert answer["spec"]["state"] == "Stop" and answer["metadata"]["generation"] == 2


def test_server_side_apply_sends_the_manifest_as_fleetui(fake, client):
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
                "spec": {"replicas": 2}}

    created = k8s.server_side_apply(client, manifest, plural="deployments", namespaced=True)

    request = fake.requests[-1]
    assert (request.method, request.path) == ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web")
    assert request.content_type == "application/apply-patch+yaml"
    assert request.query == {"fieldManager": "fleetui"} and request.body == manifest
    assert created["metadata"]["managedFields"][0]["manager"] == "fleetui"


def test_delete_reports_whether_there_was_something_to_delete(fake, client):
    fake.put(careq())
    uid = fake.get(f"{FLEET}/v1beta1", "ClusterApprovalRequest", "example-run-canary")["metadata"]["uid"]

    assert k8s.delete_object(client, *CAREQ, "example-run-canary", uid=uid) is True
    assert fake.requests[-1].body == {"apiVersion": "v1", "kind": "DeleteOptions",
                                      "propagationPolicy": "Background", "preconditions": {"uid": uid}}
    assert k8s.delete_object(client, *CAREQ, "example-run-canary") is False


def test_get_by_manifest_is_none_for_a_missing_object(client):
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"}}

    assert k8s.get_object_by_manifest(client, manifest, plural="configmaps", namespaced=True) is None


@pytest.mark.parametrize(("status", "error"), [
    pytest.param(400, k8s.PermanentK8sError, id="400-bad-request"),
    pytest.param(401, k8s.PermanentK8sError, id="401-unauthorized"),
    pytest.param(403, k8s.PermanentK8sError, id="403-forbidden"),
    pytest.param(404, k8s.NotFoundError, id="404-not-found"),
    pytest.param(409, k8s.PermanentK8sError, id="409-conflict"),
    pytest.param(410, k8s.GoneError, id="410-gone"),
    pytest.param(422, k8s.PermanentK8sError, id="422-invalid"),
    pytest.param(429, k8s.TemporaryK8sError, id="429-too-many-requests"),
    pytest.param(500, k8s.TemporaryK8sError, id="500-internal"),
    pytest.param(503, k8s.TemporaryK8sError, id="503-unavailable"),
])
def test_every_refusal_maps_to_one_error_with_the_servers_message(fake, client, status, error):
    fake.put(careq())
    fake.fail(status, message="what the API server\nsaid")

    with pytest.raises(error) as raised:
        k8s.get_object(client, *CAREQ, "example-run-canary")

    assert raised.value.status == status
    assert str(raised.value) == (f"GET /apis/{FLEET}/v1beta1/clusterapprovalrequests/example-run-canary: "
                                 f"what the API server said (HTTP {status})")
    assert not isinstance(raised.value, k8s.TemporaryK8sError) or status in (429, 500, 503)


def test_an_unreachable_server_is_a_temporary_error_in_one_line(fake):
    client = k8s.client_from_kubeconfig(fake.kubeconfig(url="http://127.0.0.1:1"))

    with pytest.raises(k8s.TemporaryK8sError) as raised:
        k8s.get_object(client, *CAREQ, "x")

    assert str(raised.value).endswith("cannot reach the API server ([Errno 111] Connection refused)")


@pytest.mark.parametrize(("text", "context", "words"), [
    pytest.param("users: [{user: {token: s3cret}]\n  bad: [", "", "not valid YAML", id="broken-yaml"),
    pytest.param("- s3cret", "", "not a YAML mapping", id="not-a-mapping"),
    pytest.param("apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cret}}]\n", "prod",
                 "cannot be used", id="no-such-context"),
])
def test_an_unusable_kubeconfig_is_refused_without_quoting_it(text, context, words):
    with pytest.raises(k8s.PermanentK8sError) as raised:
        k8s.client_from_kubeconfig(text, context)

    assert words in str(raised.value) and "s3cret" not in str(raised.value)
