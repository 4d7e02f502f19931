"""Validation of manifests: the vendored CRDs' OpenAPI schema and CEL rules
(api/crds), plus the webhook and Fleet UI checks the CRDs do not express,
with messages that name the field path as the API server's do.

validate(kind, manifest, old) raises errors.Invalid; old is the stored
object's manifest on update, None on create. validate_status(kind, manifest)
checks a write to the status subresource.

It works the way the API server validates a custom resource:
1. the object is prepared as the API server does: nulls pruned, the schema's
   defaults applied (to a copy: Fleet UI stores what was applied);
2. the CRD's OpenAPI schema (types, required fields, enums, patterns, sizes,
   unknown fields refused as kubectl's default --validate=strict does),
   checked with jsonschema (validation.openapi);
3. the CRD's CEL rules, in Python (validation.cel), on update with the old
   object for the transition rules; a rule skips a part that failed step 2;
4. the checks KubeFleet makes in its webhook or controller and Fleet UI's own
   (label selectors, approval policies, health gates, snapshots never edited).
Every problem is collected, so one apply reports them all. Both functions are
total: any JSON-like input gives None or Invalid, never another exception.
No database access: callers may validate before they open a transaction.
"""

import json

from .. import approval_policy, crds, health_gate
from ..errors import Invalid
from ..kinds import Kind
from . import cel, openapi
from .formats import dns_label_problem, subdomain_problem
from .nodes import Causes, child, invalid, name_of, rule_failed
from .schemas import CONFIG_MAP, LABEL_SELECTOR, METADATA, SECRET, STATUS

# --- the CRD: schema and CEL rules ------------------------------------------------------

_RUN_KINDS = ("ClusterStagedUpdateRun", "StagedUpdateRun")
# Fleet UI runs a run without spec.state at once (compatibility.md): the CRD's
# default (Initialize) would make every such run wait.
_NOT_DEFAULTED = {kind: frozenset({"spec.state"}) for kind in _RUN_KINDS}


# Fleet UI's simulated members have no identity (no agent logs in as anyone),
# so a MemberCluster may omit what KubeFleet requires of a real one.
_NOT_REQUIRED = {"MemberCluster": {"spec", "spec.identity"}}


def _version_of(manifest: dict) -> str | None:
    api_version = manifest.get("apiVersion")
    return api_version.rpartition("/")[2] if isinstance(api_version, str) else None


def _normalized(kind: Kind, manifest: dict) -> dict:
    """What KubeFleet's Go types make of a run's spec: an empty state is no
    state, and resourceSnapshotIndex (no omitempty) is always there, "" when unset."""
    spec = manifest.get("spec")
    if kind.kind not in _RUN_KINDS or not isinstance(spec, dict):
        return manifest
    spec = {k: v for k, v in spec.items() if not (k == "state" and v == "")}
    if spec.get("resourceSnapshotIndex") is None:
        spec["resourceSnapshotIndex"] = ""
    return {**manifest, "spec": spec}


def _prepared(kind: Kind, schema: dict, manifest: dict) -> dict:
    body = {k: v for k, v in _normalized(kind, manifest).items() if k != "status"}
    return openapi.prepare(body, schema, _NOT_DEFAULTED.get(kind.kind, frozenset()))


def _check_crd(kind: Kind, manifest: dict, old: dict | None, causes: Causes) -> list[str]:
    """Steps 1–3 for a kind with a vendored CRD; the paths with schema problems."""
    crd = crds.crd_for(kind.group, kind.kind)
    if crd is None:
        return []
    version = crd.version(_version_of(manifest))
    obj = _prepared(kind, version.schema, manifest)
    before = _prepared(kind, version.schema, old) if old is not None else None
    # metadata has its own, stricter checks (below); the CRD only says "object".
    found: Causes = []
    bad = openapi.check(version.schema, {k: v for k, v in obj.items() if k != "metadata"}, found)
    optional = _NOT_REQUIRED.get(kind.kind, set())
    causes.extend(c for c in found if not (c[0] in optional and c[1] == "Required value"))
    cel.evaluate(version.cel_rules, obj, before, bad, causes)
    return bad


# --- step 4: what the CRDs do not say -----------------------------------------------------


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


def _under(path: str, bad: list[str]) -> bool:
    return any(b == path or b.startswith((f"{path}.", f"{path}[")) for b in bad)


def _label_selectors(value, path: str):
    """(selector, path) for every `labelSelector` object under value."""
    if isinstance(value, dict):
        for name, item in value.items():
            where = child(path, name)
            if name == "labelSelector" and isinstance(item, dict):
                yield item, where
            else:
                yield from _label_selectors(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _label_selectors(item, f"{path}[{index}]")


# The kinds whose own fields hold label selectors (a resource snapshot's
# selectedResources may hold anything, selectors of other APIs included).
_SELECTING_KINDS = {
    "ClusterStagedUpdateStrategy", "StagedUpdateStrategy", "ClusterResourcePlacement",
    "ResourcePlacement", "ClusterSchedulingPolicySnapshot", "SchedulingPolicySnapshot",
}  # fmt: skip


def _check_label_selectors(spec, bad: list[str], causes: Causes) -> None:
    """Label keys, values and operators as the API server's label selector
    parsing checks them (KubeFleet rejects a bad one at initialization)."""
    for selector, path in _label_selectors(spec, "spec"):
        if not _under(path, bad):
            LABEL_SELECTOR.check(selector, path, causes)


def _check_strategy(manifest: dict, old: dict | None, causes: Causes) -> None:
    """Fleet UI's approval-policy and health-gate annotations
    (api.approval_policy, api.health_gate)."""
    causes.extend(approval_policy.problems(manifest))
    causes.extend(health_gate.problems(manifest))


# PickFixed with no cluster names places nothing: refused (Fleet UI's check).
_NEEDED_BY_TYPE = {"PickFixed": "clusterNames"}


def _check_placement(manifest: dict, old: dict | None, causes: Causes) -> None:
    spec = _spec_of(manifest)
    policy, strategy = spec.get("policy"), spec.get("strategy")
    placement_type = policy.get("placementType") if isinstance(policy, dict) else None
    if isinstance(placement_type, str) and (needed := _NEEDED_BY_TYPE.get(placement_type)):
        if policy.get(needed) in (None, []):
            message = f"Required value: {needed} is required for policy type {placement_type}"
            causes.append((f"spec.policy.{needed}", message))
    if isinstance(strategy, dict) and strategy.get("type") == "External":
        if strategy.get("rollingUpdate") is not None:  # KubeFleet's placement webhook
            message = "Forbidden: rollingUpdate config is not allowed with External rollout strategy type"
            causes.append(("spec.strategy.rollingUpdate", message))
    if old is not None:
        _check_placement_update(spec, _spec_of(old), causes)


def _check_placement_update(spec: dict, old_spec: dict, causes: Causes) -> None:
    """The CEL rules see a policy or strategy only when both versions have one;
    KubeFleet's Go clients always send them, defaulted. kubectl may omit one:
    then the default stands for it here (absent policy = PickAll, absent
    strategy = RollingUpdate)."""
    if spec.get("policy") is None or old_spec.get("policy") is None:
        new_type, old_type = (
            _defaulted(s, "policy", "placementType", "PickAll") for s in (spec, old_spec)
        )
        if isinstance(new_type, str) and new_type != old_type and isinstance(old_type, str):
            causes.append(
                ("spec.policy.placementType", rule_failed(new_type, "placement type is immutable"))
            )
    if not isinstance(spec.get("strategy"), dict) or spec["strategy"].get("type") is None:
        if _defaulted(old_spec, "strategy", "type", "RollingUpdate") == "External":
            message = "cannot change rollout strategy type from 'External' to other types"
            causes.append(("spec.strategy.type", rule_failed("RollingUpdate", message)))


# KubeFleet's binding states (a Go enum the CRD does not list; its controllers check it).
_BINDING_STATES = ("Scheduled", "Bound", "Unscheduled")


def _check_binding(manifest: dict, old: dict | None, causes: Causes) -> None:
    state = _spec_of(manifest).get("state")
    if isinstance(state, str) and state not in _BINDING_STATES:
        supported = ", ".join(json.dumps(s) for s in _BINDING_STATES)
        causes.append(("spec.state", f"Unsupported value: {json.dumps(state)}: supported values: {supported}"))


def _check_snapshot(manifest: dict, old: dict | None, causes: Causes) -> None:
    """Snapshots are written once by their controller and never edited."""
    if old is not None and _differs(manifest.get("spec") or {}, old.get("spec") or {}):
        causes.append(("spec", rule_failed(manifest.get("spec"), "spec is immutable")))


def _top_level_checker(schema):
    """Core kinds keep their data at the top level (ConfigMap.data)."""

    def check(manifest: dict, old: dict | None, causes: Causes) -> None:
        schema.check_value(manifest, "", causes)

    return check


_FLEET_CHECKS = {
    "ClusterStagedUpdateStrategy": _check_strategy,
    "StagedUpdateStrategy": _check_strategy,
    "ClusterResourcePlacement": _check_placement,
    "ResourcePlacement": _check_placement,
    "ClusterResourceBinding": _check_binding,
    "ResourceBinding": _check_binding,
    "ClusterResourceSnapshot": _check_snapshot,
    "ResourceSnapshot": _check_snapshot,
    "ClusterSchedulingPolicySnapshot": _check_snapshot,
    "SchedulingPolicySnapshot": _check_snapshot,
}
_CORE_CHECKS = {"ConfigMap": _top_level_checker(CONFIG_MAP), "Secret": _top_level_checker(SECRET)}


def _check_kind(kind: Kind, manifest: dict, old: dict | None, causes: Causes) -> None:
    """The CRD's rules and the kind's own; only metadata rules for kinds
    without any (instances of CRDs applied to the hub)."""
    if kind.is_fleet:
        bad = _check_crd(kind, manifest, old, causes)
        if kind.kind in _SELECTING_KINDS:
            _check_label_selectors(manifest.get("spec"), bad, causes)
        if check := _FLEET_CHECKS.get(kind.kind):
            check(manifest, old, causes)
    elif kind.group == "" and (check := _CORE_CHECKS.get(kind.kind)):
        check(manifest, old, causes)


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
    """Raise Invalid with every cause once (a CEL rule and the check that
    covers what kubectl may omit can both see one change), each forced onto
    one line (the CLI prints one line)."""
    if not causes:
        return
    name = name_of(manifest)
    shown = json.dumps(name)[1:-1] if isinstance(name, str) else ""
    lines = [(_one_line(path), _one_line(message)) for path, message in causes]
    raise Invalid(kind.kind, shown, list(dict.fromkeys(lines)))


def validate(kind: Kind, manifest: dict, old: dict | None = None) -> None:
    """Raise Invalid naming every problem of `manifest` (and of the change from
    `old`, the stored object, on update). status is not looked at: apply ignores it."""
    if not isinstance(manifest, dict):
        _fail_if_any(kind, None, [("", rule_failed(manifest, "a manifest must be an object"))])
    causes: Causes = []
    _check_metadata(kind, manifest, causes)
    _check_kind(kind, manifest, old if isinstance(old, dict) else None, causes)
    _fail_if_any(kind, manifest, causes)


def validate_status(kind: Kind, manifest: dict) -> None:
    """Raise Invalid when a status write carries malformed conditions."""
    if not isinstance(manifest, dict):
        _fail_if_any(kind, None, [("", rule_failed(manifest, "a manifest must be an object"))])
    causes: Causes = []
    if manifest.get("status") is not None:
        STATUS.check(manifest["status"], "status", causes)
    _fail_if_any(kind, manifest, causes)
