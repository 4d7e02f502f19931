"""Hub resources of any kind, what simulated members hold, and the event log."""

from types import SimpleNamespace

from django.db import connections, models, router
from django.db.models.functions import Now

from rollouts import changes

from .base import FleetObject
from .rows import db_values, insert_many


class AppendOnlyError(Exception):
    """An attempt to change or remove an audit Event: the log is append-only."""


class HubResource(FleetObject):
    """A resource on the hub of any apiVersion/kind (Namespace, ConfigMap,
    Deployment, a CustomResourceDefinition, an instance of one…).

    `content` holds the top-level fields other than apiVersion, kind, metadata,
    spec and status (a ConfigMap's `data`, a Secret's `type`…).
    """

    api_group = models.CharField(max_length=253, blank=True, default="")
    api_version_name = models.CharField(max_length=63)
    kind = models.CharField(max_length=63)
    owner_references = models.JSONField(default=list, blank=True)
    content = models.JSONField(default=dict, blank=True)

    API_GROUP = ""
    KIND = "HubResource"

    class Meta(FleetObject.Meta):
        ordering = ["api_group", "kind", "namespace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["api_group", "kind", "namespace", "name"], name="hubresource_unique_name")
        ]
        indexes = [models.Index(fields=["kind", "namespace"])]

    def __str__(self):
        return f"{self.kind}/{super().__str__()}"


class MemberObject(models.Model):
    """An object as it stands on a simulated member cluster."""

    cluster = models.CharField(max_length=253)
    api_group = models.CharField(max_length=253, blank=True, default="")
    kind = models.CharField(max_length=63)
    namespace = models.CharField(max_length=253, blank=True, default="")
    name = models.CharField(max_length=253)
    manifest = models.JSONField()
    placement = models.CharField(max_length=253, help_text="The placement that put it there.")
    resource_snapshot = models.CharField(max_length=253)
    applied_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "api_group", "kind", "namespace", "name"], name="memberobject_unique"
            )
        ]

    def __str__(self):
        return f"{self.cluster}: {self.kind}/{self.namespace}/{self.name}"


class EventRow(SimpleNamespace):
    """An Event not yet inserted, as plain attributes (Event.row)."""


class EventQuerySet(models.QuerySet):
    """Event rows are only ever appended: no update or delete through the ORM.

    Every append (create, bulk_create) schedules audit sealing after commit;
    rollouts.services.audit.audit_seal is the one writer of seq/hash, and it
    updates through SQL of its own, not through this queryset."""

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            schedule_seal(self.db)
        return created

    def append_many(self, objs: list) -> None:
        """Append events in one INSERT (models.rows.insert_many): what
        bulk_create does without setting their ids, at a fraction of its
        cost (it compiles each row's values through the expression machinery:
        6,300 engine events took 6.9 s of a 38 s profile). `objs` are unsaved
        Events or EventRows (Event.row: no model instance built). `recorded`
        is the database's clock, as with bulk_create."""
        if not objs:
            return
        connection = connections[router.db_for_write(self.model)]
        quote, meta = connection.ops.quote_name, self.model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key and f.db_default is models.NOT_PROVIDED]
        insert_many(connection, quote(meta.db_table), [quote(f.column) for f in fields],
                    db_values(objs, fields, connection))
        schedule_seal(connection.alias)

    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be updated")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("audit events cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted")

    def _raw_delete(self, using):
        raise AppendOnlyError("audit events cannot be deleted")


def schedule_seal(using: str) -> None:
    """Seal new Events once this transaction commits (at once outside one):
    an AuditAppended change, to which the audit chain subscribes. One per
    transaction however many rows it appends: the seal picks up every
    unsealed row, and an equal change waiting already adds nothing."""
    changes.publish(changes.AuditAppended(using), using=using)


class Event(models.Model):
    """One row per thing that happened: the run timeline and the audit log.

    time: when it happened (the engine's injected clock for engine rows).
    actor: who did it: a user name, `system:engine`, `system:scheduler`…
    action: what kind of thing happened (see Action).
    object_kind/object_namespace/object_name: the object it happened to.
    run: the update run it belongs to, when there is one (timeline filter).
    reason/message: the condition reason and message, or a person's comment.
    details: what changed, as JSON (condition before/after, client address…).
    seq/prev_hash/hash: the row's place in the audit hash chain, NULL until
    sealed after commit (rollouts.services.audit; docs/audit.md).
    recorded: when the row was inserted, by the database's clock (`time` is
    when it happened, which may be earlier: a hub's condition times). Not
    part of the hash; it only says how long a row has waited to be sealed.

    Rows are append-only: save() of an existing row and delete() raise
    AppendOnlyError, and on PostgreSQL a trigger refuses UPDATE, DELETE and
    TRUNCATE from any role (migration 0006).
    """

    class Action(models.TextChoices):
        CREATED = "created"
        CONFIGURED = "configured"
        PATCHED = "patched"
        DELETED = "deleted"
        APPROVED = "approved"
        REJECTED = "rejected"
        DENIED = "denied"
        STATE_CHANGED = "state-changed"
        CONDITION = "condition"
        LOGIN = "login"
        LOGIN_FAILED = "login-failed"
        LOGOUT = "logout"

    time = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=32, choices=Action.choices)
    object_kind = models.CharField(max_length=63)
    object_namespace = models.CharField(max_length=253, blank=True, default="")
    object_name = models.CharField(max_length=253)
    run = models.CharField(max_length=253, blank=True, default="")
    reason = models.CharField(max_length=253, blank=True, default="")
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)
    hash = models.CharField(max_length=64, null=True, blank=True, editable=False)
    recorded = models.DateTimeField(db_default=Now(), editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["time", "id"]
        # The audit log pages by id within a filter: PostgreSQL needs the id in
        # each index (SQLite indexes carry the row id already). Each also
        # serves its leading column alone: no single-column index beside it,
        # as every index costs each insert and each seal's update.
        indexes = [
            models.Index(fields=["object_kind", "object_name", "id"]),
            models.Index(fields=["actor", "id"]),
            models.Index(fields=["action", "id"]),
            models.Index(fields=["run", "id"]),
            # The seal reads the unsealed rows in id order: a small partial index.
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="event_unsealed"),
        ]

    def __str__(self):
        return f"{self.time:%Y-%m-%dT%H:%M:%S} {self.actor} {self.action} {self.object_kind}/{self.object_name}"

    @classmethod
    def row(cls, *, time, actor: str, action: str, object_kind: str, object_name: str, object_namespace: str = "",
            run: str = "", reason: str = "", message: str = "", details: dict | None = None) -> "EventRow":
        """An unsaved Event's values for Event.objects.append_many, without
        building the model instance (thousands of them in a tick of a
        hundred rollouts' waves)."""
        return EventRow(time=time, actor=actor, action=action, object_kind=object_kind,
                        object_namespace=object_namespace, object_name=object_name, run=run, reason=reason,
                        message=message, details={} if details is None else details,
                        seq=None, prev_hash=None, hash=None)

    def save(self, *args, **kwargs):
        """Insert a new row; an existing row cannot be saved again."""
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            raise AppendOnlyError("audit events cannot be updated")
        super().save(*args, **kwargs)
        schedule_seal(self._state.db)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")
