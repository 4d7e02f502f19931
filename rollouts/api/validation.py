"""Validation of manifests: the OpenAPI schema and CEL rules of the CRDs
(staged-update-semantics.md §2–3), with messages that name the field path.

validate(kind, manifest, old) raises errors.Invalid; old is the stored
object's manifest on update, None on create. validate_status(kind, manifest)
checks a write to the status subresource.

It works the way the API server validates a custom resource:
1. the schema (types, required fields, enums, patterns, sizes), declared
   below as small schema nodes that read like the CRD;
2. the CEL rules and webhook checks, as functions over an object whose own
   fields already passed the schema, so they never meet a wrong type;
3. the update rules (immutable fields, state transitions), comparing with old.
Every problem is collected, so one apply reports them all. Both functions are
total: any JSON-like input gives None or Invalid, never another exception.
No database access: callers may validate before they open a transaction.
"""

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from . import approval_policy
from .errors import Invalid
from .kinds import Kind
from .labels import selector_problem

Causes = list[tuple[str, str]]

# --- how values and paths are shown -----------------------------------------

_PLAIN_FIELD = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./-]+")


# bool before int: True is an int to Python, a boolean to JSON.
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))
_JSON_TYPES += ((list, "array"), (dict, "object"))


def _type_of(value) -> str:
    """The OpenAPI type name of a JSON value, as the API server reports it."""
    for py_type, name in _JSON_TYPES:
        if isinstance(value, py_type):
            return name
    return "null" if value is None else type(value).__name__


def _name_of(manifest):
    """metadata.name as given (any type), None when there is no metadata object."""
    meta = manifest.get("metadata") if isinstance(manifest, dict) else None
    return meta.get("name") if isinstance(meta, dict) else None


_SHOWN_CHARS = 128  # a pasted blob would otherwise fill the one-line error


def _show(value) -> str:
    """A scalar as JSON (quoted, escaped, one line, long strings cut); anything else by its type."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return json.dumps(value[:_SHOWN_CHARS] + "...")
    if isinstance(value, str | int | float | bool):
        try:
            return json.dumps(value)
        except ValueError:  # an int past Python's digit limit for str()
            pass
    return f'"{_type_of(value)}"'


def _child(path: str, name) -> str:
    """The path of an object field: `spec.stages`."""
    name = name if isinstance(name, str) else f"<{_type_of(name)}>"
    if not _PLAIN_FIELD.fullmatch(name):
        return f"{path}[{json.dumps(name)}]"
    return f"{path}.{name}" if path else name


def _entry(path: str, key) -> str:
    """The path of a map entry: `data[app.conf]`."""
    key = key if isinstance(key, str) else f"<{_type_of(key)}>"
    return f"{path}[{key}]" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _wrong_type(value, path: str, expected: str) -> str:
    return f'Invalid value: "{_type_of(value)}": {path} in body must be of type {expected}'


def _invalid(value, text: str) -> str:
    """A schema message about a value: `Invalid value: "a-b": <text>`."""
    return f"Invalid value: {_show(value)}: {text}"


def _rule_failed(value, message: str) -> str:
    """A CEL rule's message as the API server words it."""
    return f'Invalid value: "{_type_of(value)}": {message}'


# --- schema nodes ----------------------------------------------------------------


class _Node:
    """A piece of OpenAPI schema. check() appends what is wrong to causes."""

    json_type = "object"

    def accepts(self, value) -> bool:
        return isinstance(value, dict)

    def check(self, value, path: str, causes: Causes) -> None:
        if self.accepts(value):
            self.check_value(value, path, causes)
        else:
            causes.append((path, _wrong_type(value, path, self.json_type)))

    def check_value(self, value, path: str, causes: Causes) -> None:
        pass


class Anything(_Node):
    def accepts(self, value) -> bool:
        return True


@dataclass(frozen=True, eq=False)
class Str(_Node):
    """A string; `check_fn` returns a problem (str) or None for formats."""

    enum: tuple[str, ...] = ()
    max_len: int | None = None
    pattern: str | None = None
    check_fn: Callable[[str], str | None] | None = None
    json_type = "string"

    def accepts(self, value) -> bool:
        return isinstance(value, str)

    def check_value(self, value, path, causes):
        if self.enum and value not in self.enum:
            supported = ", ".join(json.dumps(v) for v in self.enum if v)
            causes.append(
                (path, f"Unsupported value: {_show(value)}: supported values: {supported}")
            )
            return
        if self.max_len is not None and len(value) > self.max_len:
            causes.append((path, f"Too long: may not be more than {self.max_len} characters"))
        if self.pattern and not re.fullmatch(self.pattern, value):
            causes.append((path, _invalid(value, f"{path} in body should match '{self.pattern}'")))
        if self.check_fn and (problem := self.check_fn(value)):
            causes.append((path, _invalid(value, problem)))


class Base64(Str):
    """Base64 data (Secret.data): the message never repeats the value, a secret."""

    def check_value(self, value, path, causes):
        try:
            base64.b64decode(value, validate=True)
        except ValueError:  # binascii.Error, and non-ASCII text
            causes.append((path, 'Invalid value: "string": illegal base64 data'))


@dataclass(frozen=True, eq=False)
class Int(_Node):
    minimum: int | None = None
    maximum: int | None = None
    json_type = "integer"

    def accepts(self, value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def check_value(self, value, path, causes):
        if self.minimum is not None and value < self.minimum:
            text = f"{path} in body should be greater than or equal to {self.minimum}"
            causes.append((path, _invalid(value, text)))
        if self.maximum is not None and value > self.maximum:
            text = f"{path} in body should be less than or equal to {self.maximum}"
            causes.append((path, _invalid(value, text)))


class Bool(_Node):
    json_type = "boolean"

    def accepts(self, value) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True, eq=False)
class IntOrStr(_Node):
    """x-kubernetes-int-or-string: an integer with a minimum, or a patterned string."""

    pattern: str
    minimum: int
    min_message: str | None = None  # a CEL message replaces the schema's
    json_type = "integer or string"

    def accepts(self, value) -> bool:
        return isinstance(value, str) or Int().accepts(value)

    def check_value(self, value, path, causes):
        if isinstance(value, str):
            Str(pattern=self.pattern).check_value(value, path, causes)
        elif value < self.minimum and self.min_message:
            causes.append((path, _rule_failed(value, self.min_message)))
        else:
            Int(minimum=self.minimum).check_value(value, path, causes)


@dataclass(frozen=True, eq=False)
class ListOf(_Node):
    item: _Node = field(default_factory=Anything)
    min_items: int = 0
    max_items: int | None = None
    json_type = "array"

    def accepts(self, value) -> bool:
        return isinstance(value, list)

    def check_value(self, value, path, causes):
        count = len(value)
        if count < self.min_items:
            text = f"{path} in body should have at least {self.min_items} items"
            causes.append((path, _invalid(count, text)))
        if self.max_items is not None and count > self.max_items:
            causes.append((path, f"Too many: {count}: must have at most {self.max_items} items"))
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]", causes)


@dataclass(frozen=True, eq=False)
class MapOf(_Node):
    """A map with string keys (checked by key_fn) and values of one schema."""

    value: _Node = field(default_factory=Anything)
    key_fn: Callable[[object], str | None] | None = None
    max_bytes: int | None = None

    def check_value(self, value, path, causes):
        for key, item in value.items():
            if self.key_fn and (problem := self.key_fn(key)):
                causes.append((path, _invalid(key, problem)))
            self.value.check(item, _entry(path, key), causes)
        if self.max_bytes is not None and _size(value) > self.max_bytes:
            causes.append((path, f"Too long: must have at most {self.max_bytes} bytes"))


@dataclass(frozen=True, eq=False)
class Obj(_Node):
    """An object. null counts as absent and "" as missing for a required field.
    `closed` rejects unknown fields (the API server would prune them silently;
    we refuse them so a typo surfaces). `rules` run only once the object's own
    subtree passed the schema, as CEL rules can rely on types."""

    fields: dict[str, _Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    closed: bool = False
    rules: tuple[Callable[[dict, str, Causes], None], ...] = ()

    def check_value(self, value, path, causes):
        before = len(causes)
        for name in self.required:
            if value.get(name) is None or value.get(name) == "":
                causes.append((_child(path, name), "Required value"))
        for name, item in value.items():
            schema = self.fields.get(name)
            if schema is None and self.closed:
                where = _child(path, name)
                causes.append((where, f"Invalid value: unknown field {json.dumps(where)}"))
            elif schema is not None and item is not None:
                schema.check(item, _child(path, name), causes)
        if len(causes) == before:
            for rule in self.rules:
                rule(value, path, causes)


def _size(mapping: dict) -> int:
    """Bytes of a string map's keys and values, as the 256 KiB annotation limit counts them."""
    strings = [s for pair in mapping.items() for s in pair if isinstance(s, str)]
    return sum(len(s.encode("utf-8", "surrogatepass")) for s in strings)


# --- formats: names, label keys and values, dates, base64 -----------------------------

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _subdomain_problem(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN.fullmatch(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
        )
    return None


def _dns_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS_LABEL.fullmatch(value):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
        )
    return None


def _qualified_name_problem(key) -> str | None:
    """Why `key` is not a `[prefix/]name` label key, or None."""
    if not isinstance(key, str):
        return "a key must be a string"
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "prefix part must be non-empty"
    if "/" in prefix:
        return (
            "a qualified name must be a name with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        )
    if prefix and (problem := _subdomain_problem(prefix)):
        return f"prefix part {problem}"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _LABEL_NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def _annotation_key_problem(key) -> str | None:
    # The API server checks annotation keys lower-cased: upper case is allowed.
    return _qualified_name_problem(key.lower() if isinstance(key, str) else key)


def _label_value_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if value and not _LABEL_NAME.fullmatch(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def _config_key_problem(key) -> str | None:
    valid = isinstance(key, str) and len(key) <= 253 and _CONFIG_KEY.fullmatch(key)
    if not valid or key.startswith(".."):
        return (
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name', or 'KEY_NAME', or 'key-name')"
        )
    return None


def _date_time_problem(value: str) -> str | None:
    if _RFC3339.fullmatch(value):
        try:
            datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
            return None
        except ValueError:
            pass
    return "must be an RFC 3339 date-time (e.g. 2025-01-02T15:04:05Z)"


# --- shared schemas ----------------------------------------------------------


def _expression_rule(expression: dict, path: str, causes: Causes) -> None:
    if problem := selector_problem({"matchExpressions": [expression]}):
        causes.append((path, problem))


LABEL_SELECTOR = Obj(
    {
        "matchLabels": MapOf(Str(check_fn=_label_value_problem), key_fn=_qualified_name_problem),
        "matchExpressions": ListOf(
            Obj(
                {
                    "key": Str(check_fn=_qualified_name_problem),
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
        "labels": MapOf(Str(check_fn=_label_value_problem), key_fn=_qualified_name_problem),
        "annotations": MapOf(Str(), key_fn=_annotation_key_problem, max_bytes=256 * 1024),
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
        "lastTransitionTime": Str(check_fn=_date_time_problem),
    },
    required=("type", "status"),
)


def _unique_condition_types(status: dict, path: str, causes: Causes) -> None:
    """Conditions are a list-map keyed by type: one entry per type."""
    seen = set()
    for index, condition in enumerate(status.get("conditions") or []):
        if condition["type"] in seen:
            message = f"Duplicate value: type {_show(condition['type'])}"
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
        causes.append((path, _rule_failed(task, message)))


def _timed_wait_has_wait_time(task: dict, path: str, causes: Causes) -> None:
    if task.get("type") == "TimedWait" and task.get("waitTime") is None:
        message = "AfterStageTaskType is TimedWait, waitTime is required"
        causes.append((path, _rule_failed(task, message)))


def _before_task_is_not_timed_wait(task: dict, path: str, causes: Causes) -> None:
    if task.get("type") == "TimedWait":
        causes.append((path, _rule_failed(task, "BeforeStageTaskType cannot be TimedWait")))


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
_RUN_IMMUTABLE = {
    "placementName": None,
    "resourceSnapshotIndex": "",
    "stagedRolloutStrategyName": None,
}
_DENIED_TRANSITIONS = {("Initialize", "Stop"), ("Run", "Initialize"), ("Stop", "Initialize")}

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
        causes.append((path, _rule_failed(selector, message)))


def _policy_fits_type(policy: dict, path: str, causes: Causes) -> None:
    kind = policy.get("placementType") or "PickAll"
    for name in _FORBIDDEN_BY_TYPE[kind]:
        if policy.get(name) not in (None, [], {}):
            message = f"Forbidden: {name} must not be set for policy type {kind}"
            causes.append((_child(path, name), message))
    for name in _NEEDED_BY_TYPE.get(kind, ()):
        if policy.get(name) in (None, []):
            message = f"Required value: {name} is required for policy type {kind}"
            causes.append((_child(path, name), message))


def _one_namespace_when_namespace_accessible(spec: dict, path: str, causes: Causes) -> None:
    # The status copy lives in that one namespace, so there must be exactly one.
    namespaces = [s for s in spec["resourceSelectors"] if s.get("kind") == "Namespace"]
    if spec.get("statusReportingScope") == "NamespaceAccessible" and len(namespaces) != 1:
        message = (
            "when statusReportingScope is NamespaceAccessible, "
            "exactly one resourceSelector with kind 'Namespace' is required"
        )
        causes.append((path, _rule_failed(spec, message)))


def _external_has_no_rolling_update(strategy: dict, path: str, causes: Causes) -> None:
    if strategy.get("type") == "External" and strategy.get("rollingUpdate") is not None:
        message = (
            "Forbidden: rollingUpdate config is not allowed with External rollout strategy type"
        )
        causes.append((_child(path, "rollingUpdate"), message))


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
        "data": MapOf(Str(), key_fn=_config_key_problem),
        "binaryData": MapOf(Base64(), key_fn=_config_key_problem),
    }
)
SECRET = Obj(
    {
        "data": MapOf(Base64(), key_fn=_config_key_problem),
        "stringData": MapOf(Str(), key_fn=_config_key_problem),
        "type": Str(),
    }
)

# --- per-kind checks ---------------------------------------------------------------


def _spec_of(manifest) -> dict:
    """The spec as an object, {} when it is absent or malformed (already reported)."""
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    return spec if isinstance(spec, dict) else {}


def _differs(new, old) -> bool:
    try:
        return new != old
    except RecursionError:  # absurdly deep input: treat it as a change
        return True


def _defaulted(spec: dict, section: str, name: str, default: str):
    """spec.<section>.<name> with its CRD default, None when malformed."""
    part = spec.get(section)
    if part is None:
        return default
    if not isinstance(part, dict):
        return None
    value = part.get(name)
    return default if value is None or value == "" else value


def _check_spec(manifest: dict, schema: Obj, causes: Causes, *, required: bool = True) -> None:
    spec = manifest.get("spec")
    if spec is None:
        if required:
            causes.append(("spec", "Required value"))
        return
    schema.check(spec, "spec", causes)


def _check_run(manifest: dict, old: dict | None, causes: Causes) -> None:
    """§2.1: a name under 64 characters, the spec schema, and on update three
    immutable fields and the state transition rules."""
    name = _name_of(manifest)
    if isinstance(name, str) and len(name) > 63:
        causes.append(("metadata.name", _rule_failed(name, "metadata.name max length is 63")))
    _check_spec(manifest, RUN_SPEC, causes)
    if old is not None:
        _check_run_update(_spec_of(manifest), _spec_of(old), causes)


def _check_run_update(spec: dict, old_spec: dict, causes: Causes) -> None:
    for name, default in _RUN_IMMUTABLE.items():
        new = default if spec.get(name) is None else spec[name]
        before = default if old_spec.get(name) is None else old_spec[name]
        if isinstance(new, str) and new != before:
            causes.append((f"spec.{name}", _rule_failed(new, f"{name} is immutable")))
    _check_transition(spec.get("state"), old_spec.get("state"), causes)


def _effective_state(state) -> str | None:
    # Fleet UI starts a run that has no spec.state at once (the legacy
    # behaviour the seed tutorial relies on, compatibility.md), so for the
    # transition rules no state means Run: absent→Stop is fine, absent→Initialize is not.
    if state is None or state == "":
        return "Run"
    return state if state in RUN_STATES else None


def _check_transition(new, old, causes: Causes) -> None:
    before, after = _effective_state(old), _effective_state(new)
    if (before, after) in _DENIED_TRANSITIONS:
        note = " (a run without spec.state runs from creation)" if old is None or old == "" else ""
        message = f"invalid state transition: cannot transition from {before} to {after}{note}"
        causes.append(("spec.state", _rule_failed(new, message)))


def _check_strategy(manifest: dict, old: dict | None, causes: Causes) -> None:
    """§2.2: the strategy may change at any time; only its schema and CEL rules
    apply. Plus Fleet UI's approval-policy annotation (api.approval_policy)."""
    _check_spec(manifest, STRATEGY_SPEC, causes)
    causes.extend(approval_policy.problems(manifest))


def _check_approval(manifest: dict, old: dict | None, causes: Causes) -> None:
    """§2.3: two required names, and the whole spec immutable once created."""
    _check_spec(manifest, APPROVAL_SPEC, causes)
    if old is not None and _differs(manifest.get("spec"), old.get("spec")):
        causes.append(("spec", _rule_failed(manifest.get("spec"), "The spec field is immutable")))


def _check_placement(manifest: dict, old: dict | None, causes: Causes) -> None:
    _check_spec(manifest, PLACEMENT_SPEC, causes)
    if old is not None:
        _check_placement_update(_spec_of(manifest), _spec_of(old), causes)


def _check_placement_update(spec: dict, old_spec: dict, causes: Causes) -> None:
    """The placement type never changes, and an External placement stays
    External (runs drive it; kubefleet v0.2+ CEL)."""
    _check_placement_fields_kept(spec, old_spec, causes)
    new_type, old_type = (
        _defaulted(s, "policy", "placementType", "PickAll") for s in (spec, old_spec)
    )
    if new_type in PLACEMENT_TYPES and old_type in PLACEMENT_TYPES and new_type != old_type:
        causes.append(
            ("spec.policy.placementType", _rule_failed(new_type, "placement type is immutable"))
        )
    new_rollout, old_rollout = (
        _defaulted(s, "strategy", "type", "RollingUpdate") for s in (spec, old_spec)
    )
    if old_rollout == "External" and new_rollout == "RollingUpdate":
        message = "cannot change rollout strategy type from 'External' to other types"
        causes.append(("spec.strategy.type", _rule_failed(new_rollout, message)))


def _check_placement_fields_kept(spec: dict, old_spec: dict, causes: Causes) -> None:
    """Two more CRD rules: a policy once set stays, and so does statusReportingScope."""
    if old_spec.get("policy") is not None and spec.get("policy") is None:
        causes.append(("spec.policy", _rule_failed(spec, "policy cannot be removed once set")))
    scope, old_scope = spec.get("statusReportingScope"), old_spec.get("statusReportingScope")
    if old_scope is not None and isinstance(scope, str) and scope != old_scope:
        message = "statusReportingScope is immutable"
        causes.append(("spec.statusReportingScope", _rule_failed(scope, message)))


def _check_member_cluster(manifest: dict, old: dict | None, causes: Causes) -> None:
    _check_spec(manifest, MEMBER_CLUSTER_SPEC, causes, required=False)


def _immutable_spec_checker(schema: Obj):
    """Snapshots are written once by their controller and never edited."""

    def check(manifest: dict, old: dict | None, causes: Causes) -> None:
        _check_spec(manifest, schema, causes, required=False)
        if old is not None and _differs(manifest.get("spec") or {}, old.get("spec") or {}):
            causes.append(("spec", _rule_failed(manifest.get("spec"), "spec is immutable")))

    return check


def _check_binding(manifest: dict, old: dict | None, causes: Causes) -> None:
    _check_spec(manifest, BINDING_SPEC, causes)


def _top_level_checker(schema: Obj):
    """Core kinds keep their data at the top level (ConfigMap.data)."""

    def check(manifest: dict, old: dict | None, causes: Causes) -> None:
        schema.check_value(manifest, "", causes)

    return check


_FLEET_CHECKS = {
    "ClusterStagedUpdateRun": _check_run,
    "StagedUpdateRun": _check_run,
    "ClusterStagedUpdateStrategy": _check_strategy,
    "StagedUpdateStrategy": _check_strategy,
    "ClusterApprovalRequest": _check_approval,
    "ApprovalRequest": _check_approval,
    "ClusterResourcePlacement": _check_placement,
    "ResourcePlacement": _check_placement,
    "MemberCluster": _check_member_cluster,
    "ClusterResourceSnapshot": _immutable_spec_checker(RESOURCE_SNAPSHOT_SPEC),
    "ResourceSnapshot": _immutable_spec_checker(RESOURCE_SNAPSHOT_SPEC),
    "ClusterSchedulingPolicySnapshot": _immutable_spec_checker(POLICY_SNAPSHOT_SPEC),
    "SchedulingPolicySnapshot": _immutable_spec_checker(POLICY_SNAPSHOT_SPEC),
    "ClusterResourceBinding": _check_binding,
    "ResourceBinding": _check_binding,
}
_CORE_CHECKS = {"ConfigMap": _top_level_checker(CONFIG_MAP), "Secret": _top_level_checker(SECRET)}


def _kind_checks(kind: Kind):
    """The kind's own rules; only metadata rules for kinds without any (CRD instances)."""
    table = _FLEET_CHECKS if kind.is_fleet else _CORE_CHECKS if kind.group == "" else {}
    return table.get(kind.kind)


# --- metadata ------------------------------------------------------------------


def _is_namespace_kind(kind: Kind) -> bool:
    return kind.group == "" and kind.kind == "Namespace"


def _check_metadata(kind: Kind, manifest: dict, causes: Causes) -> None:
    meta = manifest.get("metadata")
    if meta is None:
        causes.append(("metadata.name", "Required value: name is required"))
        return
    METADATA.check(meta, "metadata", causes)
    if isinstance(meta, dict):
        _check_name(kind, meta, causes)
        _check_namespace_field(kind, meta, causes)


def _check_name(kind: Kind, meta: dict, causes: Causes) -> None:
    if meta.get("generateName") is not None:
        message = "Forbidden: generateName is not supported by this hub; set metadata.name"
        causes.append(("metadata.generateName", message))
    name = meta.get("name")
    if name is None or name == "":
        causes.append(("metadata.name", "Required value: name is required"))
        return
    name_problem = _dns_label_problem if _is_namespace_kind(kind) else _subdomain_problem
    if isinstance(name, str) and (problem := name_problem(name)):
        causes.append(("metadata.name", _invalid(name, problem)))


def _check_namespace_field(kind: Kind, meta: dict, causes: Causes) -> None:
    namespace = meta.get("namespace")
    if not isinstance(namespace, str) or namespace == "":
        return
    if _is_namespace_kind(kind):
        causes.append(("metadata.namespace", "Forbidden: not allowed on this type"))
    elif problem := _dns_label_problem(namespace):
        causes.append(("metadata.namespace", _invalid(namespace, problem)))


# --- entry points -----------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _fail_if_any(kind: Kind, manifest, causes: Causes) -> None:
    """Raise Invalid with every cause, each forced onto one line (the CLI prints one line)."""
    if not causes:
        return
    name = _name_of(manifest)
    shown = json.dumps(name)[1:-1] if isinstance(name, str) else ""
    raise Invalid(
        kind.kind, shown, [(_one_line(path), _one_line(message)) for path, message in causes]
    )


def validate(kind: Kind, manifest: dict, old: dict | None = None) -> None:
    """Raise Invalid naming every problem of `manifest` (and of the change from
    `old`, the stored object, on update). status is not looked at: apply ignores it."""
    if not isinstance(manifest, dict):
        _fail_if_any(kind, None, [("", _rule_failed(manifest, "a manifest must be an object"))])
    causes: Causes = []
    _check_metadata(kind, manifest, causes)
    if check := _kind_checks(kind):
        check(manifest, old if isinstance(old, dict) else None, causes)
    _fail_if_any(kind, manifest, causes)


def validate_status(kind: Kind, manifest: dict) -> None:
    """Raise Invalid when a status write carries malformed conditions."""
    if not isinstance(manifest, dict):
        _fail_if_any(kind, None, [("", _rule_failed(manifest, "a manifest must be an object"))])
    causes: Causes = []
    if manifest.get("status") is not None:
        STATUS.check(manifest["status"], "status", causes)
    _fail_if_any(kind, manifest, causes)
