"""A placement's bindings (and its policy snapshots, and members' labels)
as the engine and the placement controller read them on every pass: one
query written out once (the ORM compiled it anew on each call), and each
binding's spec and status decoded only when its resourceVersion changed. A
pass of a 100-cluster run decoded 200 JSON documents, most of them unchanged
since the pass before."""

import json

from django.db import connection

from rollouts import models as m

# (table, pk) -> ((uid, resourceVersion, text hashes), spec, status, cache).
# The uid tells a new row from an old one whose id a rolled-back insert freed;
# the hashes of the spec and status text tell a version read inside a
# transaction that rolled back (an engine advance reads its own writes) from
# a later write that drew the same number again (SQLite's counter rolls back
# with it). `cache` holds what callers derive from one version (the engine's
# BindingView).
_decoded: dict[tuple[str, int], tuple] = {}
_KEPT = 200_000  # bindings remembered before starting afresh (about KubeFleet's scale target twice)


def placement_bindings(family, placement) -> list[dict]:
    """The placement's bindings as dicts of pk, name, target_cluster,
    generation, resource_version, spec, status and cache. spec, status and
    cache are shared between calls: never change them in place."""
    table = family.binding._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, uid, name, target_cluster, generation, resource_version, spec, status "  # noqa: S608
                       f"FROM {connection.ops.quote_name(table)} WHERE owner_id = %s", [placement.pk])
        rows = cursor.fetchall()
    if len(_decoded) > _KEPT:
        _decoded.clear()
    out = []
    for pk, uid, name, cluster, generation, version, spec, status in rows:
        key = (uid, version, _text_hash(spec), _text_hash(status))
        known = _decoded.get((table, pk))
        if known is None or known[0] != key:
            known = _decoded[table, pk] = (key, json_value(spec) or {}, json_value(status) or {}, {})
        out.append({"pk": pk, "name": name, "target_cluster": cluster, "generation": generation,
                    "resource_version": version, "spec": known[1], "status": known[2], "cache": known[3]})
    return out


def policy_snapshot_rows(family, placement) -> list[dict]:
    """The placement's policy snapshots as dicts of name, index, labels,
    annotations, generation and status, in name order (the model's), by one
    query written out once: each engine load and placement refresh read
    them, and building the models cost more than their few small documents."""
    quote = connection.ops.quote_name
    columns = ("name", "index", "labels", "annotations", "generation", "status")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(quote(c) for c in columns)} "  # noqa: S608
                       f"FROM {quote(family.policy_snapshot._meta.db_table)} WHERE {quote('owner_id')} = %s "
                       f"ORDER BY {quote('namespace')}, {quote('name')}", [placement.pk])
        rows = cursor.fetchall()
    return [{"name": name, "index": index, "labels": json_value(labels) or {},
             "annotations": json_value(annotations) or {}, "generation": generation, "status": json_value(status) or {}}
            for name, index, labels, annotations, generation, status in rows]


def _text_hash(value) -> int:
    """A hash of a JSON column's text (a tenth of the time to decode it); a value
    the cursor decoded already is never taken for an earlier one."""
    return hash(value) if isinstance(value, str | bytes) else id(value)


def json_value(value):
    """A JSON column as the cursor returns it: text on both databases (Django
    registers no JSON decoder on the connection)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


_labels_known: dict[str, tuple] = {}  # member name -> (labels as the cursor returned them, decoded)


def member_labels(names: list[str] | None = None) -> dict[str, dict | None]:
    """{name: labels} of the members named (every member with None), by one
    query written out once; a member's labels are decoded only when their
    text changed (an advance read 100 members' labels, a tick 1,000, nearly
    always the same). The dicts are shared between calls: never change them."""
    quote = connection.ops.quote_name
    sql = f"SELECT {quote('name')}, {quote('labels')} FROM {quote(m.MemberCluster._meta.db_table)}"  # noqa: S608
    if names is not None:
        if not names:
            return {}
        sql += f" WHERE {quote('name')} IN ({', '.join(['%s'] * len(names))})"
    with connection.cursor() as cursor:
        cursor.execute(sql, list(names or ()))
        rows = cursor.fetchall()
    if len(_labels_known) > _KEPT:
        _labels_known.clear()
    out = {}
    for name, text in rows:
        known = _labels_known.get(name)
        if known is None or known[0] != text or not isinstance(text, str | bytes):
            known = _labels_known[name] = (text, json_value(text))
        out[name] = known[1]
    return out
