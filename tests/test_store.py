"""The store's Kubernetes semantics: compare-and-set on resourceVersion,
generation bumped only by spec changes, all-or-nothing multi-document apply."""

import pytest

from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import AlreadyExists, Conflict, Invalid
from rollouts.api.kinds import KindRegistry
from rollouts.api.manifests import parse_documents
from rollouts.services.objects import manifests_apply

pytestmark = pytest.mark.django_db

STRATEGY = """\
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata:
  name: example-strategy
spec:
  stages:
    - name: staging
      labelSelector: {matchLabels: {environment: staging}}
"""

WORKLOAD = """\
apiVersion: v1
kind: Namespace
metadata: {name: test-namespace}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: test-cm, namespace: test-namespace}
data: {key: value1}
"""


def apply(text: str):
    return manifests_apply(docs=parse_documents(text), actor="tester")


@pytest.fixture
def csus():
    return KindRegistry().resolve("csus")


def test_the_second_of_two_writers_with_the_same_version_gets_a_conflict(csus):
    apply(STRATEGY)
    first, second = store.get(csus, "example-strategy"), store.get(csus, "example-strategy")
    first.labels = {"team": "a"}
    store.save(first)
    second.labels = {"team": "b"}
    with pytest.raises(Conflict):
        store.save(second)
    assert second.resource_version == first.resource_version - 1  # left as it was loaded
    assert store.get(csus, "example-strategy").labels == {"team": "a"}


def test_apply_with_a_stale_resource_version_is_refused(csus):
    apply(STRATEGY)
    stale = store.to_manifest(store.get(csus, "example-strategy"), csus)
    apply(STRATEGY.replace("staging}", "staging, order: '1'}"))
    stale["spec"]["stages"][0]["name"] = "other"
    with pytest.raises(Conflict):
        manifests_apply(docs=[stale], actor="tester")
    assert store.get(csus, "example-strategy").spec["stages"][0]["name"] == "staging"


def test_apply_with_the_current_resource_version_is_accepted(csus):
    apply(STRATEGY)
    current = store.to_manifest(store.get(csus, "example-strategy"), csus)
    current["spec"]["stages"][0]["name"] = "first"
    [result] = manifests_apply(docs=[current], actor="tester")
    assert result.outcome == "configured"


def test_a_label_change_bumps_the_resource_version_but_not_the_generation(csus):
    apply(STRATEGY)
    before = store.get(csus, "example-strategy")
    apply(STRATEGY.replace("name: example-strategy", "name: example-strategy\n  labels: {team: a}"))
    after = store.get(csus, "example-strategy")
    assert (after.generation, after.resource_version) == (
        before.generation,
        before.resource_version + 1,
    )


def test_a_spec_change_bumps_both(csus):
    apply(STRATEGY)
    before = store.get(csus, "example-strategy")
    apply(STRATEGY.replace("environment: staging", "environment: canary"))
    after = store.get(csus, "example-strategy")
    assert (after.generation, after.resource_version) == (2, before.resource_version + 1)


def test_an_unchanged_apply_writes_nothing(csus):
    apply(STRATEGY)
    before = store.get(csus, "example-strategy").resource_version
    [result] = apply(STRATEGY)
    assert result.outcome == "unchanged"
    assert store.get(csus, "example-strategy").resource_version == before
    assert m.Event.objects.count() == 1


def test_a_status_write_bumps_the_resource_version_only():
    apply(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterApprovalRequest\n"
        "metadata: {name: req}\nspec: {parentStageRollout: run, targetStage: canary}\n"
    )
    request = store.get(KindRegistry().resolve("careq"), "req")
    request.status = {"conditions": [{"type": "Approved", "status": "True"}]}
    before = request.resource_version
    store.save(request, spec_changed=False)
    assert (request.generation, request.resource_version) == (1, before + 1)


def test_a_multi_document_apply_with_one_bad_document_applies_none():
    bad = (
        WORKLOAD
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: test-namespace}\n"
    )
    with pytest.raises(Invalid):
        apply(bad)
    assert m.HubResource.objects.count() == 0
    assert m.Event.objects.count() == 0


def test_creating_a_taken_name_is_already_exists(csus):
    apply(STRATEGY)
    duplicate = store.new_object(csus, parse_documents(STRATEGY)[0], namespace="")
    with pytest.raises(AlreadyExists):
        store.create(duplicate, csus)


def test_a_configmap_has_no_generation_in_its_manifest():
    apply(WORKLOAD)
    cm_kind = KindRegistry().resolve("cm")
    manifest = store.to_manifest(store.get(cm_kind, "test-cm", "test-namespace"), cm_kind)
    assert "generation" not in manifest["metadata"]
    assert manifest["data"] == {"key": "value1"}
