"""The schemas and CEL rules of every kind (staged-update-semantics.md §2–3),
and of the core kinds the tutorial uses."""


from ..labels import selector_problem
from .formats import (
    annotation_key_problem,
    config_key_problem,
    date_time_problem,
    label_value_problem,
    qualified_name_problem,
)
from .nodes import (
    Base64,
    Bool,
    Causes,
    Int,
    IntOrStr,
    ListOf,
    MapOf,
    Obj,
    Str,
    child,
    rule_failed,
    show,
)

# --- shared schemas ----------------------------------------------------------


def _expression_rule(expression: dict, path: str, causes: Causes) -> None:
    if problem := selector_problem({"matchExpressions": [expression]}):
        causes.append((path, problem))


LABEL_SELECTOR = Obj(
    {
        "matchLabels": MapOf(Str(check_fn=label_value_problem), key_fn=qualified_name_problem),
        "matchExpressions": ListOf(
            Obj(
                {
                    "key": Str(check_fn=qualified_name_problem),
                    "operator": Str(enum=("In", "NotIn", "Exists", "DoesNotExist")),
                    "values": ListOf(Str()),
                },
                required=("key", "operator"),
                rules=(_expression_rule,),
            )
        ),
    }
)

METADATA = Obj(
    {
        "name": Str(),
        "generateName": Str(),
        "namespace": Str(),
        "labels": MapOf(Str(check_fn=label_value_problem), key_fn=qualified_name_problem),
        "annotations": MapOf(Str(), key_fn=annotation_key_problem, max_bytes=256 * 1024),
        "finalizers": ListOf(Str()),
        "ownerReferences": ListOf(Obj()),
    }
)

CONDITION = Obj(
    {
        "type": Str(max_len=316),
        "status": Str(enum=("True", "False", "Unknown")),
        "reason": Str(max_len=1024),
        "message": Str(max_len=32768),
        "observedGeneration": Int(minimum=0),
        "lastTransitionTime": Str(check_fn=date_time_problem),
    },
    required=("type", "status"),
)


def _unique_condition_types(status: dict, path: str, causes: Causes) -> None:
    """Conditions are a list-map keyed by type: one entry per type."""
    seen = set()
    for index, condition in enumerate(status.get("conditions") or []):
        if condition["type"] in seen:
            message = f"Duplicate value: type {show(condition['type'])}"
            causes.append((f"{path}.conditions[{index}]", message))
        seen.add(condition["type"])


STATUS = Obj({"conditions": ListOf(CONDITION)}, rules=(_unique_condition_types,))

# --- staged update strategies (§2.2) ------------------------------------------

DURATION = r"^(?:(?:0|[1-9][0-9]*)(\.[0-9]+)?(?:s|m|h))+$"
TASK_TYPES = ("TimedWait", "Approval")


def _approval_has_no_wait_time(task: dict, path: str, causes: Causes) -> None:
    # The CRD says "AfterStageTaskType" for before-stage tasks too (sic, §2.2).
    if task.get("type") == "Approval" and task.get("waitTime") is not None:
        message = "AfterStageTaskType is Approval, waitTime is not allowed"
        causes.append((path, rule_failed(task, message)))


def _timed_wait_has_wait_time(task: dict, path: str, causes: Causes) -> None:
    if task.get("type") == "TimedWait" and task.get("waitTime") is None:
        message = "AfterStageTaskType is TimedWait, waitTime is required"
        causes.append((path, rule_failed(task, message)))


def _before_task_is_not_timed_wait(task: dict, path: str, causes: Causes) -> None:
    if task.get("type") == "TimedWait":
        causes.append((path, rule_failed(task, "BeforeStageTaskType cannot be TimedWait")))


def _stage_task(*rules) -> Obj:
    fields = {"type": Str(enum=TASK_TYPES), "waitTime": Str(pattern=DURATION)}
    return Obj(fields, required=("type",), closed=True, rules=rules)


# Two after tasks of one type, or a TimedWait of 0s, pass here: the run's
# initialization rejects them (§3), as KubeFleet does.
STAGE = Obj(
    {
        "name": Str(max_len=63, pattern=r"^[a-z0-9]+$"),
        "labelSelector": LABEL_SELECTOR,
        "sortingLabelKey": Str(),
        "maxConcurrency": IntOrStr(r"^(100|[1-9][0-9]?)%$", 1, "maxConcurrency must be at least 1"),
        "beforeStageTasks": ListOf(
            _stage_task(_before_task_is_not_timed_wait, _approval_has_no_wait_time), max_items=1
        ),
        "afterStageTasks": ListOf(
            _stage_task(_approval_has_no_wait_time, _timed_wait_has_wait_time), max_items=2
        ),
    },
    required=("name",),
    closed=True,
)

STRATEGY_SPEC = Obj({"stages": ListOf(STAGE, max_items=31)}, required=("stages",), closed=True)

# --- staged update runs (§2.1) ---------------------------------------------------

RUN_STATES = ("Initialize", "Run", "Stop")
RUN_SPEC = Obj(
    {
        "placementName": Str(max_len=255),
        "resourceSnapshotIndex": Str(),
        "stagedRolloutStrategyName": Str(),
        # "" is accepted: the CRD defaults it; here it means "no state", like absent.
        "state": Str(enum=(*RUN_STATES, "")),
    },
    required=("placementName", "stagedRolloutStrategyName"),
    closed=True,
)
# Immutable run fields and the value an absent one stands for.
RUN_IMMUTABLE = {
    "placementName": None,
    "resourceSnapshotIndex": "",
    "stagedRolloutStrategyName": None,
}
DENIED_TRANSITIONS = {("Initialize", "Stop"), ("Run", "Initialize"), ("Stop", "Initialize")}

# --- approval requests (§2.3) ----------------------------------------------------

APPROVAL_SPEC = Obj(
    {"parentStageRollout": Str(), "targetStage": Str()},
    required=("parentStageRollout", "targetStage"),
    closed=True,
)

# --- placements (§2.5 and KubeFleet's placement webhook) ---------------------------------

PLACEMENT_TYPES = ("PickAll", "PickN", "PickFixed")
# Which policy fields each placement type forbids or needs.
_FORBIDDEN_BY_TYPE = {
    "PickAll": ("numberOfClusters", "clusterNames", "topologySpreadConstraints"),
    "PickN": ("clusterNames",),
    "PickFixed": ("numberOfClusters", "affinity", "topologySpreadConstraints"),
}
_NEEDED_BY_TYPE = {"PickN": ("numberOfClusters",), "PickFixed": ("clusterNames",)}


def _name_xor_label_selector(selector: dict, path: str, causes: Causes) -> None:
    if selector.get("name") and selector.get("labelSelector") is not None:
        message = "the labelSelector and name fields are mutually exclusive"
        causes.append((path, rule_failed(selector, message)))


def _policy_fits_type(policy: dict, path: str, causes: Causes) -> None:
    kind = policy.get("placementType") or "PickAll"
    for name in _FORBIDDEN_BY_TYPE[kind]:
        if policy.get(name) not in (None, [], {}):
            message = f"Forbidden: {name} must not be set for policy type {kind}"
            causes.append((child(path, name), message))
    for name in _NEEDED_BY_TYPE.get(kind, ()):
        if policy.get(name) in (None, []):
            message = f"Required value: {name} is required for policy type {kind}"
            causes.append((child(path, name), message))


def _one_namespace_when_namespace_accessible(spec: dict, path: str, causes: Causes) -> None:
    # The status copy lives in that one namespace, so there must be exactly one.
    namespaces = [s for s in spec["resourceSelectors"] if s.get("kind") == "Namespace"]
    if spec.get("statusReportingScope") == "NamespaceAccessible" and len(namespaces) != 1:
        message = (
            "when statusReportingScope is NamespaceAccessible, "
            "exactly one resourceSelector with kind 'Namespace' is required"
        )
        causes.append((path, rule_failed(spec, message)))


def _external_has_no_rolling_update(strategy: dict, path: str, causes: Causes) -> None:
    if strategy.get("type") == "External" and strategy.get("rollingUpdate") is not None:
        message = (
            "Forbidden: rollingUpdate config is not allowed with External rollout strategy type"
        )
        causes.append((child(path, "rollingUpdate"), message))


CLUSTER_SELECTOR_TERM = Obj(
    {"labelSelector": LABEL_SELECTOR, "propertySelector": Obj(), "propertySorter": Obj()}
)
AFFINITY = Obj(
    {
        "clusterAffinity": Obj(
            {
                "requiredDuringSchedulingIgnoredDuringExecution": Obj(
                    {"clusterSelectorTerms": ListOf(CLUSTER_SELECTOR_TERM, max_items=10)},
                    required=("clusterSelectorTerms",),
                ),
                "preferredDuringSchedulingIgnoredDuringExecution": ListOf(
                    Obj(
                        {"weight": Int(-100, 100), "preference": CLUSTER_SELECTOR_TERM},
                        required=("weight", "preference"),
                    )
                ),
            }
        )
    }
)
POLICY = Obj(
    {
        "placementType": Str(enum=PLACEMENT_TYPES),
        "clusterNames": ListOf(Str(), max_items=100),
        "numberOfClusters": Int(minimum=0),
        "affinity": AFFINITY,
        "topologySpreadConstraints": ListOf(Obj()),
        "tolerations": ListOf(Obj(), max_items=100),
    },
    rules=(_policy_fits_type,),
)
APPLY_STRATEGY = Obj(
    {
        "type": Str(enum=("ClientSideApply", "ServerSideApply", "ReportDiff")),
        "comparisonOption": Str(enum=("PartialComparison", "FullComparison")),
        "whenToApply": Str(enum=("Always", "IfNotDrifted")),
        "whenToTakeOver": Str(enum=("Always", "IfNoDiff", "Never")),
        "allowCoOwnership": Bool(),
        "serverSideApplyConfig": Obj({"force": Bool()}),
    }
)
_PERCENT_OR_COUNT = r"^((100|[0-9]{1,2})%|[0-9]+)$"
ROLLOUT_STRATEGY = Obj(
    {
        "type": Str(enum=("RollingUpdate", "External")),
        "rollingUpdate": Obj(
            {
                "maxUnavailable": IntOrStr(_PERCENT_OR_COUNT, 0),
                "maxSurge": IntOrStr(_PERCENT_OR_COUNT, 0),
                "unavailablePeriodSeconds": Int(minimum=0),
            }
        ),
        "applyStrategy": APPLY_STRATEGY,
    },
    rules=(_external_has_no_rolling_update,),
)
RESOURCE_SELECTOR = Obj(
    {
        "group": Str(),
        "version": Str(),
        "kind": Str(),
        "name": Str(),
        "labelSelector": LABEL_SELECTOR,
        "selectionScope": Str(enum=("NamespaceOnly", "NamespaceWithResources")),
    },
    required=("version", "kind"),
    rules=(_name_xor_label_selector,),
)
PLACEMENT_SPEC = Obj(
    {
        "resourceSelectors": ListOf(RESOURCE_SELECTOR, min_items=1, max_items=100),
        "policy": POLICY,
        "strategy": ROLLOUT_STRATEGY,
        "revisionHistoryLimit": Int(1, 1000),
        "statusReportingScope": Str(enum=("ClusterScopeOnly", "NamespaceAccessible")),
    },
    required=("resourceSelectors",),
    closed=True,
    rules=(_one_namespace_when_namespace_accessible,),
)

# --- member clusters, snapshots, bindings ------------------------------------------

MEMBER_CLUSTER_SPEC = Obj({"identity": Obj(), "heartbeatPeriodSeconds": Int(1, 600)})
RESOURCE_SNAPSHOT_SPEC = Obj({"selectedResources": ListOf(Obj())})
POLICY_SNAPSHOT_SPEC = Obj({"policy": Obj(), "policyHash": Str()})
BINDING_SPEC = Obj(
    {
        "targetCluster": Str(),
        "state": Str(enum=("Scheduled", "Bound", "Unscheduled")),
        "resourceSnapshotName": Str(),
        "schedulingPolicySnapshotName": Str(),
        "clusterDecision": Obj(),
        "applyStrategy": APPLY_STRATEGY,
        "resourceOverrideSnapshots": ListOf(Obj()),
        "clusterResourceOverrideSnapshots": ListOf(Str()),
    },
    required=("targetCluster",),
)

# --- core kinds: checked on the whole manifest ---------------------------------

CONFIG_MAP = Obj(
    {
        "data": MapOf(Str(), key_fn=config_key_problem),
        "binaryData": MapOf(Base64(), key_fn=config_key_problem),
    }
)
SECRET = Obj(
    {
        "data": MapOf(Base64(), key_fn=config_key_problem),
        "stringData": MapOf(Str(), key_fn=config_key_problem),
        "type": Str(),
    }
)

