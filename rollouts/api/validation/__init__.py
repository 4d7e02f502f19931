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

import json

from .. import approval_policy, health_gate
from ..errors import Invalid
from ..kinds import Kind
from .formats import dns_label_problem, subdomain_problem
from .nodes import Causes, Obj, invalid, name_of, rule_failed
from .schemas import (
    APPROVAL_SPEC,
    BINDING_SPEC,
    CONFIG_MAP,
    DENIED_TRANSITIONS,
    MEMBER_CLUSTER_SPEC,
    METADATA,
    PLACEMENT_SPEC,
    PLACEMENT_TYPES,
    POLICY_SNAPSHOT_SPEC,
    RESOURCE_SNAPSHOT_SPEC,
    RUN_IMMUTABLE,
    RUN_SPEC,
    RUN_STATES,
    SECRET,
    STATUS,
    STRATEGY_SPEC,
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
    name = name_of(manifest)
    if isinstance(name, str) and len(name) > 63:
        causes.append(("metadata.name", rule_failed(name, "metadata.name max length is 63")))
    _check_spec(manifest, RUN_SPEC, causes)
    if old is not None:
        _check_run_update(_spec_of(manifest), _spec_of(old), causes)


def _check_run_update(spec: dict, old_spec: dict, causes: Causes) -> None:
    for name, default in RUN_IMMUTABLE.items():
        new = default if spec.get(name) is None else spec[name]
        before = default if old_spec.get(name) is None else old_spec[name]
        if isinstance(new, str) and new != before:
            causes.append((f"spec.{name}", rule_failed(new, f"{name} is immutable")))
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
    if (before, after) in DENIED_TRANSITIONS:
        note = " (a run without spec.state runs from creation)" if old is None or old == "" else ""
        message = f"invalid state transition: cannot transition from {before} to {after}{note}"
        causes.append(("spec.state", rule_failed(new, message)))


def _check_strategy(manifest: dict, old: dict | None, causes: Causes) -> None:
    """§2.2: the strategy may change at any time; only its schema and CEL rules
    apply. Plus Fleet UI's approval-policy and health-gate annotations
    (api.approval_policy, api.health_gate)."""
    _check_spec(manifest, STRATEGY_SPEC, causes)
    causes.extend(approval_policy.problems(manifest))
    causes.extend(health_gate.problems(manifest))


def _check_approval(manifest: dict, old: dict | None, causes: Causes) -> None:
    """§2.3: two required names, and the whole spec immutable once created."""
    _check_spec(manifest, APPROVAL_SPEC, causes)
    if old is not None and _differs(manifest.get("spec"), old.get("spec")):
        causes.append(("spec", rule_failed(manifest.get("spec"), "The spec field is immutable")))


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
            ("spec.policy.placementType", rule_failed(new_type, "placement type is immutable"))
        )
    new_rollout, old_rollout = (
        _defaulted(s, "strategy", "type", "RollingUpdate") for s in (spec, old_spec)
    )
    if old_rollout == "External" and new_rollout == "RollingUpdate":
        message = "cannot change rollout strategy type from 'External' to other types"
        causes.append(("spec.strategy.type", rule_failed(new_rollout, message)))


def _check_placement_fields_kept(spec: dict, old_spec: dict, causes: Causes) -> None:
    """Two more CRD rules: a policy once set stays, and so does statusReportingScope."""
    if old_spec.get("policy") is not None and spec.get("policy") is None:
        causes.append(("spec.policy", rule_failed(spec, "policy cannot be removed once set")))
    scope, old_scope = spec.get("statusReportingScope"), old_spec.get("statusReportingScope")
    if old_scope is not None and isinstance(scope, str) and scope != old_scope:
        message = "statusReportingScope is immutable"
        causes.append(("spec.statusReportingScope", rule_failed(scope, message)))


def _check_member_cluster(manifest: dict, old: dict | None, causes: Causes) -> None:
    _check_spec(manifest, MEMBER_CLUSTER_SPEC, causes, required=False)


def _immutable_spec_checker(schema: Obj):
    """Snapshots are written once by their controller and never edited."""

    def check(manifest: dict, old: dict | None, causes: Causes) -> None:
        _check_spec(manifest, schema, causes, required=False)
        if old is not None and _differs(manifest.get("spec") or {}, old.get("spec") or {}):
            causes.append(("spec", rule_failed(manifest.get("spec"), "spec is immutable")))

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
    name_problem = dns_label_problem if _is_namespace_kind(kind) else subdomain_problem
    if isinstance(name, str) and (problem := name_problem(name)):
        causes.append(("metadata.name", invalid(name, problem)))


def _check_namespace_field(kind: Kind, meta: dict, causes: Causes) -> None:
    namespace = meta.get("namespace")
    if not isinstance(namespace, str) or namespace == "":
        return
    if _is_namespace_kind(kind):
        causes.append(("metadata.namespace", "Forbidden: not allowed on this type"))
    elif problem := dns_label_problem(namespace):
        causes.append(("metadata.namespace", invalid(namespace, problem)))


# --- entry points -----------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _fail_if_any(kind: Kind, manifest, causes: Causes) -> None:
    """Raise Invalid with every cause, each forced onto one line (the CLI prints one line)."""
    if not causes:
        return
    name = name_of(manifest)
    shown = json.dumps(name)[1:-1] if isinstance(name, str) else ""
    raise Invalid(
        kind.kind, shown, [(_one_line(path), _one_line(message)) for path, message in causes]
    )


def validate(kind: Kind, manifest: dict, old: dict | None = None) -> None:
    """Raise Invalid naming every problem of `manifest` (and of the change from
    `old`, the stored object, on update). status is not looked at: apply ignores it."""
    if not isinstance(manifest, dict):
        _fail_if_any(kind, None, [("", rule_failed(manifest, "a manifest must be an object"))])
    causes: Causes = []
    _check_metadata(kind, manifest, causes)
    if check := _kind_checks(kind):
        check(manifest, old if isinstance(old, dict) else None, causes)
    _fail_if_any(kind, manifest, causes)


def validate_status(kind: Kind, manifest: dict) -> None:
    """Raise Invalid when a status write carries malformed conditions."""
    if not isinstance(manifest, dict):
        _fail_if_any(kind, None, [("", rule_failed(manifest, "a manifest must be an object"))])
    causes: Causes = []
    if manifest.get("status") is not None:
        STATUS.check(manifest["status"], "status", causes)
    _fail_if_any(kind, manifest, causes)
