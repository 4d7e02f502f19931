"""Many rows in one statement (rollouts/models/rows.py insert_many and
update_many, through store.rows_update, store.rows_upsert and
Event.objects.append_many): on PostgreSQL one statement of many VALUES rows
written out as literals (in chunks), on SQLite one run a row; the same rows written either way (JSON
and text with quotes, braces, backslashes, percent signs and placeholders, NULLs, times,
compare-and-set)."""

import pytest
from django.db import connection

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.models import rows

from .real_services import check_on_postgresql

# Text a literal must carry as it is: quotes, a backslash before a quote, SQL
# placeholders, a percent sign, a statement's end, a comment, non-ASCII.
HOSTILE = "it's \\' %s %(x)s 100% ); DROP TABLE x; -- é ✓ \\"


def check_rows_many() -> None:
    """Raises AssertionError."""
    now = clock.now()
    members = [m.MemberCluster.objects.create(name=f"c{i}", labels={"i": str(i)}, creation_timestamp=now) for i in range(5)]
    olds = [c.resource_version for c in members]
    for c in members:
        c.labels = {"i": c.labels["i"], "new": "yes"}
    members[2].resource_version = -1  # another writer got there first: not written
    versions = [c.resource_version for c in members]
    assert store.rows_update(m.MemberCluster, members, ["labels"], versions=versions) == 4
    got = dict(m.MemberCluster.objects.values_list("name", "labels"))
    assert got["c0"] == {"i": "0", "new": "yes"} and got["c2"] == {"i": "2"}
    assert [c.resource_version for c in m.MemberCluster.objects.order_by("name")] == olds

    # Chunks: 5 rows of 3 values, 2 a statement.
    limit, rows._PG_VALUES = rows._PG_VALUES, 6
    try:
        for c in members:
            c.annotations = {"a": c.name}
        assert store.rows_update(m.MemberCluster, members, ["annotations"]) == 5
        m.Event.objects.append_many([m.Event.row(time=now, actor="t", action="created", object_kind="K",
                                                 object_name=f"e{i}", details={"n": i, "quote": "it's \"x\" {a,b}"},
                                                 message=HOSTILE)
                                     for i in range(5)])
    finally:
        rows._PG_VALUES = limit
    assert dict(m.MemberCluster.objects.values_list("name", "annotations"))["c4"] == {"a": "c4"}
    assert sorted(m.Event.objects.filter(actor="t").values_list("object_name", "details")) == [
        (f"e{i}", {"n": i, "quote": "it's \"x\" {a,b}"}) for i in range(5)]
    assert set(m.Event.objects.filter(actor="t").values_list("message", flat=True)) == {HOSTILE}

    # An upsert of two objects with the same key writes the last one, as one after another would.
    def obj(name, value):
        return m.MemberObject(cluster="c0", api_group="", kind="ConfigMap", namespace="ns", name=name,
                              manifest={"data": {"key": value}}, placement="p", resource_snapshot="p-0-snapshot",
                              applied_at=now)

    store.rows_upsert(m.MemberObject, [obj("a", "1"), obj("b", "1")], unique=["cluster", "api_group", "kind",
                                                                               "namespace", "name"],
                      update=["manifest"])
    store.rows_upsert(m.MemberObject, [obj("a", "2"), obj("a", "3")], unique=["cluster", "api_group", "kind",
                                                                               "namespace", "name"],
                      update=["manifest"])
    assert dict(m.MemberObject.objects.values_list("name", "manifest")) == {"a": {"data": {"key": "3"}},
                                                                           "b": {"data": {"key": "1"}}}
    check_versioned_writes(members)
    assert connection.vendor in ("sqlite", "postgresql")
    if connection.vendor == "postgresql":
        check_json_compressed_with_lz4()


def check_versioned_writes(members: list) -> None:
    """store.rows_update_versioned (save and save_many): each row written
    gets the hub's next resourceVersion (on PostgreSQL drawn by the UPDATE
    itself), a stale one is refused, and objects change only on success."""
    from django.db import transaction

    from rollouts.api.errors import Conflict
    from rollouts.models.revisions import next_versions

    fresh = list(m.MemberCluster.objects.filter(pk__in=[c.pk for c in members]).order_by("pk"))
    before = [c.resource_version for c in fresh]
    with transaction.atomic():
        floor = next_versions(m.MemberCluster)[0]
        written = store.rows_update_versioned(m.MemberCluster, fresh, ["labels"], before)
    assert sorted(written) == [c.pk for c in fresh]
    assert len(set(written.values())) == len(fresh) and min(written.values()) > floor
    assert [c.resource_version for c in fresh] == before  # the objects are the caller's to update
    stored = dict(m.MemberCluster.objects.values_list("pk", "resource_version"))
    assert all(stored[pk] == version for pk, version in written.items())

    with transaction.atomic():
        assert store.rows_update_versioned(m.MemberCluster, fresh[:1], ["labels"], before[:1]) == {}  # stale
    stale = fresh[0]
    stale.labels = {"lost": "update"}
    try:
        store.save(stale)
    except Conflict:
        pass
    else:
        raise AssertionError("a save from a stale resourceVersion was written")
    assert stale.resource_version == before[0]
    current = m.MemberCluster.objects.get(pk=stale.pk)
    current.labels = {"i": "0", "saved": "yes"}
    store.save(current)
    assert current.resource_version == m.MemberCluster.objects.get(pk=stale.pk).resource_version > written[stale.pk]
    with transaction.atomic():
        batch = list(m.MemberCluster.objects.order_by("pk"))
        store.save_many(m.MemberCluster, batch, ["annotations"])
    assert [c.resource_version for c in batch] == list(m.MemberCluster.objects.order_by("pk")
                                                       .values_list("resource_version", flat=True))
    with transaction.atomic():  # nothing but a new resourceVersion (a touch)
        touched = store.rows_update_versioned(m.MemberCluster, batch[:1], ["resource_version"],
                                              [batch[0].resource_version])
    assert list(touched) == [batch[0].pk] and touched[batch[0].pk] > batch[0].resource_version


def check_json_compressed_with_lz4() -> None:
    """Migration 0020: the large JSON columns are compressed with lz4 where
    the server has it (Debian's PostgreSQL does); others keep the default."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        if not cursor.fetchone()[0]:
            return
        cursor.execute("SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute "
                       "WHERE attrelid::regclass::text IN ('rollouts_clusterresourceplacement', "
                       "'rollouts_clusterstagedupdaterun', 'rollouts_memberobject') "
                       "AND attname IN ('spec', 'status', 'manifest', 'labels')")
        got = {(table, column): method for table, column, method in cursor.fetchall()}
    assert got[("rollouts_clusterresourceplacement", "status")] == "l", got
    assert got[("rollouts_clusterstagedupdaterun", "status")] == "l", got
    assert got[("rollouts_clusterstagedupdaterun", "spec")] == "l", got
    assert got[("rollouts_memberobject", "manifest")] == "l", got
    assert got[("rollouts_clusterresourceplacement", "labels")] == "", got  # small: the default


@pytest.mark.django_db
def test_many_rows_on_sqlite():
    check_rows_many()


@pytest.mark.slow
def test_many_rows_on_postgresql():
    check_on_postgresql("tests.test_rows_many", "check_rows_many")
