"""Fuzz tests: reading and validating manifests is total.

Whatever a person pipes into `apply`, parse_documents() returns a list of
dicts or raises BadRequest, and validate()/validate_status() return None or
raise Invalid whose message is one line. Any other exception would be a 500
in the web UI and a traceback in the CLI.
"""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollouts.api.errors import BadRequest, Invalid
from rollouts.api.kinds import CORE_KINDS, FLEET_KINDS
from rollouts.api.manifests import parse_documents
from rollouts.api.validation import validate, validate_status

# The number of examples comes from the profile (tests/conftest.py): 150 in CI.
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = {kind.kind: kind for kind in FLEET_KINDS + CORE_KINDS}
FUZZED_KINDS = [*FLEET_KINDS, KINDS["Namespace"], KINDS["ConfigMap"], KINDS["Secret"]]
KIND_IDS = [kind.kind for kind in FUZZED_KINDS]


def assert_parses_or_bad_request(text) -> None:
    try:
        docs = parse_documents(text, "fuzz.yaml")
    except BadRequest as error:
        assert len(str(error).splitlines()) == 1
        return
    assert isinstance(docs, list)
    assert all(isinstance(doc, dict) for doc in docs)


def assert_valid_or_invalid(check, *args) -> None:
    try:
        check(*args)
    except Invalid as error:
        assert len(str(error).splitlines()) == 1, str(error)
        assert error.causes


# ---------------------------------------------------------------- parsing

# Pieces of YAML syntax, so the fuzzer reaches the parser's corners (anchors,
# aliases, tags, flow collections, block scalars, directives, documents).
# fmt: off
YAML_TOKENS = [
    "apiVersion", "kind", "metadata", "name", "spec", "stages", "items", "List", "v1",
    ":", ": ", " ", "  ", "\n", "\n  ", "\n- ", "- ", "-", "[", "]", "{", "}", ",", "'", '"', "\\",
    "&a ", "*a", "&b ", "*b", "<<: *a", "!!str ", "!!binary ", "!!set ", "!!omap ", "!!python/tuple ",
    "!!int ", "!!float ", "!!bool ", "!!timestamp ", "_",
    "!custom ", "---", "\n---\n", "...", "# c", "|", ">", "? ", "~", "null", "true", "no", "0x1F",
    "1e400", ".nan", "-.inf", "2025-01-02T03:04:05Z", "1:30", "\t", "%YAML 1.1\n", "%TAG ! x\n", "@", "`",
    "\u00e9", "\ud7ff", "\x00", "\x85", "\u2028",
]
# fmt: on
yaml_fragments = st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=3), max_size=80).map(
    "".join
)

SEED_PLACEMENT = """apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata:
  name: example-placement
spec:
  resourceSelectors:
    - group: ""
      kind: Namespace
      name: test-namespace
      version: v1
  policy:
    placementType: PickAll
  strategy:
    type: External
"""


@FUZZ
@given(st.text())
def test_parsing_any_text_gives_dicts_or_bad_request(text):
    assert_parses_or_bad_request(text)


@FUZZ
@given(st.binary())
def test_parsing_any_bytes_gives_dicts_or_bad_request(data):
    assert_parses_or_bad_request(data)


@FUZZ
@given(yaml_fragments)
def test_parsing_yaml_like_fragments_gives_dicts_or_bad_request(text):
    assert_parses_or_bad_request(text)


@FUZZ
@given(st.integers(0, len(SEED_PLACEMENT)), yaml_fragments)
def test_parsing_a_manifest_with_garbage_spliced_in_gives_dicts_or_bad_request(position, fragment):
    assert_parses_or_bad_request(SEED_PLACEMENT[:position] + fragment + SEED_PLACEMENT[position:])


@FUZZ
@given(st.integers(1, 200), st.sampled_from(["[", "{", "- ", "{a: ", "[[", "*a "]))
def test_parsing_deep_nesting_gives_dicts_or_bad_request(depth, opener):
    assert_parses_or_bad_request("a: &a " + opener * depth)


# Inputs these fuzzers once found crashing parse_documents: PyYAML's own
# constructors raise IndexError/KeyError/AttributeError on some tagged scalars,
# and json.loads a plain ValueError past Python's 4300-digit integer limit.
PAST_PARSER_CRASHES = [
    pytest.param(
        "[" + "1" * 5000 + "]", id="json-integer-past-pythons-4300-digit-limit-raises-valueerror"
    ),
    pytest.param("a: !!int", id="empty-int-tag-raises-indexerror"),
    pytest.param("a: !!float", id="empty-float-tag-raises-indexerror"),
    pytest.param("a: !!int _", id="underscore-int-raises-indexerror"),
    pytest.param("a: !!bool x", id="unknown-bool-raises-keyerror"),
    pytest.param("a: !!timestamp x", id="malformed-timestamp-raises-attributeerror"),
]


@pytest.mark.parametrize("text", PAST_PARSER_CRASHES)
def test_parsing_a_past_crasher_gives_bad_request(text):
    with pytest.raises(BadRequest):
        parse_documents(text)


# ---------------------------------------------------------------- validation

# Field names and values of the fleet schemas, so that random structures reach
# the nested rules (stages → tasks → waitTime, policy → affinity → selector).
# fmt: off
FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "spec", "status", "name", "namespace", "labels", "annotations",
    "generateName", "finalizers", "ownerReferences", "placementName", "resourceSnapshotIndex",
    "stagedRolloutStrategyName", "state", "stages", "labelSelector", "matchLabels", "matchExpressions", "key",
    "operator", "values", "sortingLabelKey", "maxConcurrency", "beforeStageTasks", "afterStageTasks", "type",
    "waitTime", "parentStageRollout", "targetStage", "resourceSelectors", "group", "version", "policy",
    "placementType", "numberOfClusters", "clusterNames", "affinity", "clusterAffinity",
    "requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution",
    "clusterSelectorTerms", "weight", "preference", "strategy", "rollingUpdate", "applyStrategy",
    "whenToTakeOver", "comparisonOption", "serverSideApplyConfig", "revisionHistoryLimit", "identity",
    "heartbeatPeriodSeconds", "selectedResources", "targetCluster", "conditions", "lastTransitionTime",
    "observedGeneration", "reason", "message", "data", "binaryData", "stringData", "selectionScope",
    "statusReportingScope",
]
VALUES = [
    "", "Initialize", "Run", "Stop", "TimedWait", "Approval", "1m", "0s", "1h30m", "50%", "0%", "100%",
    "PickAll", "PickN", "PickFixed", "External", "RollingUpdate", "In", "Exists", "True", "Yes",
    "example-run", "a-b", "2025-01-02T15:04:05Z", "c2VjcmV0", "a\nb", "\u2028", "\x00", "é",
]
# fmt: on
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(VALUES)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


def manifest(kind, **fields) -> dict:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": "fuzz"},
        **fields,
    }


@pytest.mark.parametrize("kind", FUZZED_KINDS, ids=KIND_IDS)
@FUZZ
@given(spec=json_values, old_spec=json_values)
def test_validating_any_spec_gives_none_or_invalid(kind, spec, old_spec):
    assert_valid_or_invalid(validate, kind, manifest(kind, spec=spec))
    assert_valid_or_invalid(
        validate, kind, manifest(kind, spec=spec), manifest(kind, spec=old_spec)
    )


@pytest.mark.parametrize("kind", FUZZED_KINDS, ids=KIND_IDS)
@FUZZ
@given(metadata=json_values)
def test_validating_any_metadata_gives_none_or_invalid(kind, metadata):
    assert_valid_or_invalid(validate, kind, manifest(kind, metadata=metadata, spec={}))


@pytest.mark.parametrize("kind", FUZZED_KINDS, ids=KIND_IDS)
@FUZZ
@given(whole=json_values, old=json_values)
def test_validating_any_whole_manifest_gives_none_or_invalid(kind, whole, old):
    assert_valid_or_invalid(validate, kind, whole)
    assert_valid_or_invalid(validate, kind, whole, old)
    assert_valid_or_invalid(validate_status, kind, whole)


@pytest.mark.parametrize("kind", FUZZED_KINDS, ids=KIND_IDS)
@FUZZ
@given(status=json_values)
def test_validating_any_status_gives_none_or_invalid(kind, status):
    assert_valid_or_invalid(validate_status, kind, manifest(kind, status=status))
    assert_valid_or_invalid(validate_status, kind, manifest(kind, status={"conditions": status}))


# Valid objects of every fleet kind: replacing any one node by a random value
# tests the rules deep inside, which random structures rarely reach.
# fmt: off
VALID_SPECS = {
    "ClusterResourcePlacement": {
        "resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "labelSelector": {
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}}],
        "policy": {"placementType": "PickN", "numberOfClusters": 2, "affinity": {"clusterAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"clusterSelectorTerms": [
                {"labelSelector": {"matchLabels": {"env": "prod"}}}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"labelSelector": {"matchLabels": {"zone": "a"}}}}]}}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"},
                     "applyStrategy": {"type": "ServerSideApply", "serverSideApplyConfig": {"force": True}}},
        "revisionHistoryLimit": 10,
    },
    "ClusterStagedUpdateStrategy": {"stages": [
        {"name": "staging", "labelSelector": {"matchLabels": {"env": "staging"}}, "maxConcurrency": "50%",
         "afterStageTasks": [{"type": "TimedWait", "waitTime": "1m"}, {"type": "Approval"}]},
        {"name": "canary", "sortingLabelKey": "order", "maxConcurrency": 2, "beforeStageTasks": [{"type": "Approval"}]},
    ]},
    "ClusterStagedUpdateRun": {"placementName": "p", "resourceSnapshotIndex": "1",
                               "stagedRolloutStrategyName": "s", "state": "Run"},
    "ClusterApprovalRequest": {"parentStageRollout": "example-run", "targetStage": "canary"},
    "ClusterResourceBinding": {"targetCluster": "member1", "state": "Bound", "clusterResourceOverrideSnapshots": ["o"],
                               "resourceSnapshotName": "s", "schedulingPolicySnapshotName": "p",
                               "clusterDecision": {"clusterName": "member1", "selected": True, "reason": "r"}},
    "ClusterResourceSnapshot": {"selectedResources": [{"apiVersion": "v1", "kind": "Namespace"}]},
    "MemberCluster": {"identity": {"kind": "ServiceAccount", "name": "agent"}, "heartbeatPeriodSeconds": 60},
}
# fmt: on


def node_paths(value, path=()):
    """Every path into a JSON value (keys and indexes), the root included."""
    yield path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield from node_paths(child, (*path, key))


def replaced(value, path, new):
    if not path:
        return new
    value = copy.deepcopy(value)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return value


@pytest.mark.parametrize("kind_name", sorted(VALID_SPECS))
@FUZZ
@given(data=st.data(), new=json_values)
def test_validating_a_valid_spec_with_one_node_replaced_gives_none_or_invalid(kind_name, data, new):
    kind, spec = KINDS[kind_name], VALID_SPECS[kind_name]
    validate(
        kind, manifest(kind, spec=spec)
    )  # the base is valid, so the fuzzing starts from a valid object
    path = data.draw(st.sampled_from(list(node_paths(spec))))
    mutated = manifest(kind, spec=replaced(spec, path, new))
    assert_valid_or_invalid(validate, kind, mutated)
    assert_valid_or_invalid(validate, kind, mutated, manifest(kind, spec=spec))
    assert_valid_or_invalid(validate, kind, manifest(kind, spec=spec), mutated)


@FUZZ
@given(text=yaml_fragments)
def test_whatever_parses_validates_to_none_or_invalid(text):
    try:
        docs = parse_documents(SEED_PLACEMENT + "\n---\n" + text)
    except BadRequest:
        return
    for doc in docs:
        kind = KINDS.get(doc["kind"], KINDS["ClusterResourcePlacement"])
        assert_valid_or_invalid(validate, kind, doc)
        json.dumps(doc)  # what validated is still plain JSON
