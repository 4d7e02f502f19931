"""The CEL rules (x-kubernetes-validations) of the vendored CRDs, in Python.

RULES maps each rule's message, as the CRD spells it, to a check
`(self, old) -> bool | str`: True when the rule holds, False when it fails, or
a string to say more than the message (the failure with a note). `self` is the
value at the rule's path (already past the schema, defaults applied); `old`
is the stored object's value there, given only for transition rules (those
that read `oldSelf`), which, as in the API server, run only on update and only
when the old object has the field too.

tests/test_crds.py fails when a vendored CRD has a rule whose message is not
here: a newer KubeFleet's new rule must be implemented before it is vendored.

evaluate() walks an object and applies every rule of its CRD version,
reporting a failure as the API server does: at the rule's path,
`Invalid value: "<type>": <message>`.
"""

from collections.abc import Callable, Iterator

from ..crds import CelRule
from .nodes import Causes, child, rule_failed

ABSENT = object()  # "oldSelf has no such field"

Check = Callable[[object, object], bool | str]


def _has(obj, name: str) -> bool:
    """CEL's has(): the field is present (an empty list or string counts)."""
    return isinstance(obj, dict) and obj.get(name) is not None


def _size(value) -> int:
    return len(value) if isinstance(value, str | list | dict) else 0


# --- runs ---------------------------------------------------------------------------------

# Fleet UI runs a run that has no spec.state from creation (the legacy
# behaviour the seed tutorial relies on, compatibility.md): for the transition
# rules an absent state is Run, so its CRD default (Initialize) is not applied.
RUN_STATES = ("Initialize", "Run", "Stop")


def effective_state(spec) -> str | None:
    state = spec.get("state") if isinstance(spec, dict) else None
    if state is None or state == "":
        return "Run"
    return state if state in RUN_STATES else None


def _transition(before: str, after: str) -> Check:
    def check(spec, old) -> bool | str:
        if (effective_state(old), effective_state(spec)) != (before, after):
            return True
        if not _has(old, "state") or old.get("state") == "":
            return f"invalid state transition: cannot transition from {before} to {after} (a run without spec.state runs from creation)"
        return False

    return check


def _name_shorter_than(limit: int) -> Check:
    def check(obj, _old) -> bool:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return not isinstance(name, str) or len(name) < limit

    return check


def _unchanged(value, old) -> bool:
    return value == old


def _no_task(wanted: str, *, with_wait: bool | None) -> Check:
    """None of the listed stage tasks is of type `wanted` (with/without waitTime)."""

    def check(tasks, _old) -> bool:
        for task in tasks if isinstance(tasks, list) else ():
            if isinstance(task, dict) and task.get("type") == wanted:
                if with_wait is None or _has(task, "waitTime") == with_wait:
                    return False
        return True

    return check


def _at_least_one(value, _old) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or value >= 1


# --- placements ---------------------------------------------------------------------------


def _namespace_selectors(spec: dict, *, with_resource_selectors: bool) -> list[dict]:
    found = []
    for selector in spec.get("resourceSelectors") or ():
        if not isinstance(selector, dict):
            continue
        core_namespace = (
            selector.get("kind") == "Namespace"
            and selector.get("group") == ""
            and selector.get("version") == "v1"
        )
        scoped = selector.get("selectionScope") == "NamespaceWithResourceSelectors"
        if core_namespace and (scoped or not with_resource_selectors):
            found.append(selector)
    return found


def _one_scoped_namespace(spec, _old) -> bool:
    return len(_namespace_selectors(spec, with_resource_selectors=True)) <= 1


def _scoped_namespace_by_name(spec, _old) -> bool:
    scoped = _namespace_selectors(spec, with_resource_selectors=True)
    by_name = [
        s for s in scoped if _size(s.get("name")) > 0 and not _has(s, "labelSelector")
    ]
    return not scoped or len(by_name) == 1


def _scoped_namespace_alone(spec, _old) -> bool:
    if not _namespace_selectors(spec, with_resource_selectors=True):
        return True
    return len(_namespace_selectors(spec, with_resource_selectors=False)) == 1


def _one_namespace_when_accessible(spec, _old) -> bool:
    if spec.get("statusReportingScope") != "NamespaceAccessible":
        return True
    selectors = [s for s in spec.get("resourceSelectors") or () if isinstance(s, dict)]
    return len([s for s in selectors if s.get("kind") == "Namespace"]) == 1


def _policy_kept(spec, old) -> bool:
    return not (_has(old, "policy") and not _has(spec, "policy"))


def _scope_kept(spec, old) -> bool:
    if not _has(old, "statusReportingScope"):
        return True
    return spec.get("statusReportingScope") == old["statusReportingScope"]


def _policy_allows(kind: str, forbidden: tuple[str, ...], needed: tuple[str, ...] = ()) -> Check:
    def check(policy, _old) -> bool:
        if policy.get("placementType") != kind:
            return True
        return not any(_has(policy, f) for f in forbidden) and all(_has(policy, f) for f in needed)

    return check


def _type_kept(policy, old) -> bool:
    # The stored object never met this schema check: it may be malformed.
    return not isinstance(old, dict) or policy.get("placementType") == old.get("placementType")


def _exists_has_no_value(tolerations, _old) -> bool:
    return all(
        t.get("operator") != "Exists" or _size(t.get("value")) == 0
        for t in tolerations
        if isinstance(t, dict)
    )


def _empty_key_means_exists(tolerations, _old) -> bool:
    return all(
        _size(t.get("key")) > 0 or t.get("operator") == "Exists"
        for t in tolerations
        if isinstance(t, dict)
    )


def _name_or_label_selector(selectors, _old) -> bool:
    return not any(
        _size(s.get("name")) > 0 and _has(s, "labelSelector")
        for s in selectors
        if isinstance(s, dict)
    )


def _stays_external(rollout_type, old) -> bool:
    return not (rollout_type != "External" and old == "External")


def _mirror_has_destination(strategy, _old) -> bool:
    return strategy.get("type") != "Mirror" or _size(strategy.get("destination")) != 0


# --- the registry: message -> check ------------------------------------------------------

RULES: dict[str, Check] = {
    # every kind with a name limit
    "metadata.name max length is 63": _name_shorter_than(64),
    "metadata.name max length is 127": _name_shorter_than(128),
    # runs (§2.1)
    "invalid state transition: cannot transition from Initialize to Stop": _transition("Initialize", "Stop"),
    "invalid state transition: cannot transition from Run to Initialize": _transition("Run", "Initialize"),
    "invalid state transition: cannot transition from Stop to Initialize": _transition("Stop", "Initialize"),
    "placementName is immutable": _unchanged,
    "resourceSnapshotIndex is immutable": _unchanged,
    "stagedRolloutStrategyName is immutable": _unchanged,
    # strategies (§2.2) and the run's copy of one
    "AfterStageTaskType is Approval, waitTime is not allowed": _no_task("Approval", with_wait=True),
    "AfterStageTaskType is TimedWait, waitTime is required": _no_task("TimedWait", with_wait=False),
    "BeforeStageTaskType cannot be TimedWait": _no_task("TimedWait", with_wait=None),
    "maxConcurrency must be at least 1": _at_least_one,
    # approval requests (§2.3), and v1alpha1 runs
    "The spec field is immutable": _unchanged,
    # placements
    "policy cannot be removed once set": _policy_kept,
    "when statusReportingScope is NamespaceAccessible, exactly one resourceSelector with kind 'Namespace' is required": _one_namespace_when_accessible,
    "statusReportingScope is immutable": _scope_kept,
    "only one namespace selector with NamespaceWithResourceSelectors mode is allowed": _one_scoped_namespace,
    "namespace selector with NamespaceWithResourceSelectors mode must select by name (not by label)": _scoped_namespace_by_name,
    "when using NamespaceWithResourceSelectors mode, only one namespace selector is allowed (cannot mix with other namespace selectors)": _scoped_namespace_alone,
    "placement type is immutable": _type_kept,
    "affinity, numberOfClusters, topologySpreadConstraints, and tolerations cannot be set when placementType is PickFixed": _policy_allows(
        "PickFixed", ("affinity", "numberOfClusters", "topologySpreadConstraints", "tolerations")
    ),
    "clusterNames, numberOfClusters, and topologySpreadConstraints cannot be set when placementType is PickAll": _policy_allows(
        "PickAll", ("clusterNames", "numberOfClusters", "topologySpreadConstraints")
    ),
    "clusterNames cannot be set and numberOfClusters must be set when placementType is PickN": _policy_allows(
        "PickN", ("clusterNames",), ("numberOfClusters",)
    ),
    "value must be empty when operator is Exists": _exists_has_no_value,
    "operator must be Exists when key is empty": _empty_key_means_exists,
    "name and labelSelector are mutually exclusive in a resource selector": _name_or_label_selector,
    "cannot change rollout strategy type from 'External' to other types": _stays_external,
    "when reportBackStrategy.type is 'Mirror', a destination must be specified": _mirror_has_destination,
}


# Rules on the whole object: the API server reports them at "<nil>"; we name
# the field they read, so every message has a path.
REPORTED_AT = {
    "metadata.name max length is 63": ("metadata", "name"),
    "metadata.name max length is 127": ("metadata", "name"),
}


def _reported_at(rule, value, path: str) -> tuple[object, str]:
    steps = REPORTED_AT.get(rule.message) if not rule.path else None
    for step in steps or ():
        value = value.get(step) if isinstance(value, dict) else None
        path = child(path, step)
    return value, path


def missing(rules) -> list[CelRule]:
    """The rules that have no Python counterpart in RULES."""
    return [rule for rule in rules if rule.message not in RULES]


# --- applying the rules to an object -----------------------------------------------------


def _values_at(value, old, steps: tuple[str, ...], path: str) -> Iterator[tuple[object, object, str]]:
    """(value, old value or ABSENT, shown path) for each place `steps` reaches.

    List items are not matched with the old list's (the API server correlates
    only list-map items; no transition rule here sits under a list)."""
    if not steps:
        yield value, old, path
        return
    step, rest = steps[0], steps[1:]
    if step == "[*]":
        for index, item in enumerate(value if isinstance(value, list) else ()):
            yield from _values_at(item, ABSENT, rest, f"{path}[{index}]")
    elif step == "{*}":
        for key, item in (value if isinstance(value, dict) else {}).items():
            before = old.get(key, ABSENT) if isinstance(old, dict) else ABSENT
            yield from _values_at(item, before, rest, f"{path}[{key}]")
    elif isinstance(value, dict) and value.get(step) is not None:
        before = old.get(step, ABSENT) if isinstance(old, dict) else ABSENT
        yield from _values_at(value[step], before, rest, child(path, step))


def _under(path: str, bad: list[str]) -> bool:
    """Whether a schema problem sits at `path` or below it (a rule would meet a wrong type)."""
    return any(b == path or b.startswith((f"{path}.", f"{path}[")) for b in bad if path)


def evaluate(rules, obj: dict, old: dict | None, bad: list[str], causes: Causes) -> None:
    """Append a cause for every rule `obj` breaks (old: the stored object, on update)."""
    for rule in rules:
        check = RULES[rule.message]
        for value, before, path in _values_at(obj, old if old is not None else ABSENT, rule.path, ""):
            if rule.is_transition and before is ABSENT:
                continue
            if _under(path, bad):
                continue
            outcome = check(value, before)
            if outcome is not True:
                message = outcome if isinstance(outcome, str) else rule.message
                shown, where = _reported_at(rule, value, path)
                causes.append((where, rule_failed(shown, message)))
