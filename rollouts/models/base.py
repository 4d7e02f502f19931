"""The metadata every Kubernetes-style object carries, as an abstract model.

Objects keep their `spec` and `status` as raw JSON (so YAML goes in and comes
out unchanged) and their metadata in columns, so we can filter and lock rows.
"""

import uuid

from django.db import models, router, transaction

from . import revisions


class FleetObject(models.Model):
    """A Kubernetes object: metadata columns plus raw `spec` and `status`.

    generation: bumped only when `spec` changes (as the API server does).
    resource_version: the hub revision of the row's last write: every write
        takes the next value of one hub-wide counter (models/revisions.py),
        so a watch can ask for everything after a revision; a write that
        carries a stale value is refused with a conflict (optimistic
        concurrency).
    owner: for placement children (snapshots, bindings), the owning placement;
        deleting it cascades, as Kubernetes' garbage collector does.
    """

    namespace = models.CharField(max_length=253, blank=True, default="", db_index=True)
    name = models.CharField(max_length=253)
    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    generation = models.BigIntegerField(default=1)
    resource_version = models.BigIntegerField(default=1, db_index=True)
    creation_timestamp = models.DateTimeField()
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    finalizers = models.JSONField(default=list, blank=True)
    spec = models.JSONField(default=dict, blank=True)
    status = models.JSONField(default=dict, blank=True)

    # Filled in by each concrete class: the API identity of the kind.
    API_GROUP = "placement.kubernetes-fleet.io"
    API_VERSION = "v1beta1"
    KIND = ""
    PLURAL = ""
    SHORT_NAMES: tuple[str, ...] = ()
    NAMESPACED = False

    class Meta:
        abstract = True
        ordering = ["namespace", "name"]

    def __str__(self):
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def save(self, *args, **kwargs):
        """Write the row with the hub's next resourceVersion (in one
        transaction with the write, which the horizon needs)."""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "resource_version"}
        with transaction.atomic(using=router.db_for_write(type(self)), savepoint=False):
            (self.resource_version,) = revisions.next_versions(type(self))
            super().save(*args, **kwargs)

    @classmethod
    def api_version(cls) -> str:
        return f"{cls.API_GROUP}/{cls.API_VERSION}" if cls.API_GROUP else cls.API_VERSION

    def conditions(self) -> list[dict]:
        return list((self.status or {}).get("conditions") or [])

    def condition(self, type_: str) -> dict | None:
        """The status condition of this type, or None."""
        for cond in self.conditions():
            if cond.get("type") == type_:
                return cond
        return None

    def condition_status(self, type_: str) -> str:
        """"True", "False", "Unknown", or "" when the condition is absent."""
        cond = self.condition(type_)
        return cond.get("status", "") if cond else ""


def fleet_models() -> list:
    """Every concrete FleetObject model (HubResource included)."""
    found, todo = [], list(FleetObject.__subclasses__())
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        if not model._meta.abstract and not model._meta.proxy:
            found.append(model)
    return found
