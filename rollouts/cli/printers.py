"""kubectl-style output: tables with the CRDs' printer columns, -o wide,
name, yaml and json."""

import json
from datetime import datetime

import yaml

from rollouts import clock
from rollouts import models as m
from rollouts.api import columns, store
from rollouts.api.durations import human_duration
from rollouts.api.kinds import Kind


def age(created: datetime, now: datetime | None = None) -> str:
    return human_duration(((now or clock.precise_now()) - created).total_seconds())


def _date_cell(text: str, now: datetime) -> str:
    """A `date` column's cell: the age of the time it holds."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return age(when, now)


def cell(column: columns.Column, obj, manifest: dict, now: datetime) -> str:
    """A column's cell as kubectl shows it (a date column: the age of its time);
    also the cells of the Kubernetes API's Table output (rollouts.kubeapi.tables)."""
    if column.json_path == columns.CREATED:
        return age(obj.creation_timestamp, now)  # to the microsecond, as the tutorial's ages
    value = column.value(obj, manifest)
    return _date_cell(value, now) if column.type == "date" and value else value


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


def table(kind: Kind, objs: list, *, wide: bool = False, show_labels: bool = False, all_namespaces: bool = False) -> str:
    shown = [c for c in columns.columns_for(kind) if wide or not c.wide]
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME"] + [c.header for c in shown]
    if show_labels:
        header.append("LABELS")
    now = clock.precise_now()
    rows = [header]
    for obj in objs:
        manifest = columns.printed(obj)
        row = ([obj.namespace] if all_namespaces else []) + [obj.name]
        row += [cell(c, obj, manifest, now) for c in shown]
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
