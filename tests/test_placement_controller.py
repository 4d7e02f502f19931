"""The placement controllers: scheduling (PickAll, PickFixed, PickN with
required affinity), resource snapshots and the placement's status."""

from datetime import UTC, datetime

import pytest

from rollouts import clock
from rollouts import models as m
from rollouts.api.kinds import KindRegistry
from rollouts.api.manifests import parse_documents
from rollouts.controllers import labels as L
from rollouts.members.agent import placements_sync
from rollouts.services.objects import manifests_apply, object_delete

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(datetime(2026, 1, 1, tzinfo=UTC)):
        yield


def apply(text: str):
    return manifests_apply(docs=parse_documents(text), actor="test")


def member(name: str, **labels) -> str:
    label_text = ", ".join(f'{k}: "{v}"' for k, v in labels.items())
    return f"""---
apiVersion: cluster.kubernetes-fleet.io/v1beta1
kind: MemberCluster
metadata: {{name: {name}, labels: {{{label_text}}}}}
"""


def placement(policy: str, name: str = "web", extra: str = "") -> str:
    return f"""---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata: {{name: {name}}}
spec:
  resourceSelectors: [{{group: "", version: v1, kind: Namespace, name: app}}]
  policy: {policy}
  strategy: {{type: External}}
{extra}"""


WORKLOAD = """---
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app}
data: {key: one}
"""


def scheduled(name: str = "web") -> list[str]:
    return sorted(
        b.target_cluster for b in m.ClusterResourceBinding.objects.filter(owner__name=name) if b.spec["state"] != "Unscheduled"
    )


def unscheduled(name: str = "web") -> list[str]:
    return sorted(b.target_cluster for b in m.ClusterResourceBinding.objects.filter(owner__name=name) if b.spec["state"] == "Unscheduled")


def crp_condition(type_: str, name: str = "web") -> tuple:
    crp = m.ClusterResourcePlacement.objects.get(name=name)
    cond = crp.condition(f"ClusterResourcePlacement{type_}")
    return (cond["status"], cond["reason"]) if cond else None


FLEET = member("a", env="prod") + member("b", env="prod") + member("c", env="dev")


def test_pick_all_schedules_every_member_and_deploys_nothing():
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}"))
    assert scheduled() == ["a", "b", "c"]
    binding = m.ClusterResourceBinding.objects.filter(owner__name="web").first()
    assert binding.spec["state"] == "Scheduled" and binding.labels == {L.PARENT_CRP: "web"}
    assert binding.spec["schedulingPolicySnapshotName"] == "web-0"
    assert crp_condition("Scheduled") == ("True", "SchedulingPolicyFulfilled")
    assert crp_condition("RolloutStarted") == ("Unknown", "RolloutControlledByExternalController")
    assert m.MemberObject.objects.count() == 0


def test_pick_all_with_required_affinity_schedules_only_matching_members():
    affinity = ("{placementType: PickAll, affinity: {clusterAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
                "{clusterSelectorTerms: [{labelSelector: {matchLabels: {env: prod}}}]}}}}")
    apply(FLEET + WORKLOAD + placement(affinity))
    assert scheduled() == ["a", "b"]


def test_pick_fixed_schedules_the_named_members_and_says_when_one_is_missing():
    apply(FLEET + WORKLOAD + placement("{placementType: PickFixed, clusterNames: [c, a]}"))
    assert scheduled() == ["a", "c"]
    apply(placement("{placementType: PickFixed, clusterNames: [c, a, z]}"))
    assert crp_condition("Scheduled") == ("False", "SchedulingPolicyUnfulfilled")


def test_pick_n_picks_n_and_records_the_count_on_the_policy_snapshot():
    apply(FLEET + WORKLOAD + placement("{placementType: PickN, numberOfClusters: 2}"))
    assert scheduled() == ["a", "b"]
    snapshot = m.ClusterSchedulingPolicySnapshot.objects.get(name="web-0")
    assert snapshot.annotations[L.NUMBER_OF_CLUSTERS] == "2"
    assert snapshot.labels == {L.IS_LATEST: "true", L.PARENT_CRP: "web", L.POLICY_INDEX: "0"}
    assert snapshot.condition("Scheduled")["status"] == "True"


def test_a_pick_n_count_change_updates_the_snapshot_in_place_and_unschedules_the_extra_cluster():
    apply(FLEET + WORKLOAD + placement("{placementType: PickN, numberOfClusters: 3}"))
    apply(placement("{placementType: PickN, numberOfClusters: 2}"))
    assert list(m.ClusterSchedulingPolicySnapshot.objects.values_list("name", flat=True)) == ["web-0"]
    assert m.ClusterSchedulingPolicySnapshot.objects.get().annotations[L.NUMBER_OF_CLUSTERS] == "2"
    assert scheduled() == ["a", "b"] and unscheduled() == ["c"]


def test_pick_n_without_enough_members_is_unfulfilled():
    apply(FLEET + WORKLOAD + placement("{placementType: PickN, numberOfClusters: 5}"))
    assert scheduled() == ["a", "b", "c"]
    assert crp_condition("Scheduled") == ("False", "SchedulingPolicyUnfulfilled")


def test_a_policy_change_makes_the_next_policy_snapshot():
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}"))
    apply(placement("{placementType: PickAll, affinity: {clusterAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
                    "{clusterSelectorTerms: [{labelSelector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}}]}}}}"))
    snapshots = {s.name: s.labels[L.IS_LATEST] for s in m.ClusterSchedulingPolicySnapshot.objects.all()}
    assert snapshots == {"web-0": "false", "web-1": "true"}
    assert scheduled() == ["a", "b"] and unscheduled() == ["c"]
    assert m.ClusterResourceBinding.objects.get(target_cluster="a").spec["schedulingPolicySnapshotName"] == "web-1"


def test_membership_and_label_changes_reschedule():
    affinity = ("{placementType: PickAll, affinity: {clusterAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
                "{clusterSelectorTerms: [{labelSelector: {matchLabels: {env: prod}}}]}}}}")
    apply(FLEET + WORKLOAD + placement(affinity))
    apply(member("c", env="prod") + member("d", env="prod"))
    assert scheduled() == ["a", "b", "c", "d"]
    apply(member("a", env="dev"))
    assert scheduled() == ["b", "c", "d"] and unscheduled() == ["a"]
    object_delete(kind=KindRegistry().resolve("cluster"), name="b", namespace="", actor="test")
    assert scheduled() == ["c", "d"] and unscheduled() == ["a", "b"]


def test_a_member_change_reschedules_every_placement_it_concerns_whatever_its_policy():
    """A member write reconciles only the placements that may choose it or
    had chosen it (issue 19: not the hub's every placement); each kind of
    policy still sees it come, move and go."""
    team = ("{{placementType: PickAll, affinity: {{clusterAffinity: {{requiredDuringSchedulingIgnoredDuringExecution: "
            "{{clusterSelectorTerms: [{{labelSelector: {{matchLabels: {{team: {}}}}}}}]}}}}}}}}")
    apply(FLEET + WORKLOAD + placement(team.format("red"), "red") + placement(team.format("blue"), "blue")
          + placement("{placementType: PickFixed, clusterNames: [a, z]}", "fixed")
          + placement("{placementType: PickN, numberOfClusters: 4}", "some"))
    assert crp_condition("Scheduled", "fixed") == ("False", "SchedulingPolicyUnfulfilled")
    apply(member("z", team="red"))
    assert scheduled("red") == ["z"] and scheduled("blue") == []
    assert scheduled("fixed") == ["a", "z"] and crp_condition("Scheduled", "fixed") == ("True", "SchedulingPolicyFulfilled")
    assert scheduled("some") == ["a", "b", "c", "z"]
    apply(member("z", team="blue"))  # leaves red (which had chosen it), joins blue
    assert (scheduled("red"), unscheduled("red"), scheduled("blue")) == ([], ["z"], ["z"])
    object_delete(kind=KindRegistry().resolve("cluster"), name="z", namespace="", actor="test")
    assert scheduled("blue") == [] and unscheduled("blue") == ["z"]
    assert scheduled("fixed") == ["a"] and crp_condition("Scheduled", "fixed") == ("False", "SchedulingPolicyUnfulfilled")
    assert scheduled("some") == ["a", "b", "c"] and crp_condition("Scheduled", "some") == ("False", "SchedulingPolicyUnfulfilled")


def test_every_change_of_the_selection_makes_the_next_resource_snapshot_and_identical_content_none():
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}"))
    apply(WORKLOAD)  # unchanged
    assert list(m.ClusterResourceSnapshot.objects.values_list("name", flat=True)) == ["web-0-snapshot"]
    apply(WORKLOAD.replace("key: one", "key: two"))
    apply(WORKLOAD.replace("key: one", "key: two") + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: app}\n")
    snapshots = {s.index: s for s in m.ClusterResourceSnapshot.objects.all()}
    assert sorted(snapshots) == [0, 1, 2]
    assert [snapshots[i].labels[L.IS_LATEST] for i in range(3)] == ["false", "false", "true"]
    latest = snapshots[2]
    assert latest.annotations[L.NUMBER_OF_RESOURCE_SNAPSHOTS] == "1"
    assert latest.annotations[L.NUMBER_OF_ENVELOPED_OBJECTS] == "0"
    assert len(latest.annotations[L.RESOURCE_HASH]) == 64
    kinds = [(o["kind"], o["metadata"]["name"]) for o in latest.spec["selectedResources"]]
    assert kinds == [("Namespace", "app"), ("ConfigMap", "settings"), ("Secret", "s")]
    for obj in latest.spec["selectedResources"]:
        assert not {"uid", "resourceVersion", "creationTimestamp"} & set(obj["metadata"])
    assert latest.owner_references[0]["name"] == "web" and latest.owner_references[0]["controller"] is True


def test_a_label_selector_selects_cluster_scoped_resources_by_label():
    apply(FLEET + """---
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b, labels: {team: b}}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata: {name: teams}
spec:
  resourceSelectors: [{group: "", version: v1, kind: Namespace, labelSelector: {matchLabels: {team: a}}}]
  strategy: {type: External}
""")
    snapshot = m.ClusterResourceSnapshot.objects.get(owner__name="teams")
    assert [o["metadata"]["name"] for o in snapshot.spec["selectedResources"]] == ["team-a"]


def test_revision_history_limit_prunes_old_snapshots_but_keeps_one_an_unfinished_run_uses():
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}", extra="  revisionHistoryLimit: 2\n") + """---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata: {name: all}
spec:
  stages: [{name: all, labelSelector: {}}]
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata: {name: pinned}
spec: {placementName: web, resourceSnapshotIndex: "0", stagedRolloutStrategyName: all, state: Initialize}
""")
    for value in ("two", "three", "four"):
        apply(WORKLOAD.replace("key: one", f"key: {value}"))
    assert sorted(m.ClusterResourceSnapshot.objects.values_list("index", flat=True)) == [0, 2, 3]


def test_deleting_a_placement_removes_its_snapshots_and_bindings():
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}"))
    object_delete(kind=KindRegistry().resolve("crp"), name="web", namespace="", actor="test")
    assert m.ClusterResourceSnapshot.objects.count() == 0
    assert m.ClusterSchedulingPolicySnapshot.objects.count() == 0
    assert m.ClusterResourceBinding.objects.count() == 0


def test_a_rolling_update_placement_deploys_at_once():
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}").replace("strategy: {type: External}", "strategy: {}"))
    from rollouts.members.agent import members_sync

    members_sync()
    assert sorted(m.MemberObject.objects.filter(kind="ConfigMap").values_list("cluster", flat=True)) == ["a", "b", "c"]
    assert crp_condition("Available") == ("True", "ResourceAvailable")


def test_a_placement_sync_applies_the_named_placements_bindings_and_no_others():
    rolling = placement("{placementType: PickAll}").replace("strategy: {type: External}", "strategy: {}")
    apply(FLEET + WORKLOAD + rolling + rolling.replace("name: web", "name: api"))
    assert placements_sync({("ClusterResourcePlacement", "", "web")}) is None  # nothing left to wait for
    assert crp_condition("Available") == ("True", "ResourceAvailable")  # refreshed in the same transaction
    assert m.ClusterResourceBinding.objects.filter(owner__name="api", apply_pending=True).count() == 3


def test_a_placement_sync_of_an_apply_not_due_yet_says_when_to_look_again(settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 10
    apply(FLEET + WORKLOAD + placement("{placementType: PickAll}").replace("strategy: {type: External}", "strategy: {}"))
    assert placements_sync({("ClusterResourcePlacement", "", "web")}) == 10.0
