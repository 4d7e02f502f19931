"""validate() and validate_status(): the CRD schema, CEL rules and update
rules of staged-update-semantics.md §2–3, as tables of manifests.

No database: validation is pure, so none of these tests is marked django_db.
"""

import textwrap

import pytest
import yaml

from rollouts.api.errors import Invalid
from rollouts.api.kinds import CORE_KINDS, FLEET_KINDS
from rollouts.api.validation import validate, validate_status

KINDS = {kind.kind: kind for kind in FLEET_KINDS + CORE_KINDS}


def doc(kind: str, body: str) -> str:
    """A YAML manifest of `kind`: apiVersion and kind, then `body` (dedented)."""
    header = f"apiVersion: {KINDS[kind].api_version}\nkind: {kind}\n"
    return header + textwrap.dedent(body).strip() + "\n"


def load(text: str) -> dict:
    return yaml.safe_load(text)


def kind_of(manifest: dict):
    return KINDS[manifest["kind"]]


def invalid_message(manifest: dict, old: dict | None = None) -> str:
    with pytest.raises(Invalid) as caught:
        validate(kind_of(manifest), manifest, old)
    return str(caught.value)


def run_doc(name: str = "example-run", state: str | None = None, **spec) -> dict:
    spec = {
        "placementName": "example-placement",
        "resourceSnapshotIndex": "1",
        "stagedRolloutStrategyName": "example-strategy",
        **spec,
    }
    if state is not None:
        spec["state"] = state
    return {
        "apiVersion": KINDS["ClusterStagedUpdateRun"].api_version,
        "kind": "ClusterStagedUpdateRun",
        "metadata": {"name": name},
        "spec": spec,
    }


LONG = "a" * 64
STAGES_32 = ", ".join(f"{{name: s{i}}}" for i in range(32))
BIG_ANNOTATION = "x" * (257 * 1024)

# ---------------------------------------------------------------- invalid manifests

# fmt: off
INVALID = [
    # metadata, every kind
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {labels: {app: web}}
        spec: {resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]}
        """),
        "metadata.name", "Required value",
        id="a-manifest-without-a-name-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: Example_Placement}
        spec: {resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]}
        """),
        "metadata.name", "RFC 1123 subdomain",
        id="an-upper-case-name-is-not-an-rfc1123-subdomain"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: 42}
        spec: {stages: []}
        """),
        "metadata.name", 'Invalid value: "integer": metadata.name in body must be of type string',
        id="a-numeric-name-is-a-type-error"),
    pytest.param(doc("ConfigMap", f"""
        metadata: {{name: {"a" * 254}}}
        """),
        "metadata.name", "must be no more than 253 characters",
        id="a-name-longer-than-253-is-refused"),
    pytest.param(doc("Namespace", """
        metadata: {name: team.a}
        """),
        "metadata.name", "RFC 1123 label",
        id="a-namespace-name-may-not-contain-dots"),
    pytest.param(doc("Namespace", """
        metadata: {name: team-a, namespace: default}
        """),
        "metadata.namespace", "Forbidden: not allowed on this type",
        id="a-namespace-carries-no-namespace"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: app-config, namespace: Team_A}
        """),
        "metadata.namespace", "RFC 1123 label",
        id="a-namespace-field-must-be-an-rfc1123-label"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: s, labels: [app, web]}
        spec: {stages: []}
        """),
        "metadata.labels", "must be of type object",
        id="labels-given-as-a-list-are-a-type-error"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: s, labels: {replicas: 3}}
        spec: {stages: []}
        """),
        "metadata.labels[replicas]", "must be of type string",
        id="a-numeric-label-value-is-a-type-error"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: c, labels: {a/b/c: x}}
        """),
        "metadata.labels", "qualified name",
        id="a-label-key-with-two-slashes-is-refused"),
    pytest.param(doc("ConfigMap", f"""
        metadata: {{name: c, labels: {{example.com/{LONG}: x}}}}
        """),
        "metadata.labels", "name part must be no more than 63 characters",
        id="a-label-key-name-part-longer-than-63-is-refused"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: c, labels: {env: "prod east"}}
        """),
        "metadata.labels[env]", "a valid label must be an empty string",
        id="a-label-value-with-a-space-is-refused"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: c, annotations: {note: true}}
        """),
        "metadata.annotations[note]", "must be of type string",
        id="a-boolean-annotation-value-is-a-type-error"),
    pytest.param(doc("ConfigMap", f"""
        metadata: {{name: c, annotations: {{note: {BIG_ANNOTATION}}}}}
        """),
        "metadata.annotations", "Too long: must have at most 262144 bytes",
        id="annotations-over-256kib-are-refused"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {generateName: run-}
        spec: {placementName: p, stagedRolloutStrategyName: s}
        """),
        "metadata.generateName", "not supported",
        id="generate-name-is-not-supported"),
    pytest.param(doc("MemberCluster", """
        metadata: [name, member1]
        """),
        "metadata", "must be of type object",
        id="metadata-given-as-a-list-is-a-type-error"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: c, finalizers: example.com/keep}
        """),
        "metadata.finalizers", "must be of type array",
        id="finalizers-given-as-a-string-are-a-type-error"),
    # staged update runs (§2.1)
    pytest.param(doc("ClusterStagedUpdateRun", f"""
        metadata: {{name: {LONG}}}
        spec: {{placementName: p, stagedRolloutStrategyName: s}}
        """),
        "metadata.name", "metadata.name max length is 63",
        id="a-run-name-of-64-characters-is-refused"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        """),
        "spec", "Required value",
        id="a-run-without-a-spec-is-refused"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        spec: {stagedRolloutStrategyName: example-strategy}
        """),
        "spec.placementName", "Required value",
        id="a-run-needs-a-placement-name"),
    pytest.param(doc("ClusterStagedUpdateRun", f"""
        metadata: {{name: example-run}}
        spec: {{placementName: {"p" * 256}, stagedRolloutStrategyName: s}}
        """),
        "spec.placementName", "Too long: may not be more than 255",
        id="a-placement-name-over-255-is-refused"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        spec: {placementName: p, stagedRolloutStrategyName: s, resourceSnapshotIndex: 1}
        """),
        "spec.resourceSnapshotIndex", 'Invalid value: "integer": spec.resourceSnapshotIndex in body must be of type string',
        id="an-unquoted-snapshot-index-is-a-type-error"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        spec: {placementName: p, stagedRolloutStrategyName: s, state: Foo}
        """),
        "spec.state", 'Unsupported value: "Foo": supported values: "Initialize", "Run", "Stop"',
        id="an-unknown-run-state-lists-the-supported-ones"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        spec: {placementName: p, stagedRolloutStrategyName: s, resourceSnapshotIdx: "1"}
        """),
        "spec.resourceSnapshotIdx", 'unknown field "spec.resourceSnapshotIdx"',
        id="a-misspelt-run-field-is-an-unknown-field"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        spec: example-placement
        """),
        "spec", 'Invalid value: "string": spec in body must be of type object',
        id="a-run-spec-given-as-a-string-is-a-type-error"),
    pytest.param(doc("StagedUpdateRun", """
        metadata: {name: example-run, namespace: team-a}
        spec: {placementName: p, stagedRolloutStrategyName: [s]}
        """),
        "spec.stagedRolloutStrategyName", "must be of type string",
        id="a-namespaced-run-strategy-name-given-as-a-list-is-a-type-error"),
    # staged update strategies (§2.2)
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {}
        """),
        "spec.stages", "Required value",
        id="a-strategy-needs-stages"),
    pytest.param(doc("ClusterStagedUpdateStrategy", f"""
        metadata: {{name: example-strategy}}
        spec: {{stages: [{STAGES_32}]}}
        """),
        "spec.stages", "Too many: 32: must have at most 31 items",
        id="a-strategy-has-at-most-31-stages"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: a-b}]}
        """),
        "spec.stages[0].name", """Invalid value: "a-b": spec.stages[0].name in body should match '^[a-z0-9]+$'""",
        id="a-stage-name-may-not-contain-a-hyphen"),
    pytest.param(doc("ClusterStagedUpdateStrategy", f"""
        metadata: {{name: example-strategy}}
        spec: {{stages: [{{name: {LONG}}}]}}
        """),
        "spec.stages[0].name", "Too long: may not be more than 63",
        id="a-stage-name-over-63-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{labelSelector: {}}]}
        """),
        "spec.stages[0].name", "Required value",
        id="a-stage-needs-a-name"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, maxConcurrency: 0}]}
        """),
        "spec.stages[0].maxConcurrency", "maxConcurrency must be at least 1",
        id="a-max-concurrency-of-zero-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, maxConcurrency: "0%"}]}
        """),
        "spec.stages[0].maxConcurrency", "should match '^(100|[1-9][0-9]?)%$'",
        id="a-max-concurrency-of-zero-percent-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, maxConcurrency: "50"}]}
        """),
        "spec.stages[0].maxConcurrency", "should match",
        id="a-quoted-max-concurrency-needs-a-percent-sign"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, maxConcurrency: "101%"}]}
        """),
        "spec.stages[0].maxConcurrency", "should match",
        id="a-max-concurrency-over-100-percent-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, maxConcurrency: true}]}
        """),
        "spec.stages[0].maxConcurrency", "must be of type integer or string",
        id="a-boolean-max-concurrency-is-not-an-integer"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, beforeStageTasks: [{type: TimedWait, waitTime: 1m}]}]}
        """),
        "spec.stages[0].beforeStageTasks", "BeforeStageTaskType cannot be TimedWait",
        id="a-before-stage-task-cannot-be-a-timed-wait"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, beforeStageTasks: [{type: Approval}, {type: Approval}]}]}
        """),
        "spec.stages[0].beforeStageTasks", "Too many: 2: must have at most 1 items",
        id="a-stage-has-at-most-one-before-task"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, beforeStageTasks: [{type: Approval, waitTime: 1h}]}]}
        """),
        "spec.stages[0].beforeStageTasks", "AfterStageTaskType is Approval, waitTime is not allowed",
        id="a-before-stage-approval-carries-no-wait-time"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, afterStageTasks: [{type: Approval, waitTime: 1h}]}]}
        """),
        "spec.stages[0].afterStageTasks", "AfterStageTaskType is Approval, waitTime is not allowed",
        id="an-after-stage-approval-carries-no-wait-time"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: staging, afterStageTasks: [{type: TimedWait}]}]}
        """),
        "spec.stages[0].afterStageTasks", "AfterStageTaskType is TimedWait, waitTime is required",
        id="an-after-stage-timed-wait-needs-a-wait-time"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec:
          stages:
            - name: staging
              afterStageTasks: [{type: Approval}, {type: TimedWait, waitTime: 1m}, {type: Approval}]
        """),
        "spec.stages[0].afterStageTasks", "Too many: 3: must have at most 2 items",
        id="a-stage-has-at-most-two-after-tasks"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: staging, afterStageTasks: [{type: TimedWait, waitTime: 1d}]}]}
        """),
        "spec.stages[0].afterStageTasks[0].waitTime", "(?:s|m|h))+$'",
        id="a-wait-time-in-days-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: staging, afterStageTasks: [{type: TimedWait, waitTime: 01h}]}]}
        """),
        "spec.stages[0].afterStageTasks[0].waitTime", "should match",
        id="a-wait-time-with-a-leading-zero-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: staging, afterStageTasks: [{type: Manual}]}]}
        """),
        "spec.stages[0].afterStageTasks[0].type", 'Unsupported value: "Manual": supported values: "TimedWait", "Approval"',
        id="an-unknown-task-type-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: staging, afterStageTasks: [{type: Approval, timeout: 1h}]}]}
        """),
        "spec.stages[0].afterStageTasks[0].timeout", "unknown field",
        id="an-unknown-task-field-is-refused"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec:
          stages:
            - name: canary
              labelSelector: {matchExpressions: [{key: environment, operator: Matches, values: [canary]}]}
        """),
        "spec.stages[0].labelSelector.matchExpressions[0].operator", 'Unsupported value: "Matches"',
        id="a-selector-operator-must-be-known"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, labelSelector: {matchExpressions: [{key: env, operator: In}]}}]}
        """),
        "spec.stages[0].labelSelector.matchExpressions[0]", "values: Required value",
        id="an-in-selector-needs-values"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, labelSelector: {matchLabels: {environment: [canary]}}}]}
        """),
        "spec.stages[0].labelSelector.matchLabels[environment]", "must be of type string",
        id="a-match-label-value-given-as-a-list-is-a-type-error"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec: {stages: [{name: canary, sortingLabel: order}]}
        """),
        "spec.stages[0].sortingLabel", 'unknown field "spec.stages[0].sortingLabel"',
        id="a-misspelt-stage-field-is-an-unknown-field"),
    pytest.param(doc("StagedUpdateStrategy", """
        metadata: {name: example-strategy, namespace: team-a}
        spec: {stages: {name: canary}}
        """),
        "spec.stages", "must be of type array",
        id="stages-given-as-an-object-are-a-type-error"),
    # approval requests (§2.3)
    pytest.param(doc("ClusterApprovalRequest", """
        metadata: {name: example-run-canary}
        spec: {targetStage: canary}
        """),
        "spec.parentStageRollout", "Required value",
        id="an-approval-request-names-its-run"),
    pytest.param(doc("ApprovalRequest", """
        metadata: {name: example-run-canary, namespace: team-a}
        spec: {parentStageRollout: example-run, targetStage: 7}
        """),
        "spec.targetStage", "must be of type string",
        id="an-approval-request-stage-is-a-string"),
    # placements
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec: {policy: {placementType: PickAll}}
        """),
        "spec.resourceSelectors", "Required value",
        id="a-placement-needs-resource-selectors"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec: {resourceSelectors: []}
        """),
        "spec.resourceSelectors", "should have at least 1 items",
        id="a-placement-selects-something"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec: {resourceSelectors: [{group: "", version: v1, name: test-namespace}]}
        """),
        "spec.resourceSelectors[0].kind", "Required value",
        id="a-resource-selector-needs-a-kind"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors:
            - {group: "", version: v1, kind: Namespace, name: ns, labelSelector: {matchLabels: {a: b}}}
        """),
        "spec.resourceSelectors", "name and labelSelector are mutually exclusive",
        id="a-selector-has-a-name-or-a-label-selector"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy: {placementType: PickSome}
        """),
        "spec.policy.placementType", 'Unsupported value: "PickSome"',
        id="an-unknown-placement-type-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy: {placementType: PickN}
        """),
        "spec.policy", "numberOfClusters must be set when placementType is PickN",
        id="pick-n-needs-a-number-of-clusters"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy: {placementType: PickN, numberOfClusters: -1}
        """),
        "spec.policy.numberOfClusters", "should be greater than or equal to 0",
        id="pick-n-needs-a-non-negative-number"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy: {placementType: PickFixed, clusterNames: []}
        """),
        "spec.policy.clusterNames", "Required value",
        id="pick-fixed-needs-cluster-names"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy:
            placementType: PickFixed
            clusterNames: [member1]
            affinity: {clusterAffinity: {}}
        """),
        "spec.policy", "cannot be set when placementType is PickFixed",
        id="pick-fixed-has-no-affinity"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy: {numberOfClusters: 2}
        """),
        "spec.policy", "cannot be set when placementType is PickAll",
        id="pick-all-by-default-takes-no-number-of-clusters"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          policy:
            affinity:
              clusterAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                  clusterSelectorTerms: [{labelSelector: {matchLabels: env}}]
        """),
        "spec.policy.affinity.clusterAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".clusterSelectorTerms[0].labelSelector.matchLabels", "must be of type object",
        id="a-cluster-selector-term-needs-a-valid-selector"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          strategy: {type: BlueGreen}
        """),
        "spec.strategy.type", 'supported values: "RollingUpdate", "External"',
        id="an-unknown-rollout-strategy-type-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          strategy: {type: External, rollingUpdate: {maxUnavailable: 1}}
        """),
        "spec.strategy.rollingUpdate", "not allowed with External",
        id="an-external-strategy-takes-no-rolling-update-config"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          strategy: {applyStrategy: {whenToTakeOver: Sometimes}}
        """),
        "spec.strategy.applyStrategy.whenToTakeOver", 'supported values: "Always", "IfNoDiff", "Never"',
        id="an-unknown-take-over-policy-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          revisionHistoryLimit: 0
        """),
        "spec.revisionHistoryLimit", "should be greater than or equal to 1",
        id="a-revision-history-limit-of-zero-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns}]
          revisionHistoryLimit: 1001
        """),
        "spec.revisionHistoryLimit", "should be less than or equal to 1000",
        id="a-revision-history-limit-over-1000-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelector: [{group: "", version: v1, kind: Namespace, name: ns}]
        """),
        "spec.resourceSelector", "unknown field",
        id="a-misspelt-placement-field-is-an-unknown-field"),
    pytest.param(doc("ResourcePlacement", """
        metadata: {name: example-placement, namespace: team-a}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: ConfigMap, name: app-config}]
          strategy: {applyStrategy: {comparisonOption: Exact}}
        """),
        "spec.strategy.applyStrategy.comparisonOption", 'Unsupported value: "Exact"',
        id="a-namespaced-placement-checks-its-apply-strategy"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: Namespace, name: ns, selectionScope: Everything}]
        """),
        "spec.resourceSelectors[0].selectionScope", 'supported values: "NamespaceOnly", "NamespaceWithResources"',
        id="an-unknown-selection-scope-is-refused"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: rbac.authorization.k8s.io, version: v1, kind: ClusterRole, name: reader}]
          statusReportingScope: NamespaceAccessible
        """),
        "spec", "exactly one resourceSelector with kind 'Namespace' is required",
        id="namespace-accessible-status-needs-exactly-one-namespace"),
    # member clusters, snapshots, bindings
    pytest.param(doc("MemberCluster", """
        metadata: {name: member1}
        spec: [identity]
        """),
        "spec", "must be of type object",
        id="a-member-cluster-spec-is-an-object"),
    pytest.param(doc("MemberCluster", """
        metadata: {name: member1}
        spec: {heartbeatPeriodSeconds: 601}
        """),
        "spec.heartbeatPeriodSeconds", "should be less than or equal to 600",
        id="a-heartbeat-period-over-600-seconds-is-refused"),
    pytest.param(doc("ClusterResourceSnapshot", """
        metadata: {name: example-placement-0-snapshot}
        spec: {selectedResources: everything}
        """),
        "spec.selectedResources", "must be of type array",
        id="selected-resources-are-a-list"),
    pytest.param(doc("ClusterResourceSnapshot", """
        metadata: {name: example-placement-0-snapshot}
        spec: {selectedResources: [1]}
        """),
        "spec.selectedResources[0]", "must be of type object",
        id="selected-resources-are-objects"),
    pytest.param(doc("ClusterResourceBinding", """
        metadata: {name: example-placement-member1}
        spec: {state: Scheduled}
        """),
        "spec.targetCluster", "Required value",
        id="a-binding-names-its-target-cluster"),
    pytest.param(doc("ClusterResourceBinding", """
        metadata: {name: example-placement-member1}
        spec: {targetCluster: member1, state: Pending, resourceSnapshotName: s, schedulingPolicySnapshotName: p, clusterDecision: {clusterName: member1, selected: true, reason: picked}}
        """),
        "spec.state", 'supported values: "Scheduled", "Bound", "Unscheduled"',
        id="an-unknown-binding-state-is-refused"),
    # core kinds
    pytest.param(doc("ConfigMap", """
        metadata: {name: app-config}
        data: {replicas: 3}
        """),
        "data[replicas]", "must be of type string",
        id="a-config-map-value-must-be-a-string"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: app-config}
        data: {"app config": x}
        """),
        "data", "a valid config key",
        id="a-config-map-key-may-not-contain-a-space"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: app-config}
        data: [key, value]
        """),
        "data", "must be of type object",
        id="config-map-data-is-a-map"),
    pytest.param(doc("Secret", """
        metadata: {name: db-credentials}
        data: {password: not base64!}
        """),
        "data[password]", "illegal base64 data",
        id="secret-data-must-be-base64"),
]
# fmt: on


@pytest.mark.parametrize(("text", "path", "fragment"), INVALID)
def test_it_refuses_an_invalid_manifest_naming_the_field(text, path, fragment):
    message = invalid_message(load(text))
    assert f"{path}: " in message
    assert fragment in message
    assert len(message.splitlines()) == 1


def test_it_reports_every_problem_at_once():
    manifest = load(
        doc(
            "ClusterStagedUpdateStrategy",
            """
        metadata: {name: Bad_Name}
        spec:
          stages:
            - name: a-b
              maxConcurrency: 0
              afterStageTasks: [{type: TimedWait}]
        """,
        )
    )
    with pytest.raises(Invalid) as caught:
        validate(kind_of(manifest), manifest)
    paths = [path for path, _ in caught.value.causes]
    assert paths == [
        "metadata.name",
        "spec.stages[0].name",
        "spec.stages[0].afterStageTasks",
        "spec.stages[0].maxConcurrency",
    ]


def test_a_long_invalid_value_is_cut_short_in_the_message():
    manifest = run_doc(name="x" * 5000)
    message = invalid_message(manifest)
    assert 'Invalid value: "' + "x" * 128 + '...": must be no more than 253 characters' in message
    assert len(message) < 5000 + 1000  # the name in the header, then short causes


def test_it_refuses_a_manifest_that_is_not_an_object():
    with pytest.raises(Invalid, match="a manifest must be an object"):
        validate(KINDS["ClusterStagedUpdateRun"], ["not", "a", "manifest"])


# ---------------------------------------------------------------- valid manifests

# fmt: off
VALID = [
    pytest.param(doc("ClusterResourcePlacement", """
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
        """),
        id="the-seed-tutorials-placement"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata:
          name: example-strategy
        spec:
          stages:
            - name: staging
              labelSelector:
                matchLabels:
                  environment: staging
              afterStageTasks:
                - type: TimedWait
                  waitTime: 1m
            - name: canary
              labelSelector:
                matchLabels:
                  environment: canary
              sortingLabelKey: order
              afterStageTasks:
                - type: Approval
        """),
        id="the-seed-tutorials-strategy"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata:
          name: example-run
        spec:
          placementName: example-placement
          resourceSnapshotIndex: "1"
          stagedRolloutStrategyName: example-strategy
        """),
        id="the-seed-tutorials-run"),
    pytest.param(doc("ClusterApprovalRequest", """
        metadata:
          name: example-run-canary
          labels:
            kubernetes-fleet.io/targetUpdateRun: example-run
            kubernetes-fleet.io/targetUpdatingStage: canary
            kubernetes-fleet.io/isLatestUpdateRunApproval: "true"
        spec:
          parentStageRollout: example-run
          targetStage: canary
        """),
        id="an-approval-request-as-a-run-creates-it"),
    pytest.param(doc("Namespace", """
        metadata: {name: test-namespace, labels: {team: a}}
        """),
        id="a-namespace"),
    pytest.param(doc("ConfigMap", """
        metadata: {name: test-cm, namespace: test-namespace}
        data: {key: value, app.conf: "a=b"}
        """),
        id="a-config-map"),
    pytest.param(doc("Secret", """
        metadata: {name: db-credentials, namespace: test-namespace}
        data: {password: c2VjcmV0}
        stringData: {user: admin}
        """),
        id="a-secret-with-base64-data"),
    pytest.param(doc("StagedUpdateRun", """
        metadata: {name: example-run, namespace: team-a}
        spec: {placementName: example-placement, stagedRolloutStrategyName: s, state: Initialize}
        """),
        id="a-namespaced-run-created-in-initialize"),
    pytest.param(doc("ClusterStagedUpdateRun", """
        metadata: {name: example-run}
        spec: {placementName: p, stagedRolloutStrategyName: s, resourceSnapshotIndex: "", state: Stop}
        """),
        id="a-run-created-stopped-with-an-empty-index"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec:
          stages:
            - name: canary
              labelSelector: {}
              maxConcurrency: "50%"
              beforeStageTasks: [{type: Approval}]
              afterStageTasks: [{type: TimedWait, waitTime: 1h30m}, {type: Approval}]
            - name: prod
              labelSelector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}
              maxConcurrency: 150
        """),
        id="a-strategy-with-every-stage-feature"),
    pytest.param(doc("ClusterStagedUpdateStrategy", """
        metadata: {name: example-strategy}
        spec:
          stages:
            - name: staging
              afterStageTasks: [{type: TimedWait, waitTime: 0s}, {type: TimedWait, waitTime: 1m}]
        """),
        id="two-timed-waits-and-a-zero-wait-fail-only-at-initialization"),
    pytest.param(doc("ClusterResourcePlacement", """
        metadata: {name: example-placement}
        spec:
          resourceSelectors: [{group: apps, version: v1, kind: Deployment, labelSelector: {matchLabels: {app: web}}}]
          policy:
            placementType: PickN
            numberOfClusters: 0
            affinity:
              clusterAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                  clusterSelectorTerms: [{labelSelector: {matchLabels: {environment: prod}}}]
          strategy:
            type: RollingUpdate
            rollingUpdate: {maxUnavailable: 25%, unavailablePeriodSeconds: 60}
            applyStrategy: {type: ServerSideApply, whenToTakeOver: IfNoDiff, serverSideApplyConfig: {force: true}}
          revisionHistoryLimit: 10
        """),
        id="a-pick-n-placement-with-affinity-and-rolling-update"),
    pytest.param(doc("ResourcePlacement", """
        metadata: {name: example-placement, namespace: team-a}
        spec:
          resourceSelectors: [{group: "", version: v1, kind: ConfigMap, name: app-config}]
          policy: {placementType: PickFixed, clusterNames: [member1, member2]}
        """),
        id="a-pick-fixed-namespaced-placement"),
    pytest.param(doc("MemberCluster", """
        metadata: {name: member1, labels: {environment: canary, order: "1"}}
        spec: {identity: {kind: ServiceAccount, name: fleet-member-agent}, heartbeatPeriodSeconds: 60}
        """),
        id="a-member-cluster"),
    pytest.param(doc("ClusterResourceBinding", """
        metadata: {name: example-placement-member1}
        spec:
          targetCluster: member1
          state: Bound
          resourceSnapshotName: example-placement-1-snapshot
          schedulingPolicySnapshotName: example-placement-1
          clusterDecision: {clusterName: member1, selected: true, reason: picked by scheduling policy}
        """),
        id="a-bound-binding"),
    pytest.param(doc("ConfigMap", """
        metadata:
          name: app-config
          annotations: {Example.com/Owner: Team A, kubectl.kubernetes.io/last-applied-configuration: "{}"}
        """),
        id="annotation-keys-may-use-upper-case"),
]
# fmt: on


@pytest.mark.parametrize("text", VALID)
def test_it_accepts_a_valid_manifest(text):
    manifest = load(text)
    validate(kind_of(manifest), manifest)


def test_a_custom_resource_gets_only_the_metadata_rules():
    crd_kind = KINDS["ConfigMap"].__class__(
        "example.com", "v1", "Widget", "widgets", namespaced=True
    )
    validate(
        crd_kind,
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"anything": [1, {"goes": None}]},
            "data": {"n": 1},
        },
    )


# ---------------------------------------------------------------- updates


@pytest.mark.parametrize(
    ("field", "new_value"),
    [
        pytest.param("placementName", "other-placement", id="the-placement"),
        pytest.param("resourceSnapshotIndex", "2", id="the-resource-snapshot-index"),
        pytest.param("stagedRolloutStrategyName", "other-strategy", id="the-strategy"),
    ],
)
def test_a_run_cannot_change(field, new_value):
    old = run_doc()
    new = run_doc(**{field: new_value})
    message = invalid_message(new, old)
    assert f"spec.{field}: " in message
    assert f"{field} is immutable" in message


def test_an_absent_snapshot_index_is_the_same_as_an_empty_one():
    old = run_doc(resourceSnapshotIndex="")
    new = run_doc()
    del new["spec"]["resourceSnapshotIndex"]
    validate(kind_of(new), new, old)


ALLOWED_TRANSITIONS = [
    pytest.param("Initialize", "Run", id="initialize-to-run"),
    pytest.param("Run", "Stop", id="run-to-stop"),
    pytest.param("Stop", "Run", id="stop-to-run"),
    pytest.param("Initialize", "Initialize", id="initialize-stays"),
    pytest.param("Stop", "Stop", id="stop-stays"),
    pytest.param(None, "Stop", id="a-run-without-state-runs-so-it-may-stop"),
    pytest.param(None, "Run", id="a-run-without-state-may-say-run"),
    pytest.param("Stop", None, id="a-stopped-run-resumes-by-dropping-its-state"),
    pytest.param("Run", None, id="a-running-run-may-drop-its-state"),
    pytest.param(None, None, id="no-state-stays-no-state"),
    pytest.param("Initialize", None, id="dropping-the-state-of-an-initialized-run-starts-it"),
]


@pytest.mark.parametrize(("before", "after"), ALLOWED_TRANSITIONS)
def test_a_run_may_change_state(before, after):
    new = run_doc(state=after)
    validate(kind_of(new), new, run_doc(state=before))


DENIED_TRANSITIONS = [
    pytest.param("Initialize", "Stop", "from Initialize to Stop", id="initialize-to-stop"),
    pytest.param("Run", "Initialize", "from Run to Initialize", id="run-to-initialize"),
    pytest.param("Stop", "Initialize", "from Stop to Initialize", id="stop-to-initialize"),
    pytest.param(
        None,
        "Initialize",
        "from Run to Initialize (a run without spec.state runs",
        id="a-run-without-state-is-already-running-so-cannot-initialize",
    ),
]


@pytest.mark.parametrize(("before", "after", "fragment"), DENIED_TRANSITIONS)
def test_a_run_may_not_change_state(before, after, fragment):
    message = invalid_message(run_doc(state=after), run_doc(state=before))
    assert "spec: " in message  # the CRD's rule sits on spec
    assert f"invalid state transition: cannot transition {fragment}" in message


def test_a_run_update_reports_immutable_fields_and_transition_together():
    old = run_doc(state="Run")
    new = run_doc(state="Initialize", placementName="other")
    with pytest.raises(Invalid) as caught:
        validate(kind_of(new), new, old)
    assert [path for path, _ in caught.value.causes] == ["spec", "spec.placementName"]


def approval(stage: str = "canary", labels: dict | None = None) -> dict:
    return {
        "apiVersion": KINDS["ClusterApprovalRequest"].api_version,
        "kind": "ClusterApprovalRequest",
        "metadata": {"name": "example-run-canary", "labels": labels or {}},
        "spec": {"parentStageRollout": "example-run", "targetStage": stage},
    }


def test_an_approval_request_spec_is_immutable():
    message = invalid_message(approval(stage="prod"), approval())
    assert "spec: " in message and "The spec field is immutable" in message


def test_an_approval_request_may_change_its_labels():
    new = approval(labels={"team": "a"})
    validate(kind_of(new), new, approval())


def placement(policy: dict | None = None, strategy: dict | None = None) -> dict:
    spec = {
        "resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": "ns"}]
    }
    spec |= {k: v for k, v in (("policy", policy), ("strategy", strategy)) if v is not None}
    return {
        "apiVersion": KINDS["ClusterResourcePlacement"].api_version,
        "kind": "ClusterResourcePlacement",
        "metadata": {"name": "example-placement"},
        "spec": spec,
    }


PLACEMENT_UPDATES = [
    pytest.param(
        placement({"placementType": "PickAll"}),
        placement({"placementType": "PickN", "numberOfClusters": 2}),
        "spec.policy",
        "placement type is immutable",
        id="pick-all-to-pick-n",
    ),
    pytest.param(
        placement({"placementType": "PickN", "numberOfClusters": 2}),
        placement(),
        "spec.policy.placementType",
        "placement type is immutable",
        id="pick-n-to-default-pick-all",
    ),
    pytest.param(
        placement(strategy={"type": "External"}),
        placement(strategy={"type": "RollingUpdate"}),
        "spec.strategy.type",
        "cannot change rollout strategy type from 'External' to other types",
        id="external-to-rolling-update",
    ),
    pytest.param(
        placement(strategy={"type": "External"}),
        placement(),
        "spec.strategy.type",
        "from 'External'",
        id="external-to-the-default-rolling-update",
    ),
    pytest.param(
        placement({"placementType": "PickAll"}),
        placement(),
        "spec",
        "policy cannot be removed once set",
        id="a-policy-once-set-stays",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "fragment"), PLACEMENT_UPDATES)
def test_a_placement_may_not_change(old, new, path, fragment):
    message = invalid_message(new, old)
    assert f"{path}: " in message and fragment in message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            placement(), placement({"placementType": "PickAll"}), id="default-to-explicit-pick-all"
        ),
        pytest.param(
            placement(), placement(strategy={"type": "External"}), id="rolling-update-to-external"
        ),
        pytest.param(
            placement({"placementType": "PickN", "numberOfClusters": 2}),
            placement({"placementType": "PickN", "numberOfClusters": 3}),
            id="pick-n-changes-its-number",
        ),
    ],
)
def test_a_placement_may_change(old, new):
    validate(kind_of(new), new, old)


def test_a_strategy_may_be_edited_at_any_time():
    old = load(
        doc("ClusterStagedUpdateStrategy", "metadata: {name: s}\nspec: {stages: [{name: a}]}")
    )
    new = load(
        doc("ClusterStagedUpdateStrategy", "metadata: {name: s}\nspec: {stages: [{name: b}]}")
    )
    validate(kind_of(new), new, old)


def test_a_resource_snapshot_spec_is_immutable():
    old = load(
        doc(
            "ClusterResourceSnapshot",
            "metadata: {name: p-0-snapshot}\nspec: {selectedResources: []}",
        )
    )
    new = load(
        doc(
            "ClusterResourceSnapshot",
            "metadata: {name: p-0-snapshot}\nspec: {selectedResources: [{}]}",
        )
    )
    message = invalid_message(new, old)
    assert "spec: " in message and "spec is immutable" in message


# ---------------------------------------------------------------- status writes


def approval_status(*conditions: dict) -> dict:
    return {**approval(), "status": {"conditions": list(conditions)}}


APPROVED = {
    "type": "Approved",
    "status": "True",
    "reason": "ApprovedByUser",
    "message": "lgtm",
    "observedGeneration": 1,
    "lastTransitionTime": "2025-01-02T15:04:05Z",
}


def test_an_approved_condition_is_a_valid_status_write():
    validate_status(KINDS["ClusterApprovalRequest"], approval_status(APPROVED))


def test_a_status_write_without_status_is_valid():
    validate_status(KINDS["ClusterApprovalRequest"], approval())


INVALID_STATUS = [
    pytest.param(
        {"status": {"conditions": {"type": "Approved"}}},
        "status.conditions",
        "must be of type array",
        id="conditions-given-as-an-object",
    ),
    pytest.param(
        approval_status({**APPROVED, "status": "Yes"}),
        "status.conditions[0].status",
        'Unsupported value: "Yes": supported values: "True", "False", "Unknown"',
        id="a-yes-status",
    ),
    pytest.param(
        approval_status({"status": "True"}),
        "status.conditions[0].type",
        "Required value",
        id="a-condition-without-type",
    ),
    pytest.param(
        approval_status({**APPROVED, "reason": 7}),
        "status.conditions[0].reason",
        "must be of type string",
        id="a-numeric-reason",
    ),
    pytest.param(
        approval_status({**APPROVED, "observedGeneration": -1}),
        "status.conditions[0].observedGeneration",
        "greater than or equal to 0",
        id="a-negative-observed-generation",
    ),
    pytest.param(
        approval_status({**APPROVED, "lastTransitionTime": "yesterday"}),
        "status.conditions[0].lastTransitionTime",
        "RFC 3339",
        id="a-transition-time-in-words",
    ),
    pytest.param(
        approval_status({**APPROVED, "lastTransitionTime": "2025-13-02T15:04:05Z"}),
        "status.conditions[0].lastTransitionTime",
        "RFC 3339",
        id="a-transition-time-in-month-13",
    ),
    pytest.param(
        approval_status(APPROVED, {**APPROVED, "status": "False"}),
        "status.conditions[1]",
        'Duplicate value: type "Approved"',
        id="two-conditions-of-one-type",
    ),
    pytest.param(
        approval_status("Approved"),
        "status.conditions[0]",
        "must be of type object",
        id="a-condition-given-as-a-string",
    ),
]


@pytest.mark.parametrize(("manifest", "path", "fragment"), INVALID_STATUS)
def test_it_refuses_a_malformed_status_write(manifest, path, fragment):
    with pytest.raises(Invalid) as caught:
        validate_status(KINDS["ClusterApprovalRequest"], manifest)
    assert f"{path}: " in str(caught.value) and fragment in str(caught.value)
