"""Reads for pages that show hubs and mirrored objects."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count

from rollouts.models.connections import HubConnection, MirroredObject


@dataclass(frozen=True)
class HubRow:
    """A hub connection as its page shows it. health: "synced" (the last
    session went well), "failing" (retrying with backoff), "new" (never
    synced) or "disabled"."""

    pk: int
    name: str
    health: str
    last_sync: datetime | None
    last_error: str
    last_error_at: datetime | None
    failures: int
    backoff_until: datetime | None
    warnings: list[str]
    mirrored: int


def _health(connection) -> str:
    if not connection.enabled:
        return "disabled"
    if connection.failures:
        return "failing"
    return "synced" if connection.last_sync else "new"


def hub_connection_rows() -> list[HubRow]:
    """Every hub connection with its health and mirrored-object count (one query)."""
    connections = HubConnection.objects.annotate(mirrored_count=Count("mirrored")).order_by("name")
    return [HubRow(c.pk, c.name, _health(c), c.last_sync, c.last_error, c.last_error_at, c.failures,
                   c.backoff_until, list(c.warnings or []), c.mirrored_count) for c in connections]


def mirror_sources(objects) -> dict[tuple[str, str, str], str]:
    """{(kind, namespace, name): hub name} for those of `objects` (rows of
    fleet models) that are mirrored, in one query: for marking list rows."""
    wanted = {(o.KIND, o.namespace, o.name) for o in objects}
    if not wanted:
        return {}
    marks = (MirroredObject.objects.filter(kind__in={k for k, _, _ in wanted}, name__in={n for _, _, n in wanted})
             .values_list("kind", "namespace", "name", "connection__name"))
    return {(k, ns, n): hub for k, ns, n, hub in marks if (k, ns, n) in wanted}
