"""Hub resources of any kind, what simulated members hold, and the event log."""

from django.db import models

from .base import FleetObject


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


class Event(models.Model):
    """One row per thing that happened: the run timeline and the audit log.

    time: when it happened (the engine's injected clock for engine rows).
    actor: who did it: a user name, `system:engine`, `system:scheduler`…
    action: what kind of thing happened (see Action).
    object_kind/object_namespace/object_name: the object it happened to.
    run: the update run it belongs to, when there is one (timeline filter).
    reason/message: the condition reason and message, or a person's comment.
    details: what changed, as JSON (condition before/after, client address…).
    """

    class Action(models.TextChoices):
        CREATED = "created"
        CONFIGURED = "configured"
        PATCHED = "patched"
        DELETED = "deleted"
        APPROVED = "approved"
        STATE_CHANGED = "state-changed"
        CONDITION = "condition"

    time = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    object_kind = models.CharField(max_length=63)
    object_namespace = models.CharField(max_length=253, blank=True, default="")
    object_name = models.CharField(max_length=253)
    run = models.CharField(max_length=253, blank=True, default="", db_index=True)
    reason = models.CharField(max_length=253, blank=True, default="")
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["time", "id"]
        # The audit log pages by id within a filter: PostgreSQL needs the id in
        # each index (SQLite indexes carry the row id already).
        indexes = [
            models.Index(fields=["object_kind", "object_name", "id"]),
            models.Index(fields=["actor", "id"]),
            models.Index(fields=["action", "id"]),
            models.Index(fields=["run", "id"]),
        ]

    def __str__(self):
        return f"{self.time:%Y-%m-%dT%H:%M:%S} {self.actor} {self.action} {self.object_kind}/{self.object_name}"
