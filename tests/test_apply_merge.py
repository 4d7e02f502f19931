"""`fleet apply` merges as kubectl's client-side apply does: the
last-applied annotation and a three-way JSON merge (issue 20).

The pure merge is a matrix (no database); the CLI tests apply real files.
"""

import json
import textwrap

import pytest
import yaml

from rollouts import models as m
from rollouts.api.last_applied import (
    LAST_APPLIED,
    applied_configuration,
    last_applied_of,
    three_way_merge,
    three_way_patch,
)

# ---------------------------------------------------------------- the merge, pure


def stored(spec: dict, applied: dict | None, labels: dict | None = None) -> dict:
    """A stored manifest whose last apply was `applied` (a spec), or never."""
    meta = {"name": "x", "resourceVersion": "7", "uid": "u", "labels": labels or {}}
    if applied is not None:
        meta["annotations"] = {LAST_APPLIED: applied_configuration(manifest(applied))}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **spec, "status": {"s": 1}}


def manifest(body: dict, labels: dict | None = None) -> dict:
    meta = {"name": "x"} | ({"labels": labels} if labels else {})
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **body}


@pytest.mark.parametrize(
    ("original", "modified", "current", "patch"),
    [
        pytest.param({"a": 1}, {"a": 1}, {"a": 1}, {}, id="nothing-changed"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2}, {"b": None}, id="a-dropped-field-is-deleted"),
        pytest.param({"a": 1}, {"a": 1}, {"a": 1, "c": 3}, {}, id="a-field-someone-else-set-is-kept"),
        pytest.param({"a": 1}, {"a": 2}, {"a": 1}, {"a": 2}, id="a-changed-field-is-set"),
        pytest.param(None, {"a": 1}, {"a": 1, "c": 3}, {}, id="never-applied-deletes-nothing"),
        pytest.param({"m": {"x": 1, "y": 2}}, {"m": {"x": 1}}, {"m": {"x": 1, "y": 2, "z": 3}},
                     {"m": {"y": None}}, id="maps-merge-field-by-field"),
        pytest.param({"l": [1, 2]}, {"l": [1]}, {"l": [1, 2, 3]}, {"l": [1]}, id="lists-are-replaced-whole"),
        pytest.param({"a": 1}, {"a": None}, {"a": 1}, {"a": None}, id="an-explicit-null-deletes"),
    ],
)
def test_the_three_way_patch_is_kubectls(original, modified, current, patch):
    assert three_way_patch(original, modified, current) == patch


def test_the_annotation_holds_the_applied_manifest_without_server_fields():
    applied = manifest({"data": {"k": "v"}}) | {"status": {"ignored": True}}
    applied["metadata"] |= {"resourceVersion": "3", "uid": "u", "annotations": {LAST_APPLIED: "old"}}
    text = applied_configuration(applied)
    assert text.endswith("}\n")
    assert json.loads(text) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                                "data": {"k": "v"}}


def test_a_broken_annotation_counts_as_never_applied():
    current = stored({"data": {}}, None)
    current["metadata"]["annotations"] = {LAST_APPLIED: "{not json"}
    assert last_applied_of(current) is None


def test_labels_merge_three_ways_and_status_is_never_touched():
    current = stored({"data": {"a": "1"}}, {"data": {"a": "1"}}, labels={"team": "a", "tier": "web"})
    current["metadata"]["annotations"][LAST_APPLIED] = applied_configuration(
        manifest({"data": {"a": "1"}}, labels={"tier": "web"})
    )
    merged = three_way_merge(manifest({"data": {"a": "1"}}, labels={"env": "prod"}), current)
    assert merged["metadata"]["labels"] == {"team": "a", "env": "prod"}  # tier dropped, team kept
    assert merged["status"] == {"s": 1}
    assert last_applied_of(merged)["metadata"]["labels"] == {"env": "prod"}


# ---------------------------------------------------------------- `fleet apply`

PLACEMENT = """
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata:
  name: web
  labels: {team: payments, tier: frontend}
spec:
  resourceSelectors:
    - {group: "", kind: Namespace, name: web, version: v1}
  policy: {placementType: PickN, numberOfClusters: 2}
  revisionHistoryLimit: 5
"""


@pytest.fixture
def apply_text(fleet, manifest_file):
    def run(text: str) -> str:
        result = fleet("apply", "-f", manifest_file(textwrap.dedent(text)))
        assert result.code == 0, result.err
        return result.out

    return run


@pytest.mark.django_db
def test_applying_twice_is_unchanged(apply_text):
    path = "clusterresourceplacement.placement.kubernetes-fleet.io/web"
    assert apply_text(PLACEMENT) == f"{path} created\n"
    assert apply_text(PLACEMENT) == f"{path} unchanged\n"


@pytest.mark.django_db
def test_an_edited_file_removes_what_it_dropped_and_keeps_what_others_set(fleet, apply_text):
    apply_text(PLACEMENT)
    assert fleet("label", "crp", "web", "owner=ops").code == 0
    patched = fleet("patch", "crp", "web", "--type", "merge", "-p", '{"spec": {"strategy": {"type": "External"}}}')
    assert patched.code == 0, patched.err
    edited = PLACEMENT.replace("  revisionHistoryLimit: 5\n", "").replace(", tier: frontend", "")
    edited = edited.replace("numberOfClusters: 2", "numberOfClusters: 3")
    out = apply_text(edited)
    assert out == "clusterresourceplacement.placement.kubernetes-fleet.io/web configured\n"
    crp = m.ClusterResourcePlacement.objects.get(name="web")
    assert "revisionHistoryLimit" not in crp.spec  # dropped from the file: deleted
    assert crp.spec["policy"]["numberOfClusters"] == 3
    assert crp.spec["strategy"] == {"type": "External"}  # set by `fleet patch`: kept
    assert {k: v for k, v in crp.labels.items()} == {"team": "payments", "owner": "ops"}
    assert json.loads(crp.annotations[LAST_APPLIED])["spec"].get("revisionHistoryLimit") is None


@pytest.mark.django_db
def test_get_yaml_shows_the_annotation_and_applying_it_back_is_unchanged(fleet, apply_text):
    apply_text(PLACEMENT)
    out = fleet("get", "crp", "web", "-o", "yaml").out
    applied = json.loads(yaml.safe_load(out)["metadata"]["annotations"][LAST_APPLIED])
    assert applied["metadata"] == {"name": "web", "labels": {"team": "payments", "tier": "frontend"}}
    assert fleet("apply", "-f", "-", stdin=out).out.endswith(" unchanged\n")


@pytest.mark.django_db
def test_a_last_applied_annotation_the_client_sent_is_kept_text_for_text(apply_text):
    """kubectl writes the annotation itself and compares its next one with the
    stored text: rewriting it (here: the empty annotations kubectl keeps)
    would make every second `kubectl apply` say configured."""
    sent = '{"apiVersion":"v1","kind":"Namespace","metadata":{"annotations":{},"name":"shop"}}\n'
    apply_text(f"""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: {json.dumps(sent)}
        """)
    stored = m.HubResource.objects.get(kind="Namespace", name="shop")
    assert stored.annotations[LAST_APPLIED] == sent
