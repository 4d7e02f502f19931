"""The approval-policy annotation of a strategy: parse and check it.

    metadata:
      annotations:
        fleetui.io/approval-policy: |
          stages:
            prod:
              after: {groups: [sre], quorum: 2, fourEyes: true}

The value is YAML or JSON. Under `stages`, each key names a stage of the
strategy's `spec.stages` and holds `before` and/or `after` (the stage's
beforeStageTasks / afterStageTasks Approval gate), each with `groups` (list
of Django group names, default [] = anyone who may approve), `quorum`
(integer >= 1, default 1) and `fourEyes` (boolean, default false).

No database access: validation.py calls `problems()` while checking an
apply, and services.policies calls `parse()` to store the rows.
"""

import json
from dataclasses import dataclass

import yaml

ANNOTATION = "fleetui.io/approval-policy"
GATES = {"before": "beforeStageTasks", "after": "afterStageTasks"}
_FIELDS = {"groups", "quorum", "fourEyes"}
_QUORUM_LIMIT = 100


@dataclass(frozen=True)
class GatePolicy:
    stage: str
    gate: str  # before | after
    groups: tuple[str, ...] = ()
    quorum: int = 1
    four_eyes: bool = False


def annotation_value(manifest: dict, name: str):
    """The raw value of annotation `name`, or None when the manifest has none."""
    meta = manifest.get("metadata") if isinstance(manifest, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations.get(name) if isinstance(annotations, dict) else None


def annotation_problems(manifest: dict, name: str, check) -> list[tuple[str, str]]:
    """(field path, message) for everything wrong with a strategy manifest's
    YAML annotation `name` ([] when fine or absent): loaded, then handed to
    check(document, path, the strategy's stage gates, causes)."""
    raw = annotation_value(manifest, name)
    if raw is None:
        return []
    path = f"metadata.annotations[{name}]"
    document, error = load_annotation(raw)
    if error:
        return [(path, error)]
    causes: list[tuple[str, str]] = []
    check(document, path, stage_approval_gates(manifest), causes)
    return causes


def annotation_of(manifest: dict):
    """The approval policy annotation's raw value, or None when the manifest has none."""
    return annotation_value(manifest, ANNOTATION)


def problems(manifest: dict) -> list[tuple[str, str]]:
    """(field path, message) for everything wrong with the approval policy
    annotation of a strategy manifest; [] when it is fine or absent."""
    return annotation_problems(manifest, ANNOTATION, _check_document)


def parse(manifest: dict) -> list[GatePolicy]:
    """The gate policies of a valid strategy manifest ([] without the
    annotation). Call problems() first: malformed parts are skipped here."""
    raw = annotation_of(manifest)
    document, error = load_annotation(raw) if raw is not None else ({}, None)
    if error or not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
        return []
    out = []
    for stage, gates in document["stages"].items():
        for gate, rule in (gates or {}).items() if isinstance(gates, dict) else ():
            if gate in GATES and isinstance(rule, dict):
                out.append(GatePolicy(stage, gate, tuple(rule.get("groups") or ()), int(rule.get("quorum", 1)),
                                      bool(rule.get("fourEyes", False))))
    return out


def load_annotation(raw) -> tuple[object, str | None]:
    """(document, None) for a YAML or JSON annotation value, (None, error) otherwise."""
    if not isinstance(raw, str):
        return None, "Invalid value: must be a string holding YAML or JSON"
    try:
        return yaml.safe_load(raw) if raw.strip() else {}, None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        first = " ".join(str(exc).split())[:160]
        return None, f"Invalid value: not YAML or JSON ({first})"


def stage_approval_gates(manifest: dict) -> dict[str, set[str]]:
    """{stage name: the gates that have an Approval task}, from spec.stages."""
    spec = manifest.get("spec") if isinstance(manifest.get("spec"), dict) else {}
    stages = spec.get("stages") if isinstance(spec.get("stages"), list) else []
    out: dict[str, set[str]] = {}
    for stage in stages:
        if isinstance(stage, dict) and isinstance(stage.get("name"), str):
            out[stage["name"]] = {gate for gate, key in GATES.items()
                                  if any(isinstance(t, dict) and t.get("type") == "Approval"
                                         for t in (stage.get(key) if isinstance(stage.get(key), list) else []))}
    return out


def _check_document(document, path: str, stage_tasks: dict, causes: list) -> None:
    if not isinstance(document, dict):
        causes.append((path, "Invalid value: must be an object with `stages`"))
        return
    for key in document:
        if key != "stages":
            causes.append((f"{path}.{key}", "Unsupported value: the policy has only `stages`"))
    stages = document.get("stages")
    if not isinstance(stages, dict):
        causes.append((f"{path}.stages", "Required value: an object keyed by stage name"))
        return
    for stage, gates in stages.items():
        stage_path = f"{path}.stages.{stage}"
        if stage not in stage_tasks:
            known = ", ".join(sorted(stage_tasks)) or "none"
            causes.append((stage_path, f"Not found: no stage named {json.dumps(str(stage))} in spec.stages "
                                       f"(stages: {known})"))
            continue
        _check_gates(gates, stage_path, stage_tasks[stage], causes)


def _check_gates(gates, path: str, with_approval: set[str], causes: list) -> None:
    if not isinstance(gates, dict) or not gates:
        causes.append((path, "Invalid value: must be an object with `before` and/or `after`"))
        return
    for gate, rule in gates.items():
        gate_path = f"{path}.{gate}"
        if gate not in GATES:
            causes.append((gate_path, 'Unsupported value: supported values: "before", "after"'))
        elif gate not in with_approval:
            causes.append((gate_path, f"Invalid value: the stage has no Approval task in {GATES[gate]}"))
        else:
            _check_rule(rule, gate_path, causes)


def _check_rule(rule, path: str, causes: list) -> None:
    if not isinstance(rule, dict):
        causes.append((path, "Invalid value: must be an object with groups, quorum and fourEyes"))
        return
    for key in rule:
        if key not in _FIELDS:
            causes.append((f"{path}.{key}", 'Unsupported value: supported fields: "groups", "quorum", "fourEyes"'))
    groups = rule.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and g.strip() and len(g) <= 150 for g in groups):
        causes.append((f"{path}.groups", "Invalid value: must be a list of group names"))
    quorum = rule.get("quorum", 1)
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= _QUORUM_LIMIT:
        causes.append((f"{path}.quorum", f"Invalid value: must be an integer from 1 to {_QUORUM_LIMIT}"))
    if not isinstance(rule.get("fourEyes", False), bool):
        causes.append((f"{path}.fourEyes", "Invalid value: must be true or false"))
