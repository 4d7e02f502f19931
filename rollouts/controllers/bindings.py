"""A placement's bindings (and its policy snapshots, and members' labels)
as the engine and the placement controller read them on every pass: one
query written out once (the ORM compiled it anew on each call), and each
binding's spec and status decoded only when its resourceVersion changed. A
pass of a 100-cluster run decoded 200 JSON documents, most of them unchanged
since the pass before."""

import json

from django.db import connection

from rollouts import models as m

# (table, pk) -> ((uid, resourceVersion[, text hashes]), spec, status, cache).
# The uid tells a new row from an old one whose id a rolled-back insert freed;
# on SQLite the hashes of the spec and status text tell a version read inside
# a transaction that rolled back (an engine advance reads its own writes) from
# a later write that drew the same number again (its counter rolls back with
# it); PostgreSQL's sequence never draws a number twice. `cache` holds what
# callers derive from one version (the engine's BindingView).
_decoded: dict[tuple[str, int], tuple] = {}
_KEPT = 200_000  # bindings remembered before starting afresh (about KubeFleet's scale target twice)


def placement_bindings(family, placement) -> list[dict]:
    """The placement's bindings as dicts of pk, name, target_cluster,
    generation, resource_version, spec, status and cache. spec, status and
    cache are shared between calls: never change them in place."""
    table = family.binding._meta.db_table
    if len(_decoded) > _KEPT:
        _decoded.clear()
    rows = _rows_by_version(table, placement.pk) if connection.vendor == "postgresql" else None
    if rows is None:
        rows = _rows_by_text(table, placement.pk)
    return [{"pk": pk, "name": name, "target_cluster": cluster, "generation": generation,
             "resource_version": version, "spec": known[1], "status": known[2], "cache": known[3]}
            for pk, name, cluster, generation, version, known in rows]


def _rows_by_text(table: str, owner: int) -> list[tuple]:
    """One query with every binding's spec and status text; each decoded
    when its version or text changed (SQLite: a rolled-back transaction's
    resourceVersion is drawn again by a later write)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, uid, name, target_cluster, generation, resource_version, spec, status "  # noqa: S608
                       f"FROM {connection.ops.quote_name(table)} WHERE owner_id = %s", [owner])
        rows = cursor.fetchall()
    out = []
    for pk, uid, name, cluster, generation, version, spec, status in rows:
        key = (uid, version, _text_hash(spec), _text_hash(status))
        known = _decoded.get((table, pk))
        if known is None or known[0] != key:
            known = _decoded[table, pk] = (key, json_value(spec) or {}, json_value(status) or {}, {})
        out.append((pk, name, cluster, generation, version, known))
    return out


def _rows_by_version(table: str, owner: int) -> list[tuple] | None:
    """PostgreSQL: the bindings' versions first, then the spec and status of
    those not already decoded at that version. Its resourceVersions come
    from a sequence, never drawn twice, so (uid, version) names one content
    for good; most of a placement's bindings have not changed since the
    last read, and sending their documents was most of the read's time.
    None when a binding changed between the two reads (each its own
    snapshot): then one read of everything gives a consistent answer."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, uid, name, target_cluster, generation, resource_version "  # noqa: S608
                       f"FROM {quote(table)} WHERE owner_id = %s", [owner])
        rows = cursor.fetchall()
        stale = [pk for pk, uid, _, _, _, version in rows
                 if _decoded.get((table, pk), (None,))[0] != (uid, version)]
        if stale:
            cursor.execute(f"SELECT id, uid, resource_version, spec, status FROM {quote(table)} "  # noqa: S608
                           f"WHERE id = ANY(%s)", [stale])
            for pk, uid, version, spec, status in cursor.fetchall():
                _decoded[table, pk] = ((uid, version), json_value(spec) or {}, json_value(status) or {}, {})
    out = []
    for pk, uid, name, cluster, generation, version in rows:
        known = _decoded.get((table, pk))
        if known is None or known[0] != (uid, version):
            return None
        out.append((pk, name, cluster, generation, version, known))
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
