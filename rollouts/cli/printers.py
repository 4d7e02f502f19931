"""kubectl-style output: tables with the CRDs' printer columns, -o wide,
name, yaml and json."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import yaml

from rollouts import clock
from rollouts import models as m
from rollouts.api import crds, jsonpath, store
from rollouts.api.durations import human_duration
from rollouts.api.kinds import Kind
from rollouts.members import is_simulated


def age(created: datetime, now: datetime | None = None) -> str:
    return human_duration(((now or clock.precise_now()) - created).total_seconds())


def _cond(obj, type_: str) -> str:
    return obj.condition_status(type_)


@dataclass(frozen=True)
class Column:
    """A table column: its header, whether only -o wide shows it, and its
    cell for (object, its manifest, now)."""

    header: str
    wide: bool
    value: Callable


def _date_cell(text: str, now: datetime) -> str:
    """A `date` printer column: the age of the time it holds."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return age(when, now)


def _crd_column(column: crds.PrinterColumn) -> Column:
    header = column.name.upper()
    if column.json_path == ".metadata.creationTimestamp":
        return Column(header, column.priority > 0, lambda o, _m, now: age(o.creation_timestamp, now))
    if column.type == "date":
        return Column(header, column.priority > 0, lambda _o, man, now: _date_cell(jsonpath.cell(man, column.json_path), now))
    return Column(header, column.priority > 0, lambda _o, man, _now: jsonpath.cell(man, column.json_path))


# Where Fleet UI shows what the seed tutorial shows rather than the current
# CRD (compatibility.md, docs/kinds.md): header -> replacement columns.
def _legacy_run(column: Column) -> list[Column]:
    # The tutorial's csur table has no PROGRESSING; -o wide adds it.
    return [Column(column.header, True, column.value)] if column.header == "PROGRESSING" else [column]


def _legacy_approval(column: Column) -> list[Column]:
    # The tutorial shows APPROVALACCEPTED, which the current CRD dropped.
    if column.header != "APPROVED":
        return [column]
    return [column, Column("APPROVALACCEPTED", False, lambda o, _m, _n: _cond(o, "ApprovalAccepted"))]


def _legacy_member(column: Column) -> list[Column]:
    # Simulated members join at once and have no agent or usage: the
    # tutorial's JOINED SIMULATED AGE stay; the CRD's other columns are -o wide.
    if column.header == "JOINED":
        joined = Column("JOINED", False, lambda o, _m, _n: _cond(o, "Joined") or "True")
        simulated = Column("SIMULATED", False, lambda o, _m, _n: "True" if is_simulated(o) else "False")
        return [joined, simulated]
    return [column if column.header == "AGE" else Column(column.header, True, column.value)]


_LEGACY = {
    "ClusterStagedUpdateRun": _legacy_run,
    "StagedUpdateRun": _legacy_run,
    "ClusterApprovalRequest": _legacy_approval,
    "ApprovalRequest": _legacy_approval,
    "MemberCluster": _legacy_member,
}


def _text(fn) -> Callable:
    return lambda o, _m, _n: fn(o)


def _age_column() -> Column:
    return Column("AGE", False, lambda o, _m, now: age(o.creation_timestamp, now))


# Core kinds have no CRD: kubectl's own columns.
_CORE_COLUMNS = {
    "ConfigMap": lambda: [Column("DATA", False, _text(lambda o: str(len(o.content.get("data") or {}) + len(o.content.get("binaryData") or {}))))],
    "Secret": lambda: [
        Column("TYPE", False, _text(lambda o: str(o.content.get("type", "Opaque")))),
        Column("DATA", False, _text(lambda o: str(len(o.content.get("data") or {}) + len(o.content.get("stringData") or {})))),
    ],
    "Namespace": lambda: [Column("STATUS", False, _text(lambda o: "Active"))],
}


def columns_for(kind: Kind) -> list[Column]:
    """The kind's columns after NAME: its CRD's printer columns (with the
    tutorial's legacy changes), kubectl's for core kinds, else just AGE."""
    printer = crds.printer_columns(kind.group, kind.kind, kind.version) if kind.is_fleet else ()
    if not printer:
        return [*_CORE_COLUMNS.get(kind.kind, list)(), _age_column()] if kind.group == "" else [_age_column()]
    legacy = _LEGACY.get(kind.kind, lambda c: [c])
    columns = [c for column in printer for c in legacy(_crd_column(column))]
    return columns if any(c.header == "AGE" for c in columns) else [*columns, _age_column()]


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


def _printed(obj) -> dict:
    """What printer columns read, from the row alone (to_manifest would load
    each snapshot's owner: a query per row)."""
    return {"metadata": {"name": obj.name, "generation": obj.generation}, "spec": obj.spec or {},
            "status": obj.status or {}}


def table(kind: Kind, objs: list, *, wide: bool = False, show_labels: bool = False, all_namespaces: bool = False) -> str:
    columns = [c for c in columns_for(kind) if wide or not c.wide]
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME"] + [c.header for c in columns]
    if show_labels:
        header.append("LABELS")
    now = clock.precise_now()
    rows = [header]
    for obj in objs:
        manifest = _printed(obj) if kind.is_fleet else {}
        row = ([obj.namespace] if all_namespaces else []) + [obj.name]
        row += [c.value(obj, manifest, now) for c in columns]
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
