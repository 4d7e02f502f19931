"""The hub-wide resourceVersion and the change log of deletions.

Every write of a Fleet object takes the next value of ONE counter, as every
write to etcd takes its next revision, so a watcher can say "everything
after revision X" for any kind. What a watcher needs besides the order is a
*horizon*: a revision H such that every write numbered H or below has either
committed (and is visible) or will never commit. Reading rows up to H, then
moving to H, never misses or reorders a write.

- SQLite: the counter is a row of `HubRevision`, bumped with UPDATE …
  RETURNING inside the writer's transaction. SQLite runs one write
  transaction at a time, so commit order is counter order and the horizon is
  the committed value.
- PostgreSQL: a one-row counter would hold its row lock from the first write
  to the commit, serialising every writer of the hub and deadlocking two
  writers that lock rows in the other's order. Instead the counter is a
  SEQUENCE (no lock; values are not handed out in commit order), and the
  function `rollouts_next_rv()` first takes, once per transaction, a shared
  transaction-scoped advisory lock keyed by the sequence's last value L
  (read before drawing, so L <= every value the transaction draws). The lock
  lives in memory and goes away at commit or rollback. The horizon is
  min(last value, smallest L still locked - 1): a value at or below it was
  drawn before the horizon was read, by a transaction no longer holding its
  lock, i.e. finished. Read the horizon in one statement and the rows in a
  LATER statement (a later snapshot), never the other way round.

Deletions leave a `Tombstone` with the revision of the delete, so a watcher
sees DELETED events; `tombstones_compact` forgets old ones and moves the
compaction point, below which a watch answers 410 Gone.
"""

from datetime import timedelta

from django.db import connections, models, router, transaction

from rollouts import clock

# The advisory lock keys of the PostgreSQL counter: TAG in the top 16 bits,
# the sequence value L below (L < 2**48).
PG_LOCK_TAG = 0x5256  # "RV"
PG_SEQUENCE = "rollouts_hub_rv"
PG_FUNCTION = "rollouts_next_rv"  # created by migration 0018_hub_resource_version
TOMBSTONE_RETENTION = timedelta(minutes=15)
# min(the last value handed out, the smallest value still pinned by a running
# writer - 1): the PostgreSQL horizon (module docstring). pg_locks lists the
# whole server's locks: only this database's writers pin its horizon.
PG_HORIZON = f"""
SELECT LEAST(s.handed, COALESCE((
    SELECT min(((l.classid::bigint << 32) | l.objid::bigint) - ({PG_LOCK_TAG}::bigint << 48)) FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND (l.classid::bigint >> 16) = {PG_LOCK_TAG}
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) - 1, s.handed))
FROM (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS handed FROM {PG_SEQUENCE}) s
"""


class HubRevision(models.Model):
    """The one row (pk 1) of the hub's revision bookkeeping.

    value: SQLite's counter (PostgreSQL uses the sequence `rollouts_hub_rv`).
    compacted: the newest revision whose tombstone was forgotten; a watch
        from an older revision may have missed a deletion (410 Gone).
    """

    value = models.BigIntegerField(default=0)
    compacted = models.BigIntegerField(default=0)


class Tombstone(models.Model):
    """A deleted Fleet object, kept so watchers see it go.

    resource_version: the hub revision of the deletion.
    model: `app_label.ModelName` of the row (HubResource rows also carry
        api_group/kind); row: the deleted row's columns, so the watch can
        serve the object's last body.
    """

    resource_version = models.BigIntegerField(unique=True)
    model = models.CharField(max_length=100)
    api_group = models.CharField(max_length=253, blank=True, default="")
    kind = models.CharField(max_length=63)
    namespace = models.CharField(max_length=253, blank=True, default="")
    name = models.CharField(max_length=253)
    uid = models.UUIDField()
    row = models.JSONField(default=dict)
    deleted_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["model", "resource_version"])]


def _connection(model):
    return connections[router.db_for_write(model)]


def next_versions(model, count: int = 1) -> list[int]:
    """`count` new hub revisions, increasing, for writes of `model`'s rows.

    Call inside the transaction that writes them (the caller's atomic block):
    on SQLite the counter bump commits with the write; on PostgreSQL the
    horizon lock lasts until that commit."""
    connection = _connection(model)
    if connection.in_atomic_block is False:
        raise RuntimeError("hub revisions must be drawn inside the writing transaction")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT {PG_FUNCTION}() FROM generate_series(1, %s)", [count])
            return [row[0] for row in cursor.fetchall()]
        table = connection.ops.quote_name(HubRevision._meta.db_table)
        # An upsert: a test's flush may have emptied the table.
        cursor.execute(f"INSERT INTO {table} (id, value, compacted) VALUES (1, %s, 0) ON CONFLICT (id) DO UPDATE"
                       f" SET value = {table}.value + excluded.value RETURNING value", [count])
        last = cursor.fetchone()[0]
    return list(range(last - count + 1, last + 1))


def horizon(using: str = "default") -> int:
    """The hub revision up to which every write is settled (module docstring).

    Run it outside a transaction (or at least before the statement that
    reads rows): it is the resourceVersion of a list and a watch's next step."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_HORIZON)
        else:
            cursor.execute(f"SELECT value FROM {connection.ops.quote_name(HubRevision._meta.db_table)} WHERE id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def compacted_revision() -> int:
    """The compaction point: a watch from an older revision is 410 Gone."""
    return HubRevision.objects.filter(pk=1).values_list("compacted", flat=True).first() or 0


def tombstones_compact(*, now) -> int:
    """Forget tombstones older than TOMBSTONE_RETENTION and move the
    compaction point to the newest one forgotten. Returns the point."""
    with transaction.atomic():
        newest = (Tombstone.objects.filter(deleted_at__lt=now - TOMBSTONE_RETENTION)
                  .aggregate(newest=models.Max("resource_version"))["newest"])
        if newest is not None:
            Tombstone.objects.filter(resource_version__lte=newest).delete()
            HubRevision.objects.filter(pk=1, compacted__lt=newest).update(compacted=newest)
    return compacted_revision()



def _jsonable(field, value):
    if value is None or isinstance(field, models.JSONField):
        return value
    if isinstance(field, models.DateTimeField):
        return value.isoformat()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def row_of(obj) -> dict:
    """The row's columns as JSON (what a Tombstone keeps of the object)."""
    return {f.attname: _jsonable(f, getattr(obj, f.attname)) for f in obj._meta.concrete_fields}


def tombstone_record(sender, instance, **kwargs) -> None:
    """post_delete receiver of every Fleet object model: the deletion takes a
    hub revision and leaves a tombstone (in the deleting transaction).

    A receiver, not a call in each deleting writer: rows also go by FK
    cascade (a placement takes its snapshots and bindings), by queryset
    delete (a namespace's objects) and in the admin; this is the one place
    every path passes through, as the audit's account receivers are."""
    (version,) = next_versions(sender)
    Tombstone.objects.create(
        resource_version=version, model=sender._meta.label, api_group=getattr(instance, "api_group", sender.API_GROUP),
        kind=getattr(instance, "kind", None) if sender.KIND == "HubResource" else sender.KIND,
        namespace=instance.namespace, name=instance.name, uid=instance.uid, row=row_of(instance),
        deleted_at=clock.now())

