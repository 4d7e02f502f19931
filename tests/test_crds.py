"""The vendored CRDs as the source of truth: the loader's API, every CEL rule
implemented in Python, and what validation now takes from the CRDs that the
hand-typed schemas missed (issue 20).

No database: the loader and validation are pure.
"""

import copy
import subprocess
import sys

import pytest

from rollouts.api import crds
from rollouts.api.errors import Invalid, UnknownKind
from rollouts.api.kinds import FLEET_KINDS, KindRegistry
from rollouts.api.validation import cel, openapi, validate

from .real_services import ROOT, process_env

KINDS = {kind.kind: kind for kind in FLEET_KINDS}
PLACEMENT_GROUP = "placement.kubernetes-fleet.io"


def causes_of(manifest: dict, old: dict | None = None) -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as caught:
        validate(KINDS[manifest["kind"]], manifest, old)
    return caught.value.causes


def placement(*selectors, version: str = "v1beta1", **spec) -> dict:
    selectors = selectors or ({"group": "", "version": "v1", "kind": "Namespace", "name": "ns"},)
    return {
        "apiVersion": f"{PLACEMENT_GROUP}/{version}",
        "kind": "ClusterResourcePlacement",
        "metadata": {"name": "web"},
        "spec": {"resourceSelectors": list(selectors), **spec},
    }


def namespace(name: str = "ns", **fields) -> dict:
    return {"group": "", "version": "v1", "kind": "Namespace", "name": name, **fields}


# ---------------------------------------------------------------- the loader


def test_every_fleet_kind_has_a_vendored_crd_with_its_short_names():
    for kind in FLEET_KINDS:
        crd = crds.crd_for(kind.group, kind.kind)
        assert crd is not None, kind.kind
        assert crd.short_names == kind.short_names
        assert crd.namespaced == kind.namespaced
        assert "v1beta1" in crd.served_versions


def test_the_loader_exposes_schema_columns_categories_and_rules_per_version():
    crd = crds.crd_for(PLACEMENT_GROUP, "ClusterStagedUpdateRun")
    assert crd.scope == "Cluster" and crd.categories == ("fleet", "fleet-placement")
    assert crd.storage_version == "v1beta1"
    schema = crds.schema_for(PLACEMENT_GROUP, "ClusterStagedUpdateRun", "v1")
    assert schema["properties"]["spec"]["required"] == ["placementName", "stagedRolloutStrategyName"]
    columns = crds.printer_columns(PLACEMENT_GROUP, "ClusterStagedUpdateRun", "v1beta1")
    assert [c.name for c in columns][:2] == ["Placement", "Resource-Snapshot-Index"]
    assert [c.name for c in columns if c.priority] == ["Strategy"]
    rules = crds.cel_rules(PLACEMENT_GROUP, "ClusterStagedUpdateRun", "v1beta1")
    immutable = next(r for r in rules if r.message == "placementName is immutable")
    assert immutable.shown_path == "spec.placementName" and immutable.is_transition


def test_a_kind_without_a_crd_has_no_schema():
    assert crds.crd_for("", "ConfigMap") is None
    assert crds.schema_for("", "ConfigMap", "v1") is None
    assert crds.printer_columns("", "ConfigMap") == ()


def test_an_unserved_or_unknown_version_falls_back_to_the_storage_version():
    crd = crds.crd_for(PLACEMENT_GROUP, "ClusterResourcePlacement")
    assert crd.version("v9").name == crd.storage_version == "v1beta1"


# ---------------------------------------------------------------- the CEL registry


def test_every_cel_rule_of_the_vendored_crds_has_a_python_counterpart():
    rules = [rule for crd in crds.all_crds() for v in crd.versions.values() for rule in v.cel_rules]
    assert len(rules) > 100
    missing = {rule.message for rule in cel.missing(rules)}
    assert missing == set(), f"implement these CEL rules in rollouts/api/validation/cel.py: {missing}"


def test_the_completeness_check_notices_a_rule_it_does_not_know():
    new_rule = crds.CelRule(("spec",), "size(self.foo) < 3", "foo may have at most 2 items")
    assert cel.missing([new_rule]) == [new_rule]


# ---------------------------------------------------------------- drift the CRDs fixed


def test_namespace_with_resource_selectors_is_accepted():
    validate(
        KINDS["ClusterResourcePlacement"],
        placement(
            namespace(selectionScope="NamespaceWithResourceSelectors"),
            {"group": "apps", "version": "v1", "kind": "Deployment", "name": "web"},
        ),
    )


@pytest.mark.parametrize(
    ("manifest", "path", "message"),
    [
        pytest.param(
            placement(
                namespace("a", selectionScope="NamespaceWithResourceSelectors"),
                namespace("b", selectionScope="NamespaceWithResourceSelectors"),
            ),
            "spec",
            "only one namespace selector with NamespaceWithResourceSelectors mode is allowed",
            id="two-scoped-namespaces",
        ),
        pytest.param(
            placement(
                {"group": "", "version": "v1", "kind": "Namespace", "selectionScope": "NamespaceWithResourceSelectors",
                 "labelSelector": {"matchLabels": {"team": "a"}}},
            ),
            "spec",
            "namespace selector with NamespaceWithResourceSelectors mode must select by name (not by label)",
            id="a-scoped-namespace-by-label",
        ),
        pytest.param(
            placement(namespace("a", selectionScope="NamespaceWithResourceSelectors"), namespace("b")),
            "spec",
            "when using NamespaceWithResourceSelectors mode, only one namespace selector is allowed",
            id="a-scoped-namespace-among-others",
        ),
        pytest.param(
            placement(policy={"placementType": "PickN", "numberOfClusters": 1,
                              "tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
            "spec.policy.tolerations",
            "value must be empty when operator is Exists",
            id="an-exists-toleration-with-a-value",
        ),
        pytest.param(
            placement(policy={"tolerations": [{"operator": "Equal", "value": "v"}]}),
            "spec.policy.tolerations",
            "operator must be Exists when key is empty",
            id="a-toleration-without-a-key",
        ),
        pytest.param(
            placement(strategy={"reportBackStrategy": {"type": "Mirror"}}),
            "spec.strategy.reportBackStrategy",
            "when reportBackStrategy.type is 'Mirror', a destination must be specified",
            id="a-mirror-report-back-without-destination",
        ),
    ],
)
def test_the_six_cel_rules_the_hand_schemas_missed_are_enforced(manifest, path, message):
    causes = causes_of(manifest)
    assert any(p == path and message in m and m.startswith("Invalid value: ") for p, m in causes), causes


def test_the_delete_strategy_is_checked():
    causes = causes_of(placement(strategy={"deleteStrategy": {"propagationPolicy": "Orphan"}}))
    assert causes == [
        (
            "spec.strategy.deleteStrategy.propagationPolicy",
            'Unsupported value: "Orphan": supported values: "Abandon", "Delete"',
        )
    ]


def test_an_unknown_field_is_refused_as_kubectl_strict_validation_does():
    causes = causes_of(placement(strategy={"deleteStrategy": {"propagation": "Delete"}}))
    assert causes == [
        ("spec.strategy.deleteStrategy.propagation", 'unknown field "spec.strategy.deleteStrategy.propagation"')
    ]


def test_an_unknown_top_level_field_is_refused():
    manifest = placement()
    manifest["sepc"] = {}
    assert causes_of(manifest) == [("sepc", 'unknown field "sepc"')]


def test_a_v1_manifest_is_checked_against_the_v1_schema():
    # reportBackStrategy exists only in v1beta1 at the vendored commit.
    manifest = placement(version="v1", strategy={"reportBackStrategy": {"type": "Disabled"}})
    assert causes_of(manifest) == [
        ("spec.strategy.reportBackStrategy", 'unknown field "spec.strategy.reportBackStrategy"')
    ]
    validate(KINDS["ClusterResourcePlacement"], placement(version="v1"))


def test_defaults_count_for_the_rules_but_are_not_stored():
    # statusReportingScope defaults to ClusterScopeOnly: setting another value later changes it.
    old = placement()
    new = placement(namespace(), statusReportingScope="NamespaceAccessible")
    stored = copy.deepcopy(new)
    assert causes_of(new, old) == [
        ("spec", 'Invalid value: "object": statusReportingScope is immutable')
    ]
    assert new == stored


def test_an_int_or_string_field_takes_both_and_nothing_else():
    strategy = {
        "apiVersion": f"{PLACEMENT_GROUP}/v1beta1",
        "kind": "ClusterStagedUpdateStrategy",
        "metadata": {"name": "s"},
        "spec": {"stages": [{"name": "a", "maxConcurrency": 2}, {"name": "b", "maxConcurrency": "50%"}]},
    }
    validate(KINDS["ClusterStagedUpdateStrategy"], strategy)
    strategy["spec"]["stages"][0]["maxConcurrency"] = [1]
    assert causes_of(strategy) == [
        (
            "spec.stages[0].maxConcurrency",
            'Invalid value: "array": spec.stages[0].maxConcurrency in body must be of type integer or string',
        )
    ]


def test_a_list_map_and_a_set_refuse_duplicates():
    # No fleet spec has one at the vendored commit (statuses do): a schema of our own.
    schema = {
        "type": "object",
        "properties": {
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": {"type": "object", "properties": {"type": {"type": "string"}}},
            },
            "names": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        },
    }
    causes = []
    instance = {"conditions": [{"type": "A"}, {"type": "A"}], "names": ["x", "x"]}
    openapi.check(schema, instance, causes)
    assert causes == [
        ("conditions[1]", 'Duplicate value: {"type": "A"}'),
        ("names", "Duplicate value: the list holds an item twice"),
    ]


def test_a_null_field_counts_as_absent():
    validate(KINDS["ClusterResourcePlacement"], placement(policy=None, strategy=None))


def test_an_omitted_strategy_type_after_external_is_reported_once():
    old = placement(strategy={"type": "External"})
    causes = causes_of(placement(strategy={"applyStrategy": {"type": "ClientSideApply"}}), old)
    assert causes == [
        ("spec.strategy.type", 'Invalid value: "string": cannot change rollout strategy type from \'External\' to other types')
    ]


def test_a_cel_rule_skips_a_part_that_failed_the_schema():
    strategy = {
        "apiVersion": f"{PLACEMENT_GROUP}/v1beta1",
        "kind": "ClusterStagedUpdateStrategy",
        "metadata": {"name": "s"},
        "spec": {"stages": [{"name": "a", "afterStageTasks": [{"type": "TimedWait", "waitTime": 5}]}]},
    }
    assert causes_of(strategy) == [
        (
            "spec.stages[0].afterStageTasks[0].waitTime",
            'Invalid value: "integer": spec.stages[0].afterStageTasks[0].waitTime in body must be of type string',
        )
    ]


@pytest.mark.django_db
def test_a_manifest_may_name_only_a_version_the_crd_serves():
    registry = KindRegistry()
    assert registry.for_manifest(f"{PLACEMENT_GROUP}/v1", "ClusterResourceSnapshot").kind == "ClusterResourceSnapshot"
    assert registry.for_manifest(f"{PLACEMENT_GROUP}/v1beta1", "ResourceSnapshot").kind == "ResourceSnapshot"
    with pytest.raises(UnknownKind, match='no matches for kind "ResourceSnapshot" in version'):
        registry.for_manifest(f"{PLACEMENT_GROUP}/v1", "ResourceSnapshot")


STARTUP_PROBE = """
import sys
import django
django.setup()
import rollouts.cli.commands, rollouts.services.objects, rollouts.api.validation
from rollouts.api import crds
print(crds._by_group_kind.cache_info().currsize, "jsonschema" in sys.modules)
"""


@pytest.mark.slow
def test_starting_a_command_neither_reads_the_crds_nor_imports_jsonschema():
    done = subprocess.run([sys.executable, "-c", STARTUP_PROBE], env=process_env(), capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "False"]


def test_a_selector_inside_a_snapshotted_resource_is_not_ours_to_check():
    snapshot = {
        "apiVersion": f"{PLACEMENT_GROUP}/v1beta1",
        "kind": "ClusterResourceSnapshot",
        "metadata": {"name": "web-0-snapshot"},
        "spec": {"selectedResources": [
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
             "spec": {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}}},
        ]},
    }
    validate(KINDS["ClusterResourceSnapshot"], snapshot)
