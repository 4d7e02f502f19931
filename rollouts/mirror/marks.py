"""Which rows are mirrored from a KubeFleet hub: reading the MirroredObject
marks. Marked rows are read-only for everyone but the mirror: services
refuse to write them (require_local) and the engine, placement controllers
and member agent leave them alone (local_only)."""

from django.db.models import Exists, OuterRef

from rollouts.api.errors import Forbidden
from rollouts.models.connections import MirroredObject


class MirroredReadOnly(Forbidden):
    """A write to an object Fleet UI mirrors from a hub."""


def marks_of(model):
    return MirroredObject.objects.filter(kind=model.KIND, namespace=OuterRef("namespace"), name=OuterRef("name"))


def local_only(queryset):
    """The queryset without the rows mirrored from a hub."""
    return queryset.exclude(Exists(marks_of(queryset.model)))


def mirrored_only(queryset):
    """Only the rows mirrored from a hub."""
    return queryset.filter(Exists(marks_of(queryset.model)))


def mirror_mark(obj) -> MirroredObject | None:
    """The mark of a mirrored row (with its connection), or None for our own."""
    return (MirroredObject.objects.select_related("connection")
            .filter(kind=obj.KIND, namespace=obj.namespace, name=obj.name).first())


def is_mirrored(obj) -> bool:
    """Whether the row mirrors a hub's object (and so is read-only)."""
    return MirroredObject.objects.filter(kind=obj.KIND, namespace=obj.namespace, name=obj.name).exists()


def require_local(obj) -> None:
    """Refuse a write to a mirrored row: it belongs to its hub (Forbidden)."""
    mark = mirror_mark(obj)
    if mark is not None:
        raise MirroredReadOnly(f'{obj.KIND} "{obj.name}" is mirrored from hub {mark.connection.name} and '
                               "read-only here: change it on the hub")
