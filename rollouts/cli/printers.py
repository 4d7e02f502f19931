"""kubectl-style output: tables with the CRDs' printer columns, -o wide,
name, yaml and json."""

import json
from datetime import datetime

import yaml

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.api.durations import human_duration
from rollouts.api.kinds import Kind
from rollouts.members import is_simulated


def age(created: datetime, now: datetime | None = None) -> str:
    return human_duration(((now or clock.precise_now()) - created).total_seconds())


def _cond(obj, type_: str) -> str:
    return obj.condition_status(type_)


def _cond_gen(obj, type_: str) -> str:
    cond = obj.condition(type_)
    return str(cond.get("observedGeneration", "")) if cond else ""


def _placement_columns(prefix: str):
    return [
        ("GEN", False, lambda o: str(o.generation)),
        ("TYPE", True, lambda o: ((o.spec or {}).get("strategy") or {}).get("type", "RollingUpdate")),
        ("SCHEDULED", False, lambda o: _cond(o, f"{prefix}Scheduled")),
        ("SCHEDULED-GEN", False, lambda o: _cond_gen(o, f"{prefix}Scheduled")),
        ("WORK-SYNCHRONIZED", True, lambda o: _cond(o, f"{prefix}WorkSynchronized")),
        ("WORK-SYNCHRONIZED-GEN", True, lambda o: _cond_gen(o, f"{prefix}WorkSynchronized")),
        ("AVAILABLE", False, lambda o: _cond(o, f"{prefix}Available")),
        ("AVAILABLE-GEN", False, lambda o: _cond_gen(o, f"{prefix}Available")),
    ]


def _run_columns():
    return [
        ("PLACEMENT", False, lambda o: str((o.spec or {}).get("placementName", ""))),
        ("RESOURCE-SNAPSHOT-INDEX", False, lambda o: str((o.spec or {}).get("resourceSnapshotIndex", "") or "")),
        ("POLICY-SNAPSHOT-INDEX", False, lambda o: str((o.status or {}).get("policySnapshotIndexUsed", "") or "")),
        ("INITIALIZED", False, lambda o: _cond(o, "Initialized")),
        ("PROGRESSING", True, lambda o: _cond(o, "Progressing")),
        ("SUCCEEDED", False, lambda o: _cond(o, "Succeeded")),
    ]


_GEN = [("GEN", False, lambda o: str(o.generation))]
_APPROVAL = [
    ("UPDATE-RUN", False, lambda o: str((o.spec or {}).get("parentStageRollout", ""))),
    ("STAGE", False, lambda o: str((o.spec or {}).get("targetStage", ""))),
    ("APPROVED", False, lambda o: _cond(o, "Approved")),
    ("APPROVALACCEPTED", False, lambda o: _cond(o, "ApprovalAccepted")),
]
_BINDING = [
    ("WORKSYNCHRONIZED", False, lambda o: _cond(o, "WorkSynchronized")),
    ("RESOURCESAPPLIED", False, lambda o: _cond(o, "Applied")),
    ("RESOURCEAVAILABLE", True, lambda o: _cond(o, "Available")),
]


def _member_columns():
    return [
        ("JOINED", False, lambda o: _cond(o, "Joined") or "True"),
        ("SIMULATED", False, lambda o: "True" if is_simulated(o) else "False"),
    ]


# Columns before AGE for each kind: (header, wide-only, value).
_COLUMNS = {
    "ClusterResourcePlacement": lambda: _placement_columns("ClusterResourcePlacement"),
    "ResourcePlacement": lambda: _placement_columns("ResourcePlacement"),
    "ClusterStagedUpdateRun": _run_columns,
    "StagedUpdateRun": _run_columns,
    "ClusterResourceSnapshot": lambda: _GEN,
    "ResourceSnapshot": lambda: _GEN,
    "ClusterSchedulingPolicySnapshot": lambda: _GEN,
    "SchedulingPolicySnapshot": lambda: _GEN,
    "ClusterApprovalRequest": lambda: _APPROVAL,
    "ApprovalRequest": lambda: _APPROVAL,
    "ClusterResourceBinding": lambda: _BINDING,
    "ResourceBinding": lambda: _BINDING,
    "MemberCluster": _member_columns,
    "ConfigMap": lambda: [("DATA", False, lambda o: str(len(o.content.get("data") or {}) + len(o.content.get("binaryData") or {})))],
    "Secret": lambda: [
        ("TYPE", False, lambda o: str(o.content.get("type", "Opaque"))),
        ("DATA", False, lambda o: str(len(o.content.get("data") or {}) + len(o.content.get("stringData") or {}))),
    ],
    "Namespace": lambda: [("STATUS", False, lambda o: "Active")],
}
# Columns after AGE (wide only), as the CRDs declare them.
_AFTER_AGE = {
    "ClusterStagedUpdateRun": [("STRATEGY", True, lambda o: str((o.spec or {}).get("stagedRolloutStrategyName", "")))],
    "StagedUpdateRun": [("STRATEGY", True, lambda o: str((o.spec or {}).get("stagedRolloutStrategyName", "")))],
}


def format_table(rows: list[list[str]]) -> str:
    """Columns padded to their widest cell plus three spaces, like kubectl."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i] + 3) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def _labels_text(obj) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((obj.labels or {}).items())) or "<none>"


def printer_columns(kind: Kind) -> tuple[list, list]:
    """(columns before AGE, columns after AGE) of `kind`, each (header,
    wide-only, value of an object): what `fleet get` and the Kubernetes API's
    Table output (rollouts.kubeapi.tables) print."""
    return list(_COLUMNS.get(kind.kind, list)()), list(_AFTER_AGE.get(kind.kind, []))


def table(kind: Kind, objs: list, *, wide: bool = False, show_labels: bool = False, all_namespaces: bool = False) -> str:
    before, after = printer_columns(kind)
    columns = [c for c in before if wide or not c[1]]
    after = [c for c in after if wide or not c[1]]
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME"] + [c[0] for c in columns] + ["AGE"] + [c[0] for c in after]
    if show_labels:
        header.append("LABELS")
    now = clock.precise_now()
    rows = [header]
    for obj in objs:
        row = ([obj.namespace] if all_namespaces else []) + [obj.name]
        row += [c[2](obj) for c in columns] + [age(obj.creation_timestamp, now)] + [c[2](obj) for c in after]
        if show_labels:
            row.append(_labels_text(obj))
        rows.append(row)
    return format_table(rows)


def kind_name(kind: Kind) -> str:
    """`singular.group` (just `singular` for core kinds), as kubectl prints it."""
    return f"{kind.singular}.{kind.group}" if kind.group else kind.singular


def object_name(kind: Kind, obj) -> str:
    """`kind.group/name`, the `-o name` form and the prefix of verb output."""
    return f"{kind_name(kind)}/{obj.name}"


def dump(data: dict, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=4, ensure_ascii=False)
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 20).rstrip("\n")


def manifests_output(kind: Kind, objs: list, output: str, *, single: bool) -> str:
    return manifest_list_output([store.to_manifest(o, kind) for o in objs], output, single=single)


def manifest_list_output(items: list[dict], output: str, *, single: bool) -> str:
    """One manifest as itself when a single object was asked for, else a List
    (kubectl prints an empty List rather than nothing)."""
    if single and len(items) == 1:
        return dump(items[0], output)
    return dump({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}, output)


def member_objects_table(objs: list[m.MemberObject], *, all_namespaces: bool) -> str:
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "SNAPSHOT", "AGE"]
    now = clock.precise_now()
    rows = [header] + [
        ([o.namespace] if all_namespaces else []) + [o.name, o.resource_snapshot, age(o.applied_at, now)] for o in objs
    ]
    return format_table(rows)
