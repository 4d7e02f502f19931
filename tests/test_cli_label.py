"""`fleet label` and `fleet annotate` as kubectl's: key=value, key-,
--overwrite, -l, --all, through the same service (and audit) as `fleet patch`."""

import pytest

from rollouts import models as m
from rollouts.demo import DEMO_DIR
from rollouts.models.connections import MirroredObject

pytestmark = pytest.mark.django_db

MEMBERS = str(DEMO_DIR / "01-members.yaml")
MEMBER1 = "membercluster.cluster.kubernetes-fleet.io/member1"


@pytest.fixture
def members(fleet):
    assert fleet("apply", "-f", MEMBERS).code == 0


def labels(name: str) -> dict:
    return m.MemberCluster.objects.get(name=name).labels


def test_a_release_manager_adds_a_label_to_a_member(fleet, members):
    result = fleet("label", "memberclusters", "member1", "team=payments")
    assert (result.code, result.out, result.err) == (0, f"{MEMBER1} labeled\n", "")
    assert labels("member1")["team"] == "payments"


def test_changing_a_label_needs_overwrite_as_in_kubectl(fleet, members):
    before = labels("member1")["environment"]
    refused = fleet("label", "memberclusters", "member1", "environment=prod")
    assert refused.code == 1
    assert refused.err == f"error: 'environment' already has a value ({before}), and --overwrite is false\n"
    assert labels("member1")["environment"] == before
    allowed = fleet("label", "memberclusters", "member1", "environment=prod", "--overwrite")
    assert (allowed.code, allowed.out) == (0, f"{MEMBER1} labeled\n")
    assert labels("member1")["environment"] == "prod"


def test_setting_a_label_to_the_value_it_has_changes_nothing(fleet, members):
    events = m.Event.objects.count()
    value = labels("member1")["environment"]
    result = fleet("label", "membercluster/member1", f"environment={value}")
    assert (result.code, result.out) == (0, f"{MEMBER1} not labeled\n")
    assert m.Event.objects.count() == events


def test_key_dash_removes_a_label(fleet, members):
    result = fleet("label", "memberclusters", "member1", "environment-")
    assert (result.code, result.out) == (0, f"{MEMBER1} unlabeled\n")
    assert "environment" not in labels("member1")


def test_a_selector_labels_every_member_it_matches(fleet, members):
    canary = sorted(c.name for c in m.MemberCluster.objects.all() if c.labels.get("environment") == "canary")
    assert canary
    result = fleet("label", "memberclusters", "-l", "environment=canary", "wave=1")
    assert result.code == 0
    assert result.out.splitlines() == [f"membercluster.cluster.kubernetes-fleet.io/{n} labeled" for n in canary]
    for cluster in m.MemberCluster.objects.all():
        assert (cluster.labels.get("wave") == "1") == (cluster.name in canary)


def test_all_labels_every_member_and_several_names_work(fleet, members):
    assert fleet("label", "memberclusters", "--all", "team=a").code == 0
    assert {c.labels["team"] for c in m.MemberCluster.objects.all()} == {"a"}
    result = fleet("label", "memberclusters", "member1", "member2", "team=b", "--overwrite")
    assert result.code == 0 and len(result.out.splitlines()) == 2
    assert labels("member3")["team"] == "a"


def test_an_invalid_label_key_is_refused_with_its_field_path(fleet, members):
    result = fleet("label", "memberclusters", "member1", "-bad key=x")
    assert result.code == 1
    assert result.err.startswith('Error from server (Invalid): MemberCluster "member1" is invalid: '
                                 'metadata.labels: Invalid value: "-bad key": ')
    assert "-bad key" not in labels("member1")


def test_label_writes_the_same_audit_event_as_patch(fleet, members):
    fleet("--as", "alice", "label", "memberclusters", "member1", "team=payments")
    event = m.Event.objects.latest("id")
    assert (event.actor, event.action, event.object_kind, event.object_name) == (
        "alice", m.Event.Action.PATCHED, "MemberCluster", "member1",
    )


def test_a_label_change_needs_something_to_change_and_something_to_change_it_on(fleet, members):
    assert fleet("label", "memberclusters", "member1").err == "error: at least one label update is required\n"
    assert fleet("label", "memberclusters", "team=a").err == "error: resource(s) were provided, but no name was specified\n"
    both = fleet("label", "memberclusters", "member1", "team=a", "team-")
    assert both.code == 1 and "can not both modify and remove" in both.err


def test_a_stale_resource_version_is_a_conflict(fleet, members):
    result = fleet("label", "memberclusters", "member1", "team=a", "--resource-version", "999999")
    assert result.code == 1 and result.err.startswith("Error from server (Conflict)")


def test_annotate_adds_refuses_overwrite_and_removes(fleet, members):
    assert fleet("annotate", "memberclusters", "member1", "owner=team-a").out == f"{MEMBER1} annotated\n"
    refused = fleet("annotate", "memberclusters", "member1", "owner=team-b")
    assert refused.code == 1
    assert "'owner' already has a value (team-a)" in refused.err
    assert fleet("annotate", "memberclusters", "member1", "owner=team-b", "--overwrite").code == 0
    annotations = lambda: m.MemberCluster.objects.get(name="member1").annotations  # noqa: E731
    assert annotations()["owner"] == "team-b"
    assert fleet("annotate", "memberclusters", "member1", "owner-").code == 0
    assert "owner" not in annotations()
    assert m.Event.objects.filter(action=m.Event.Action.PATCHED, object_name="member1").count() == 3


def test_fleet_help_lists_label_and_annotate(fleet):
    result = fleet()
    assert "  label " in result.out and "  annotate " in result.out


def test_a_mirrored_member_is_not_labeled(fleet, members, hub):
    MirroredObject.objects.create(connection=hub, kind="MemberCluster", name="member1")
    before = labels("member1")
    result = fleet("label", "memberclusters", "member1", "team=payments")
    assert result.code == 1
    assert result.err == ('Error from server (Forbidden): MemberCluster "member1" is mirrored from hub prod-hub and '
                          "read-only here: change it on the hub\n")
    assert labels("member1") == before
