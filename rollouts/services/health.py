"""Heartbeats: background processes saying they are alive (rollouts.models.health)."""

from rollouts import clock
from rollouts import models as m


def heartbeat_record(*, source: str, by: str = "") -> None:
    """Record that `source` (a Heartbeat.Source) is alive now, as seen by
    `by`. One upsert statement, outside any audit: heartbeats are not
    events, and a second write of the same second changes nothing but time."""
    m.Heartbeat.objects.bulk_create(
        [m.Heartbeat(source=source, seen_at=clock.precise_now(), by=by[:255])],
        update_conflicts=True, unique_fields=["source"], update_fields=["seen_at", "by"],
    )
