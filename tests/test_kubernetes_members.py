"""Real member clusters of Fleet UI's own hub: snapshots arrive by server-side
apply (field manager `fleetui`), are judged available the way KubeFleet's
member agent judges them, and what leaves the placement is deleted. The member
is tests/fake_kube.py on loopback, spoken to by the real `kubernetes` client.
"""

import pytest

from rollouts import clock, k8s
from rollouts import models as m
from rollouts.members import KUBECONFIG_ANNOTATION
from rollouts.members.kubernetes import (
    PLACEMENT_LABEL,
    Availability,
    KubernetesMember,
    judge,
    placement_label,
)
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import MemberCredential

PLACEMENT = "example-placement"
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test-namespace"}}


def config_map(value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "test-cm", "namespace": "test-namespace", "resourceVersion": "42",
                         "uid": "hub-uid", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "data": {"key": value}}


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "test-namespace"},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                           {"name": "web", "image": "nginx:1.27"}]}}}}


@pytest.fixture
def member(db, fake):
    credential_save(MemberCredential(name="member1-kubeconfig"), kubeconfig=fake.kubeconfig(), actor="ada")
    return m.MemberCluster.objects.create(name="member1", creation_timestamp=clock.now(),
                                          annotations={KUBECONFIG_ANNOTATION: "member1-kubeconfig"})


def apply(member, *manifests, snapshot="example-placement-0-snapshot"):
    return KubernetesMember().apply(member, placement=PLACEMENT, snapshot=snapshot, manifests=list(manifests))


def live_cm(fake):
    return fake.get("v1", "ConfigMap", "test-cm", "test-namespace")


def test_a_member_receives_its_snapshot_by_server_side_apply_as_fleetui(fake, member):
    assert apply(member, config_map("value1"), NAMESPACE) is None

    patches = fake.requests_to("PATCH")
    assert [p.path for p in patches] == ["/api/v1/namespaces/test-namespace",
                                         "/api/v1/namespaces/test-namespace/configmaps/test-cm"]
    for patch in patches:
        assert patch.content_type == "application/apply-patch+yaml"
        assert patch.query == {"fieldManager": "fleetui", "force": "true"}
    sent = patches[1].body["metadata"]
    assert sent["labels"] == {PLACEMENT_LABEL: PLACEMENT}
    assert "resourceVersion" not in sent and "uid" not in sent
    assert "kubectl.kubernetes.io/last-applied-configuration" not in sent["annotations"]
    assert live_cm(fake)["data"] == {"key": "value1"}
    assert set(m.MemberObject.objects.filter(cluster="member1").values_list("kind", flat=True)) == {
        "Namespace", "ConfigMap"}


def test_a_new_snapshot_updates_the_object_on_the_member(fake, member):
    apply(member, NAMESPACE, config_map("value1"))

    assert apply(member, NAMESPACE, config_map("value2"), snapshot="example-placement-1-snapshot") is None

    cm = live_cm(fake)
    assert cm["data"] == {"key": "value2"}
    assert cm["metadata"]["annotations"]["fleetui.io/resource-snapshot"] == "example-placement-1-snapshot"
    assert m.MemberObject.objects.get(kind="ConfigMap").resource_snapshot == "example-placement-1-snapshot"


def test_an_object_that_leaves_the_placement_is_deleted_from_the_member(fake, member):
    apply(member, NAMESPACE, config_map("value1"))
    uid = live_cm(fake)["metadata"]["uid"]

    apply(member, NAMESPACE)

    [delete] = fake.requests_to("DELETE")
    assert delete.path == "/api/v1/namespaces/test-namespace/configmaps/test-cm"
    assert delete.body["preconditions"] == {"uid": uid}
    assert live_cm(fake) is None and not m.MemberObject.objects.filter(kind="ConfigMap").exists()
    assert fake.get("v1", "Namespace", "test-namespace") is not None


def test_removing_the_placement_deletes_everything_it_put_there_namespaces_last(fake, member):
    apply(member, NAMESPACE, config_map("value1"))

    KubernetesMember().remove(member, placement=PLACEMENT)

    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests_to("DELETE")] == ["test-cm", "test-namespace"]
    assert not m.MemberObject.objects.filter(cluster="member1").exists()


def test_an_object_someone_else_took_over_is_left_on_the_member(fake, member):
    apply(member, NAMESPACE, config_map("value1"))
    cm = live_cm(fake)
    fake.put({**cm, "metadata": {**cm["metadata"], "labels": {"owner": "team-b"}}})

    KubernetesMember().remove(member, placement=PLACEMENT)

    assert live_cm(fake) is not None
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests_to("DELETE")] == ["test-namespace"]


def test_a_deployment_is_available_only_when_its_replicas_are(fake, member):
    connector = KubernetesMember()

    message = connector.apply(member, placement=PLACEMENT, snapshot="s-0", manifests=[NAMESPACE, DEPLOYMENT])

    assert "Deployment test-namespace/web" in message
    assert connector.status(member, placement=PLACEMENT, manifests=[NAMESPACE, DEPLOYMENT])[0] == "NotAvailableYet"
    live = fake.get("apps/v1", "Deployment", "web", "test-namespace")
    fake.put({**live, "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                                 "readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 2}})
    state, message = connector.status(member, placement=PLACEMENT, manifests=[NAMESPACE, DEPLOYMENT])
    assert (state, message) == ("NotAvailableYet", "Deployment test-namespace/web: 1/3 replicas available, 3 updated")
    fake.put({**live, "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                                 "readyReplicas": 3, "availableReplicas": 3}})  # the member's controller is done

    assert connector.status(member, placement=PLACEMENT, manifests=[NAMESPACE, DEPLOYMENT]) == ("Available", "")
    assert connector.apply(member, placement=PLACEMENT, snapshot="s-0", manifests=[NAMESPACE, DEPLOYMENT]) is None


def test_an_apply_the_member_refuses_is_a_failure_not_a_wait(fake, member):
    fake.fail(422, method="PATCH", path_contains="configmaps", message='ConfigMap "test-cm" is invalid: data: Too long')
    connector = KubernetesMember()

    message = connector.apply(member, placement=PLACEMENT, snapshot="s-0", manifests=[NAMESPACE, config_map("v")])

    assert message.startswith("applying ConfigMap test-namespace/test-cm to the member failed")
    assert "Too long" in message and "HTTP 422" in message
    state, why = connector.status(member, placement=PLACEMENT, manifests=[NAMESPACE, config_map("v")])
    assert (state, why) == ("Failed", "ConfigMap test-namespace/test-cm is not on the member")


def test_an_older_version_on_the_member_is_not_taken_for_the_snapshots(fake, member):
    apply(member, NAMESPACE, config_map("value1"))

    state, why = KubernetesMember().status(member, placement=PLACEMENT, manifests=[NAMESPACE, config_map("value2")])

    assert state == "Failed" and "not the snapshot's version" in why


def test_an_unreachable_member_is_a_temporary_error_to_retry(fake, member):
    fake.go_down()

    with pytest.raises(k8s.TemporaryK8sError):
        apply(member, NAMESPACE)
    with pytest.raises(k8s.TemporaryK8sError):
        KubernetesMember().status(member, placement=PLACEMENT, manifests=[NAMESPACE])


def test_a_member_naming_a_kubeconfig_fleet_ui_lacks_fails_plainly(db):
    member = m.MemberCluster.objects.create(name="member9", creation_timestamp=clock.now(),
                                            annotations={KUBECONFIG_ANNOTATION: "nope"})

    assert apply(member, NAMESPACE) == "member member9 names kubeconfig 'nope', which Fleet UI does not have"
    assert KubernetesMember().status(member, placement=PLACEMENT, manifests=[NAMESPACE])[0] == "Failed"


def test_a_long_placement_name_becomes_a_valid_label_value():
    value = placement_label("p" * 200)
    assert len(value) <= 63 and value.startswith("h-")
    assert placement_label(PLACEMENT) == PLACEMENT


# Availability, as a matrix of live objects ---------------------------------------------


def obj(kind: str, *, group: str = "apps", generation: int = 1, spec: dict | None = None,
        status: dict | None = None) -> dict:
    return {"apiVersion": f"{group}/v1" if group else "v1", "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "generation": generation},
            "spec": spec or {}, "status": status or {}}


A, N, F = Availability.AVAILABLE, Availability.NOT_YET, Availability.FAILED


@pytest.mark.parametrize(("live", "expected"), [
    pytest.param(obj("Deployment", spec={"replicas": 2}, status={
        "observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}), A, id="deployment-rolled-out"),
    pytest.param(obj("Deployment", generation=2, spec={"replicas": 2}, status={
        "observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}), N, id="deployment-new-spec-unseen"),
    pytest.param(obj("Deployment", spec={"replicas": 2}, status={
        "observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 2}), N, id="deployment-rolling"),
    pytest.param(obj("Deployment", spec={"replicas": 2}, status={
        "observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1}), N,
        id="deployment-surge-pod-unavailable"),
    pytest.param(obj("Deployment", status={"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}),
                 A, id="deployment-default-one-replica"),
    pytest.param(obj("StatefulSet", spec={"replicas": 3}, status={
        "observedGeneration": 1, "availableReplicas": 3, "currentRevision": "r2", "updateRevision": "r2"}), A,
        id="statefulset-rolled-out"),
    pytest.param(obj("StatefulSet", spec={"replicas": 3}, status={
        "observedGeneration": 1, "availableReplicas": 3, "currentRevision": "r1", "updateRevision": "r2"}), N,
        id="statefulset-revision-rolling"),
    pytest.param(obj("DaemonSet", status={"observedGeneration": 1, "desiredNumberScheduled": 4,
                                          "numberAvailable": 4, "updatedNumberScheduled": 4}), A,
                 id="daemonset-everywhere"),
    pytest.param(obj("DaemonSet", status={"observedGeneration": 1, "desiredNumberScheduled": 4,
                                          "numberAvailable": 4, "updatedNumberScheduled": 3}), N,
                 id="daemonset-one-node-old"),
    pytest.param(obj("Job", group="batch", status={"succeeded": 1}), A, id="job-succeeded"),
    pytest.param(obj("Job", group="batch", status={"ready": 1, "active": 1}), A, id="job-running-ready"),
    pytest.param(obj("Job", group="batch", status={"active": 1}), N, id="job-pending"),
    pytest.param(obj("Job", group="batch", status={"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}), F, id="job-failed"),
    pytest.param(obj("Service", group="", spec={"clusterIP": "10.0.0.1"}), A, id="service-cluster-ip"),
    pytest.param(obj("Service", group="", spec={"type": "LoadBalancer", "clusterIP": "10.0.0.1"}), N,
                 id="service-lb-without-address"),
    pytest.param(obj("Service", group="", spec={"type": "LoadBalancer"},
                     status={"loadBalancer": {"ingress": [{"ip": "20.1.2.3"}]}}), A, id="service-lb-with-address"),
    pytest.param(obj("CustomResourceDefinition", group="apiextensions.k8s.io", status={"conditions": [
        {"type": "Established", "status": "True"}]}), A, id="crd-established"),
    pytest.param(obj("ConfigMap", group=""), A, id="configmap-once-applied"),
    pytest.param(obj("Namespace", group=""), A, id="namespace-once-applied"),
    pytest.param({**obj("ConfigMap", group=""), "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
                 N, id="anything-being-deleted"),
])
def test_availability_is_judged_like_kubefleets_member_agent(live, expected):
    assert judge(live)[0] == expected


# ReportDiff --------------------------------------------------------------------------


def report_diff(member, *manifests, full=False):
    return KubernetesMember().report_diff(member, manifests=list(manifests), full=full)


def test_report_diff_changes_nothing_and_reads_values_back_from_a_dry_run_apply(fake, member):
    apply(member, NAMESPACE, config_map("value1"))
    before = len(fake.requests_to("PATCH"))

    [diffed] = report_diff(member, NAMESPACE, config_map("value2"))

    assert diffed == {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "test-namespace",
                      "name": "test-cm",
                      "observedDiffs": [{"path": "/data/key", "valueInMember": "value1", "valueInHub": "value2"}]}
    assert live_cm(fake)["data"] == {"key": "value1"}, "nothing changed on the member"
    dry_runs = fake.requests_to("PATCH")[before:]
    assert dry_runs and all(p.query.get("dryRun") == "All" for p in dry_runs)


def test_report_diff_of_a_missing_object_and_of_full_comparison(fake, member):
    assert report_diff(member, config_map("value1")) == [
        {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "test-namespace", "name": "test-cm",
         "observedDiffs": [{"path": "/", "valueInHub": "(the whole object)"}]}]
    apply(member, NAMESPACE, config_map("value1"))
    [diffed] = report_diff(member, config_map("value1"), full=True)  # our labels and annotations are extra
    assert {d["path"] for d in diffed["observedDiffs"]} >= {f"/metadata/labels/{PLACEMENT_LABEL.replace('/', '~1')}"}
    assert report_diff(member, config_map("value1")) == []


def test_report_diff_on_an_unreachable_member_is_temporary(fake, member):
    fake.stop()
    with pytest.raises(k8s.TemporaryK8sError):
        report_diff(member, config_map("value1"))
